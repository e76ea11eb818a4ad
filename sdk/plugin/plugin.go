// Package plugin is everything a runbook plugin author needs, and the
// contract the host shares with plugins: the go-plugin handshake, the gRPC
// halves of runbook.plugin.v1, and the Go types that hide the generated code.
//
// A plugin is a main package that calls Serve:
//
//	func main() {
//		plugin.Serve(plugin.Info{Name: "hello", Version: "0.1.0"},
//			plugin.NewAction("greet", greet))
//	}
package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"sort"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"

	pb "github.com/runbookhq/runbook/sdk/plugin/proto/runbook/plugin/v1"
	"github.com/runbookhq/runbook/sdk/spec"
)

// ProtocolVersion is the major version of runbook.plugin.v1. It changes only
// for incompatible changes; additions keep it.
const ProtocolVersion = 1

// PluginName is the single go-plugin plugin name every runbook plugin serves.
const PluginName = "runbook"

// Handshake is shared by host and plugins. The cookie only tells a user who
// runs a plugin by hand that it is not a command; it is not a security
// measure.
var Handshake = goplugin.HandshakeConfig{
	ProtocolVersion:  ProtocolVersion,
	MagicCookieKey:   "RUNBOOK_PLUGIN_MAGIC_COOKIE",
	MagicCookieValue: "6c2a5b0d8f2e4c1a9d3b7e5f0a1c2d3e",
}

// Info names a plugin.
type Info struct {
	Name    string
	Version string
}

// Serve runs the plugin. It is the whole of a plugin's main. With the
// argument `describe` it prints the plugin's Description as JSON and exits,
// without a gRPC session.
func Serve(info Info, actions ...Action) {
	os.Exit(serve(info, actions, os.Args[1:], os.Stdout, os.Stderr))
}

func serve(info Info, actions []Action, args []string, stdout, stderr io.Writer) int {
	srv, err := NewServer(info, actions...)
	if err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", info.Name, err)
		return 1
	}
	if len(args) > 0 {
		switch args[0] {
		case "describe":
			enc := json.NewEncoder(stdout)
			enc.SetIndent("", "  ")
			if err := enc.Encode(srv.Description()); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			return 0
		case "version", "--version":
			fmt.Fprintf(stdout, "%s %s (protocol %d)\n", info.Name, info.Version, ProtocolVersion)
			return 0
		default:
			fmt.Fprintf(stderr, "%s: unknown argument %q (a runbook plugin takes `describe`, `version`, or is started by runbook)\n", info.Name, args[0])
			return 2
		}
	}
	logger := hclog.New(&hclog.LoggerOptions{
		Name:       info.Name,
		Output:     stderr,
		JSONFormat: true,
		Level:      hclog.LevelFromString(os.Getenv("RUNBOOK_PLUGIN_LOG_LEVEL")),
	})
	srv.log = logger
	goplugin.Serve(&goplugin.ServeConfig{
		HandshakeConfig: Handshake,
		Plugins:         goplugin.PluginSet{PluginName: &GRPCPlugin{Impl: srv}},
		GRPCServer:      goplugin.DefaultGRPCServer,
		Logger:          logger,
	})
	return 0
}

// GRPCPlugin is the go-plugin glue for both sides: Impl is set on the
// plugin side (Impl); the host side gets a *Client from GRPCClient.
type GRPCPlugin struct {
	goplugin.NetRPCUnsupportedPlugin
	Impl *Server
}

var _ goplugin.GRPCPlugin = (*GRPCPlugin)(nil)

// GRPCServer registers the plugin's service.
func (p *GRPCPlugin) GRPCServer(_ *goplugin.GRPCBroker, s *grpc.Server) error {
	pb.RegisterPluginServer(s, p.Impl)
	return nil
}

// GRPCClient returns a *Client for the host.
func (p *GRPCPlugin) GRPCClient(_ context.Context, _ *goplugin.GRPCBroker, c *grpc.ClientConn) (any, error) {
	return NewClient(c), nil
}

// PluginSet is the plugin map the host passes to go-plugin.
func PluginSet() goplugin.PluginSet {
	return goplugin.PluginSet{PluginName: &GRPCPlugin{}}
}

// Server implements the runbook.plugin.v1 service for a set of actions.
type Server struct {
	pb.UnimplementedPluginServer
	info    Info
	actions map[string]Action
	order   []string
	log     hclog.Logger
}

// NewServer checks the actions (unique names) and returns a server for them.
func NewServer(info Info, actions ...Action) (*Server, error) {
	if info.Name == "" {
		return nil, fmt.Errorf("plugin name is empty")
	}
	s := &Server{info: info, actions: map[string]Action{}, log: hclog.NewNullLogger()}
	for _, a := range actions {
		n := a.spec().Name
		if n == "" {
			return nil, fmt.Errorf("an action has no name")
		}
		if err := spec.CheckPermissions(a.spec()); err != nil {
			return nil, err
		}
		if _, dup := s.actions[n]; dup {
			return nil, fmt.Errorf("action %q is defined twice", n)
		}
		s.actions[n] = a
		s.order = append(s.order, n)
	}
	sort.Strings(s.order)
	return s, nil
}

// SetLogger sets the logger handed to actions.
func (s *Server) SetLogger(l hclog.Logger) { s.log = l }

// Description is the plugin's self-description.
func (s *Server) Description() *Description {
	d := &Description{Name: s.info.Name, Version: s.info.Version, ProtocolVersion: ProtocolVersion}
	for _, n := range s.order {
		d.Actions = append(d.Actions, s.actions[n].spec())
	}
	return d
}
