// Package plugintest runs a plugin's actions over the real runbook.plugin.v1
// gRPC protocol, in-process, for the plugin's own tests:
//
//	c := plugintest.Start(t, plugin.Info{Name: "hello"}, greetAction)
//	out, err := c.Apply(ctx, "greet", map[string]any{"name": "ops"})
package plugintest

import (
	"context"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// Client calls the actions under test through gRPC.
type Client struct {
	*plugin.Client
	mu       sync.Mutex
	progress []plugin.Progress
}

// Start serves the actions over an in-process gRPC connection and returns a
// client for them; both ends close when the test ends.
func Start(t testing.TB, info plugin.Info, actions ...plugin.Action) *Client {
	t.Helper()
	srv, err := plugin.NewServer(info, actions...)
	if err != nil {
		t.Fatalf("plugintest: %v", err)
	}
	srv.SetLogger(hclog.New(&hclog.LoggerOptions{Name: info.Name, Output: testWriter{t}, Level: hclog.Debug}))
	gc, gs := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{plugin.PluginName: &plugin.GRPCPlugin{Impl: srv}})
	t.Cleanup(func() {
		// Stop the server first: closing the client first races with
		// go-plugin's own server shutdown (seen with -race).
		gs.Stop()
		_ = gc.Close()
	})
	raw, err := gc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("plugintest: dispense: %v", err)
	}
	return &Client{Client: raw.(*plugin.Client)}
}

// Apply runs an action with params and collects its progress events (see
// Progress). A returned *plugin.Error is the action's own failure.
func (c *Client) Apply(ctx context.Context, action string, params map[string]any) (map[string]any, error) {
	return c.ApplyCall(ctx, plugin.ApplyCall{
		RunID: "test-run", StepID: "test-step", Action: action, Attempt: 1,
		IdempotencyKey: "test-run/test-step", Params: params,
	})
}

// ApplyCall is Apply with every field of the call under the test's control.
func (c *Client) ApplyCall(ctx context.Context, call plugin.ApplyCall) (map[string]any, error) {
	return c.Client.Apply(ctx, call, func(p plugin.Progress) {
		c.mu.Lock()
		c.progress = append(c.progress, p)
		c.mu.Unlock()
	})
}

// PlanParams asks for a plan with params, none of them unknown.
func (c *Client) PlanParams(ctx context.Context, action string, params map[string]any) (*plugin.Plan, error) {
	return c.Client.Plan(ctx, plugin.PlanCall{RunID: "test-run", StepID: "test-step", Action: action, Params: params})
}

// Progress returns the progress events received so far.
func (c *Client) Progress() []plugin.Progress {
	c.mu.Lock()
	defer c.mu.Unlock()
	return append([]plugin.Progress(nil), c.progress...)
}

// Context returns a context bounded for a test (2 minutes, or the test's deadline).
func Context(t testing.TB) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	if d, ok := t.(interface{ Deadline() (time.Time, bool) }); ok {
		if dl, ok := d.Deadline(); ok {
			ctx, cancel = context.WithDeadline(context.Background(), dl.Add(-5*time.Second))
		}
	}
	t.Cleanup(cancel)
	return ctx
}

type testWriter struct{ t testing.TB }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Helper()
	defer func() { _ = recover() }() // a log line after the test ended
	w.t.Log(fmt.Sprintf("%s", p))
	return len(p), nil
}
