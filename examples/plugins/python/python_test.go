// Package pyplugin_test drives the Python example plugin the way runbook
// drives every plugin: go-plugin's client with runbook's handshake, gRPC
// only, AutoMTLS, the runbook.plugin.v1 client. It proves that the plugin
// protocol does not depend on Go.
//
// The tests need python3 (3.10+) and the package registry for the first
// setup.sh run; without python3 they skip, unless
// CI_REQUIRE_PYTHON_PLUGIN=1, where they fail.
package pyplugin_test

import (
	"bufio"
	"bytes"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	crand "crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"
	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/types/known/emptypb"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
	"github.com/runbookhq/runbook/sdk/schema"
)

const launcherName = "runbook-plugin-pyhello"

var (
	setupOnce sync.Once
	setupErr  error
	setupOut  []byte
)

// launcher runs setup.sh once per test binary and returns the plugin's
// launcher path. setup.sh is idempotent: a warm run only checks stamps.
func launcher(t *testing.T) string {
	t.Helper()
	if _, err := exec.LookPath("python3"); err != nil {
		if os.Getenv("CI_REQUIRE_PYTHON_PLUGIN") == "1" {
			t.Fatalf("python3 is required (CI_REQUIRE_PYTHON_PLUGIN=1): %v", err)
		}
		t.Skipf("python3 not found, so the Python plugin cannot run: %v", err)
	}
	dir, err := filepath.Abs(".")
	if err != nil {
		t.Fatal(err)
	}
	setupOnce.Do(func() {
		start := time.Now()
		cmd := exec.Command("sh", filepath.Join(dir, "setup.sh"))
		setupOut, setupErr = cmd.CombinedOutput()
		t.Logf("setup.sh took %s", time.Since(start).Round(time.Millisecond))
	})
	if setupErr != nil {
		t.Fatalf("setup.sh: %v\n%s", setupErr, setupOut)
	}
	return filepath.Join(dir, launcherName)
}

// syncBuffer collects the host's log lines from go-plugin's goroutines.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// hostLogEntry is one line the host logged, in hclog's JSON format.
type hostLogEntry map[string]any

func (s *syncBuffer) entries(t *testing.T) []hostLogEntry {
	t.Helper()
	var out []hostLogEntry
	for _, line := range strings.Split(s.String(), "\n") {
		if strings.TrimSpace(line) == "" {
			continue
		}
		var e hostLogEntry
		if err := json.Unmarshal([]byte(line), &e); err != nil {
			t.Fatalf("host log line is not JSON: %q", line)
		}
		out = append(out, e)
	}
	return out
}

type session struct {
	gp     *goplugin.Client
	client *plugin.Client
	logs   *syncBuffer
}

type hostOptions struct {
	env              []string
	minPort, maxPort uint
	// noMTLS starts the plugin as a go-plugin host without AutoMTLS would.
	noMTLS bool
}

// startHost launches the plugin exactly as a host does and dispenses the
// runbook client. The plugin is killed when the test ends.
func startHost(t *testing.T, opts hostOptions) *session {
	t.Helper()
	path := launcher(t)
	logs := &syncBuffer{}
	cmd := exec.Command(path)
	cmd.Env = append([]string{"RUNBOOK_PLUGIN_LOG_LEVEL=debug"}, opts.env...)
	gp := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          plugin.PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         !opts.noMTLS,
		MinPort:          opts.minPort,
		MaxPort:          opts.maxPort,
		StartTimeout:     30 * time.Second,
		Logger: hclog.New(&hclog.LoggerOptions{
			Name: "host", Output: logs, JSONFormat: true, Level: hclog.Trace,
		}),
	})
	t.Cleanup(func() {
		gp.Kill()
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	rpc, err := gp.Client()
	if err != nil {
		t.Fatalf("starting the Python plugin: %v\nhost log:\n%s", err, logs.String())
	}
	raw, err := rpc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatalf("dispense: %v", err)
	}
	c, ok := raw.(*plugin.Client)
	if !ok {
		t.Fatalf("dispensed %T, want *plugin.Client", raw)
	}
	if err := rpc.Ping(); err != nil {
		t.Fatalf("health check (grpc.health.v1, service %q): %v", goplugin.GRPCServiceName, err)
	}
	return &session{gp: gp, client: c, logs: logs}
}

// pyhelloParams mirrors the Python action's parameters as a Go plugin
// would declare them; its derived schema must equal the one the Python
// plugin writes by hand, descriptions aside.
type pyhelloParams struct {
	Name string        `json:"name" required:"true"`
	Mood string        `json:"mood" enum:"calm,loud" default:"calm"`
	File string        `json:"file"`
	Wait time.Duration `json:"wait" default:"0s"`
	Fail string        `json:"fail" enum:",retryable,fatal" default:""`
}

type pyhelloOutputs struct {
	Greeting string        `json:"greeting"`
	File     string        `json:"file"`
	Existed  bool          `json:"existed"`
	Previous string        `json:"previous"`
	Changed  bool          `json:"changed"`
	Waited   time.Duration `json:"waited"`
}

var ignoreDescriptions = cmpopts.IgnoreFields(schema.Schema{}, "Description")

func TestDescribeMatchesGoSchemas(t *testing.T) {
	path := launcher(t)
	out, err := exec.Command(path, "describe").Output()
	if err != nil {
		t.Fatalf("%s describe: %v", path, err)
	}
	var d plugin.Description
	dec := json.NewDecoder(bytes.NewReader(out))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("describe output is not a plugin description: %v\n%s", err, out)
	}
	if d.Name != "pyhello" || d.Version != "0.1.0" || d.ProtocolVersion != plugin.ProtocolVersion {
		t.Fatalf("description header = %q %q %d", d.Name, d.Version, d.ProtocolVersion)
	}
	a, ok := d.Action("greet")
	if !ok || len(d.Actions) != 1 {
		t.Fatalf("actions = %+v, want greet only", d.Actions)
	}
	if !a.Idempotent || !a.SupportsPlan || a.ReadOnly || a.Doc == "" {
		t.Fatalf("greet spec = %+v", a)
	}
	if diff := cmp.Diff(schema.MustFor[pyhelloParams](), a.Params, ignoreDescriptions); diff != "" {
		t.Errorf("params schema differs from the Go-derived one (-go +python):\n%s", diff)
	}
	if diff := cmp.Diff(schema.MustFor[pyhelloOutputs](), a.Outputs, ignoreDescriptions); diff != "" {
		t.Errorf("outputs schema differs from the Go-derived one (-go +python):\n%s", diff)
	}
	for _, n := range a.Params.PropertyNames() {
		if a.Params.Properties[n].Description == "" {
			t.Errorf("param %s has no description", n)
		}
	}

	// The gRPC Describe of a live plugin says the same.
	s := startHost(t, hostOptions{})
	live, err := s.client.Describe(plugintest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(&d, live); diff != "" {
		t.Errorf("gRPC Describe differs from `describe` (-subcommand +grpc):\n%s", diff)
	}
}

func TestValidate(t *testing.T) {
	s := startHost(t, hostOptions{})
	ctx := plugintest.Context(t)
	d, err := s.client.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	greet, _ := d.Action("greet")
	cases := map[string]struct {
		params  map[string]any
		unknown []string
		want    []plugin.Diagnostic
		// schemaOnly: every diagnostic comes from the schema, so the host's
		// own check (sdk/schema) must report exactly the same.
		schemaOnly bool
	}{
		"valid": {params: map[string]any{"name": "ops", "wait": "1m30s", "file": "/tmp/x"}, schemaOnly: true},
		"unknown at run time": {
			params: map[string]any{"name": nil, "file": nil}, unknown: []string{"/name", "/file"}, schemaOnly: true,
		},
		"semantic check": {
			params: map[string]any{"name": "Nobody"},
			want:   []plugin.Diagnostic{{Severity: plugin.SeverityError, Path: "/name", Summary: "cannot greet nobody", Detail: "name someone to greet"}},
		},
		"relative file": {
			params: map[string]any{"name": "ops", "file": "greeting.txt"},
			want:   []plugin.Diagnostic{{Severity: plugin.SeverityError, Path: "/file", Summary: "file must be an absolute path, not 'greeting.txt'"}},
		},
		"schema problems": {
			params: map[string]any{"nmae": "ops", "mood": "angry", "wait": "soon"},
			want: []plugin.Diagnostic{
				{Severity: plugin.SeverityError, Path: "", Summary: `missing required property "name"`},
				{Severity: plugin.SeverityError, Path: "/mood", Summary: `must be one of "calm", "loud", not "angry"`},
				{Severity: plugin.SeverityError, Path: "/nmae", Summary: `unknown property "nmae" (did you mean "name"?)`},
				{Severity: plugin.SeverityError, Path: "/wait", Summary: `"soon" is not a duration (use Go syntax such as 90s, 15m or 1h30m)`},
			},
			schemaOnly: true,
		},
		"wrong type": {
			params:     map[string]any{"name": 3, "fail": true},
			want:       []plugin.Diagnostic{{Severity: plugin.SeverityError, Path: "/fail", Summary: "must be a string, not a boolean"}, {Severity: plugin.SeverityError, Path: "/name", Summary: "must be a string, not an integer"}},
			schemaOnly: true,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			got, err := s.client.Validate(ctx, "greet", tc.params, tc.unknown)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(tc.want, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if !tc.schemaOnly {
				return
			}
			var host []plugin.Diagnostic
			for _, p := range schema.Validate(greet.Params, jsonRoundTrip(t, tc.params), unknownSet(tc.unknown)) {
				host = append(host, plugin.Errorf(p.Path, "%s", p.Message))
			}
			if diff := cmp.Diff(host, got, cmpopts.EquateEmpty()); diff != "" {
				t.Errorf("the plugin's check and the host's disagree (-host +plugin):\n%s", diff)
			}
		})
	}
	_, err = s.client.Validate(ctx, "wave", map[string]any{}, nil)
	if status.Code(err) != codes.NotFound || !strings.Contains(err.Error(), `no action 'wave'`) {
		t.Fatalf("unknown action: err = %v", err)
	}
}

func TestPlanIsReadOnly(t *testing.T) {
	s := startHost(t, hostOptions{})
	ctx := plugintest.Context(t)
	dir := t.TempDir()
	file := filepath.Join(dir, "greeting.txt")
	plan := func(params map[string]any, unknown ...string) *plugin.Plan {
		t.Helper()
		p, err := s.client.Plan(ctx, plugin.PlanCall{RunID: "r", StepID: "s", Action: "greet", Params: params, Unknown: unknown})
		if err != nil {
			t.Fatal(err)
		}
		return p
	}

	p := plan(map[string]any{"name": "ops", "file": file})
	want := []plugin.Change{{Resource: "file " + file, Field: "content", After: "hello, ops", Kind: plugin.ChangeCreate}}
	if diff := cmp.Diff(want, p.Changes); diff != "" || p.Summary != "create "+file {
		t.Fatalf("plan of a new file: summary %q, changes (-want +got):\n%s", p.Summary, diff)
	}
	if _, err := os.Stat(file); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("Plan wrote the file (stat: %v)", err)
	}

	if err := os.WriteFile(file, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	p = plan(map[string]any{"name": "ops", "mood": "loud", "file": file})
	want = []plugin.Change{{Resource: "file " + file, Field: "content", Before: "old", After: "HELLO, OPS", Kind: plugin.ChangeUpdate}}
	if diff := cmp.Diff(want, p.Changes); diff != "" {
		t.Fatalf("plan of a rewrite (-want +got):\n%s", diff)
	}
	if b, _ := os.ReadFile(file); string(b) != "old" {
		t.Fatalf("Plan changed the file to %q", b)
	}

	p = plan(map[string]any{"name": nil, "file": file}, "/name")
	if len(p.Changes) != 1 || !p.Changes[0].AfterUnknown || p.Changes[0].After != nil || p.Changes[0].Before != "old" {
		t.Fatalf("plan with the name unknown: %+v", p.Changes)
	}

	p = plan(map[string]any{"name": "ops", "mood": "angry"})
	if len(p.Diagnostics) != 1 || p.Diagnostics[0].Path != "/mood" || len(p.Changes) != 0 {
		t.Fatalf("plan with invalid params: %+v", p)
	}
}

func TestApply(t *testing.T) {
	s := startHost(t, hostOptions{})
	ctx := plugintest.Context(t)
	file := filepath.Join(t.TempDir(), "greeting.txt")
	if err := os.WriteFile(file, []byte("old"), 0o640); err != nil {
		t.Fatal(err)
	}
	apply := func(attempt int, params map[string]any, deadline time.Time) (map[string]any, []plugin.Progress, error) {
		var progress []plugin.Progress
		out, err := s.client.Apply(ctx, plugin.ApplyCall{
			RunID: "run-1", StepID: "greet", Action: "greet", Attempt: attempt,
			IdempotencyKey: "run-1/greet", Params: params, Deadline: deadline,
		}, func(p plugin.Progress) { progress = append(progress, p) })
		return out, progress, err
	}

	before := time.Now().Add(-time.Second)
	out, progress, err := apply(1, map[string]any{"name": "ops", "file": file, "wait": "20ms"}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	wantOut := map[string]any{"greeting": "hello, ops", "file": file, "existed": true, "previous": "old", "changed": true, "waited": "20ms"}
	if diff := cmp.Diff(wantOut, out); diff != "" {
		t.Fatalf("outputs (-want +got):\n%s", diff)
	}
	var msgs []string
	for _, p := range progress {
		msgs = append(msgs, p.Message)
		if p.Time.Before(before) || p.Time.After(time.Now().Add(time.Second)) {
			t.Errorf("progress %q has time %s", p.Message, p.Time)
		}
	}
	if diff := cmp.Diff([]string{"waiting", "wrote the greeting"}, msgs); diff != "" {
		t.Fatalf("progress (-want +got):\n%s", diff)
	}
	if progress[0].Fields["for"] != "20ms" || progress[1].Fields["file"] != file {
		t.Fatalf("progress fields: %+v", progress)
	}
	if b, _ := os.ReadFile(file); string(b) != "hello, ops" {
		t.Fatalf("file holds %q", b)
	}
	if fi, _ := os.Stat(file); fi.Mode().Perm() != 0o640 {
		t.Fatalf("rewrite changed the file mode to %v", fi.Mode().Perm())
	}

	// Idempotent: the same call again changes nothing.
	out, _, err = apply(2, map[string]any{"name": "ops", "file": file}, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	if out["changed"] != false || out["previous"] != "hello, ops" || out["waited"] != "0s" {
		t.Fatalf("second apply: %v", out)
	}
	entries, _ := os.ReadDir(filepath.Dir(file))
	if len(entries) != 1 {
		t.Fatalf("temporary files left beside the greeting: %v", entries)
	}

	errCases := map[string]struct {
		params    map[string]any
		deadline  time.Duration
		retryable bool
		code      string
		contains  string
		// retryAfter: the wait the error asks for (ActionError.retry_after).
		retryAfter time.Duration
	}{
		"retryable":      {params: map[string]any{"name": "ops", "fail": "retryable"}, retryable: true, code: "Throttled", contains: "throttling (attempt 3)", retryAfter: 250 * time.Millisecond},
		"fatal":          {params: map[string]any{"name": "ops", "fail": "fatal"}, code: "GreetingRefused", contains: "ops does not want to be greeted"},
		"invalid params": {params: map[string]any{"name": "ops", "nmae": "x"}, code: "InvalidParams", contains: `invalid parameters: /nmae: unknown property "nmae"`},
		"deadline":       {params: map[string]any{"name": "ops", "wait": "1h"}, deadline: 300 * time.Millisecond, retryable: true, code: "Timeout", contains: "deadline exceeded"},
		"write failure": {
			params: map[string]any{"name": "ops", "file": filepath.Join(t.TempDir(), "missing-dir", "g.txt")},
			code:   "WriteFailed", contains: "missing-dir/g.txt: No such file or directory",
		},
	}
	for name, tc := range errCases {
		t.Run(name, func(t *testing.T) {
			var deadline time.Time
			if tc.deadline > 0 {
				deadline = time.Now().Add(tc.deadline)
			}
			_, _, err := apply(3, tc.params, deadline)
			var pe *plugin.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T), want *plugin.Error", err, err)
			}
			if pe.Retryable != tc.retryable || pe.Code != tc.code || !strings.Contains(pe.Message, tc.contains) || pe.RetryAfter != tc.retryAfter {
				t.Fatalf("err = %+v", pe)
			}
		})
	}

	// The plugin's hclog lines reach the host's logger at their own level,
	// with their fields: the format go-plugin parses, not a debug fallback.
	var greeted hostLogEntry
	for _, e := range s.logs.entries(t) {
		if e["@message"] == "greeted" {
			greeted = e
		}
	}
	if greeted == nil || greeted["@level"] != "info" || greeted["name"] != "ops" || greeted["action"] != "greet" {
		t.Fatalf("plugin log line as the host re-emitted it: %v\nhost log:\n%s", greeted, s.logs.String())
	}
}

func TestApplyStopsWhenTheHostCancels(t *testing.T) {
	s := startHost(t, hostOptions{})
	ctx, cancel := context.WithCancel(plugintest.Context(t))
	started := make(chan struct{})
	done := make(chan error, 1)
	go func() {
		_, err := s.client.Apply(ctx, plugin.ApplyCall{RunID: "r", StepID: "s", Action: "greet", Attempt: 1, Params: map[string]any{"name": "ops", "wait": "1h"}},
			func(p plugin.Progress) {
				if p.Message == "waiting" {
					close(started)
				}
			})
		done <- err
	}()
	<-started
	cancel()
	if err := <-done; status.Code(err) != codes.Canceled {
		t.Fatalf("cancelled apply: err = %v", err)
	}
	// The plugin still serves: the cancelled call took no worker with it.
	out, err := s.client.Apply(plugintest.Context(t), plugin.ApplyCall{RunID: "r", StepID: "s2", Action: "greet", Attempt: 1, Params: map[string]any{"name": "ops"}}, nil)
	if err != nil || out["greeting"] != "hello, ops" {
		t.Fatalf("apply after a cancel: %v, %v", out, err)
	}
}

func TestKillShutsDownAndLeavesNoProcess(t *testing.T) {
	s := startHost(t, hostOptions{})
	rc := s.gp.ReattachConfig()
	if rc == nil || rc.Pid == 0 {
		t.Fatalf("reattach config = %+v", rc)
	}
	sock := rc.Addr.String()
	if rc.Addr.Network() != "unix" {
		t.Fatalf("plugin listens on %s %s, want a Unix socket", rc.Addr.Network(), sock)
	}
	if _, err := os.Stat(sock); err != nil {
		t.Fatalf("socket: %v", err)
	}
	s.gp.Kill()
	if !s.gp.Exited() {
		t.Fatal("go-plugin does not see the plugin as exited after Kill")
	}
	if err := syscall.Kill(rc.Pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("plugin process %d still exists after Kill (kill -0: %v)", rc.Pid, err)
	}
	if _, err := os.Stat(filepath.Dir(sock)); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket directory left behind (stat: %v)", err)
	}
	// Kill calls GRPCController.Shutdown first (TestShutdownExitsCleanly
	// checks the exit that follows, without go-plugin's 2 s limit).
	if log := s.logs.String(); !strings.Contains(log, `"reason":"shutdown requested by the host"`) {
		t.Errorf("the plugin did not stop on Shutdown; host log:\n%s", log)
	}
}

func TestTCPWithinThePortRange(t *testing.T) {
	// Hold one port so the plugin has to move past it.
	held, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer held.Close()
	lo := uint(held.Addr().(*net.TCPAddr).Port)
	hi := lo + 20
	s := startHost(t, hostOptions{env: []string{"RUNBOOK_PLUGIN_NETWORK=tcp"}, minPort: lo, maxPort: hi})
	addr, ok := s.gp.ReattachConfig().Addr.(*net.TCPAddr)
	if !ok {
		t.Fatalf("plugin address %v is not TCP", s.gp.ReattachConfig().Addr)
	}
	if !addr.IP.IsLoopback() || uint(addr.Port) <= lo || uint(addr.Port) > hi {
		t.Fatalf("plugin listens on %v, want 127.0.0.1 in (%d, %d]", addr, lo, hi)
	}
	out, err := s.client.Apply(plugintest.Context(t), plugin.ApplyCall{Action: "greet", Attempt: 1, Params: map[string]any{"name": "tcp"}}, nil)
	if err != nil || out["greeting"] != "hello, tcp" {
		t.Fatalf("apply over TCP: %v, %v", out, err)
	}
}

// TestWithoutAutoMTLS: like go-plugin's Go servers, the plugin serves in
// the clear to a host that did not ask for AutoMTLS (runbook always does),
// and says so in its log.
func TestWithoutAutoMTLS(t *testing.T) {
	s := startHost(t, hostOptions{noMTLS: true})
	out, err := s.client.Apply(plugintest.Context(t), plugin.ApplyCall{Action: "greet", Attempt: 1, Params: map[string]any{"name": "clear"}}, nil)
	if err != nil || out["greeting"] != "hello, clear" {
		t.Fatalf("apply without TLS: %v, %v", out, err)
	}
	if !strings.Contains(s.logs.String(), "serving without TLS") {
		t.Fatalf("no warning about serving without TLS; host log:\n%s", s.logs.String())
	}
}

func TestRefusesToRunWithoutTheHost(t *testing.T) {
	path := launcher(t)
	cmd := exec.Command(path)
	cmd.Env = withoutCookie(os.Environ())
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	var ee *exec.ExitError
	if !errors.As(err, &ee) || ee.ExitCode() != 1 {
		t.Fatalf("run without the cookie: %v", err)
	}
	if stdout.Len() != 0 || !strings.Contains(stderr.String(), "It is not meant to be executed directly") {
		t.Fatalf("stdout %q, stderr %q", stdout.String(), stderr.String())
	}
	out, err := exec.Command(path, "bogus").CombinedOutput()
	if !errors.As(err, &ee) || ee.ExitCode() != 2 || !strings.Contains(string(out), "unknown argument 'bogus'") {
		t.Fatalf("unknown argument: %v: %s", err, out)
	}
}

func TestExitsWhenTheHostDies(t *testing.T) {
	path := launcher(t)
	ctx := plugintest.Context(t)
	// A shell stands in for a host that dies without calling Shutdown: it
	// starts the plugin, waits for its handshake line (so the plugin knows
	// its parent), prints the plugin's pid and exits.
	script := `hs=$(mktemp); "$0" >"$hs" 2>/dev/null & pid=$!
n=0; while [ ! -s "$hs" ] && [ $n -lt 600 ]; do sleep 0.05; n=$((n+1)); done
rm -f "$hs"; echo $pid`
	cmd := exec.CommandContext(ctx, "sh", "-c", script, path)
	cmd.Env = append(withoutCookie(os.Environ()), plugin.Handshake.MagicCookieKey+"="+plugin.Handshake.MagicCookieValue)
	out, err := cmd.Output()
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(out)))
	if err != nil || pid <= 0 {
		t.Fatalf("pid %q: %v", out, err)
	}
	t.Cleanup(func() { _ = syscall.Kill(pid, syscall.SIGKILL) })
	// The orphan is reparented; the plugin's parent watch notices within a
	// second or two. Poll, bounded by the test's context.
	for syscall.Kill(pid, 0) == nil {
		if isZombie(pid) {
			break // exited; waiting for init to reap it
		}
		select {
		case <-ctx.Done():
			t.Fatalf("plugin %d kept running after its parent exited", pid)
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func TestPythonUnits(t *testing.T) {
	launcher(t)
	py := filepath.Join(".venv", "bin", "python")
	cmd := exec.Command(py, "-m", "unittest", "discover", "-s", "tests", "-t", ".")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("python unit tests: %v\n%s", err, out)
	}
	if !strings.Contains(string(out), "OK") {
		t.Fatalf("python unit tests did not report OK:\n%s", out)
	}
	t.Logf("%s", out)
}

func withoutCookie(env []string) []string {
	var out []string
	for _, e := range env {
		if !strings.HasPrefix(e, plugin.Handshake.MagicCookieKey+"=") {
			out = append(out, e)
		}
	}
	return out
}

func jsonRoundTrip(t *testing.T, v map[string]any) any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var out any
	if err := json.Unmarshal(b, &out); err != nil {
		t.Fatal(err)
	}
	return out
}

// isZombie reports whether pid has exited but is not reaped yet (an orphan
// in a container whose init does not reap). Without /proc it says no.
func isZombie(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the parenthesised command name.
	i := bytes.LastIndexByte(b, ')')
	return i >= 0 && i+2 < len(b) && b[i+2] == 'Z'
}

func unknownSet(paths []string) map[string]bool {
	m := map[string]bool{}
	for _, p := range paths {
		m[p] = true
	}
	return m
}

// TestDurationsAgreeWithGo checks the Python duration code against Go's
// time package on the same inputs: the "duration" format means Go syntax,
// and outputs must read back the same in the host.
func TestDurationsAgreeWithGo(t *testing.T) {
	launcher(t)
	parse := []string{
		"0", "-0", "+0", "5s", "30s", "1478s", "-5s", "+5s", "5.0s", "5.6s", "5.s", ".5s", "1.004s",
		"100.00100s", "10ns", "11us", "12µs", "12μs", "13ms", "15m", "16h", "3h30m", "10.5s4m",
		"-2m3.4s", "1h2m3s4ms5us6ns", "39h9m14.425s", "52763797000ns", "0.3333333333333333333h",
		"9007199254.740993ms", "9223372036854775807ns", "-9223372036854775808ns", "9223372036854775808ns",
		"0.100000000000000000000h", "", "3", "-", "s", ".s", "1d", "3000000h", "1.5 s", "1h 2m",
	}
	rng := rand.New(rand.NewPCG(1, 2))
	format := []int64{0, 1, 999, 1000, 1500, 999999, 1000000, 1234567, 1e9, 1e9 + 1, 61e9, 3600e9, 3661e9 + 5e8,
		-1, -1500000, math.MaxInt64, math.MinInt64 + 1}
	for range 200 {
		format = append(format, rng.Int64N(1<<50)>>rng.IntN(50))
		parse = append(parse, time.Duration(rng.Int64N(1<<45)).String())
	}
	in, _ := json.Marshal(map[string]any{"parse": parse, "format": format})
	script := `import json, sys
sys.path.insert(0, ".")
from runbook_plugin import duration
req = json.load(sys.stdin)
out = {"parse": [], "format": [duration.format(n) for n in req["format"]]}
for s in req["parse"]:
    try:
        out["parse"].append({"ok": True, "ns": duration.parse(s)})
    except duration.DurationError:
        out["parse"].append({"ok": False, "ns": 0})
json.dump(out, sys.stdout)
`
	cmd := exec.Command(filepath.Join(".venv", "bin", "python"), "-c", script)
	cmd.Stdin = bytes.NewReader(in)
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("python: %v", err)
	}
	var got struct {
		Parse []struct {
			OK bool  `json:"ok"`
			NS int64 `json:"ns"`
		} `json:"parse"`
		Format []string `json:"format"`
	}
	if err := json.Unmarshal(out, &got); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	for i, s := range parse {
		d, err := time.ParseDuration(s)
		if (err == nil) != got.Parse[i].OK || int64(d) != got.Parse[i].NS {
			t.Errorf("parse %q: Go %d (err %v), Python %+v", s, d, err, got.Parse[i])
		}
	}
	for i, n := range format {
		if want := time.Duration(n).String(); want != got.Format[i] {
			t.Errorf("format %d: Go %q, Python %q", n, want, got.Format[i])
		}
	}
}

// handPlugin is the plugin started by hand, the host's part played by the
// test from the handshake line on.
type handPlugin struct {
	cmd    *exec.Cmd
	stderr *syncBuffer
	// parts is the handshake line, split.
	parts []string
	roots *x509.CertPool
}

func startByHand(t *testing.T, hostPEM []byte) *handPlugin {
	t.Helper()
	path := launcher(t)
	cmd := exec.Command(path)
	cmd.Env = append(withoutCookie(os.Environ()),
		plugin.Handshake.MagicCookieKey+"="+plugin.Handshake.MagicCookieValue,
		"PLUGIN_PROTOCOL_VERSIONS=1",
		"RUNBOOK_PLUGIN_LOG_LEVEL=debug",
		"PLUGIN_CLIENT_CERT="+string(hostPEM))
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	p := &handPlugin{cmd: cmd, stderr: &syncBuffer{}}
	cmd.Stderr = p.stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		// Politely first, so the plugin removes its sockets; then for sure.
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan struct{})
		go func() { _ = cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			_ = cmd.Process.Kill()
			<-done
		}
	})
	line, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		t.Fatalf("reading the handshake line: %v; stderr:\n%s", err, p.stderr.String())
	}
	p.parts = strings.Split(strings.TrimSpace(line), "|")
	if len(p.parts) != 6 || p.parts[0] != "1" || p.parts[1] != "1" || p.parts[2] != "unix" || p.parts[4] != "grpc" {
		t.Fatalf("handshake line %q", line)
	}
	der, err := base64.RawStdEncoding.DecodeString(p.parts[5])
	if err != nil {
		t.Fatalf("server certificate is not unpadded standard base64: %v", err)
	}
	serverCert, err := x509.ParseCertificate(der)
	if err != nil {
		t.Fatal(err)
	}
	p.roots = x509.NewCertPool()
	p.roots.AddCert(serverCert)
	return p
}

func (p *handPlugin) dial(t *testing.T, certs []tls.Certificate) *grpc.ClientConn {
	t.Helper()
	conn, err := grpc.NewClient("unix://"+p.parts[3], grpc.WithTransportCredentials(credentials.NewTLS(&tls.Config{
		Certificates: certs, RootCAs: p.roots, ServerName: "localhost", MinVersion: tls.VersionTLS12,
	})))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = conn.Close() })
	return conn
}

// TestMutualTLS: the plugin presents a certificate for "localhost" carried
// in the handshake line (DER, unpadded base64), and serves only the client
// whose certificate it was given in PLUGIN_CLIENT_CERT.
func TestMutualTLS(t *testing.T) {
	hostCert, hostPEM := clientCert(t)
	otherCert, _ := clientCert(t)
	p := startByHand(t, hostPEM)
	describe := func(certs []tls.Certificate) error {
		ctx, cancel := context.WithTimeout(plugintest.Context(t), 10*time.Second)
		defer cancel()
		_, err := plugin.NewClient(p.dial(t, certs)).Describe(ctx)
		return err
	}
	if err := describe([]tls.Certificate{hostCert}); err != nil {
		t.Fatalf("the host's own certificate is refused: %v\nstderr:\n%s", err, p.stderr.String())
	}
	if err := describe([]tls.Certificate{otherCert}); err == nil {
		t.Fatal("a client with another certificate was served")
	}
	if err := describe(nil); err == nil {
		t.Fatal("a client without a certificate was served")
	}
}

// TestShutdownExitsCleanly calls go-plugin's GRPCController.Shutdown as the
// host's Close does, and waits for the plugin to exit on its own.
func TestShutdownExitsCleanly(t *testing.T) {
	hostCert, hostPEM := clientCert(t)
	p := startByHand(t, hostPEM)
	conn := p.dial(t, []tls.Certificate{hostCert})
	// plugin.Empty is an empty message: on the wire the same as
	// google.protobuf.Empty, so the well-known type stands in for it.
	err := conn.Invoke(plugintest.Context(t), "/plugin.GRPCController/Shutdown", &emptypb.Empty{}, &emptypb.Empty{})
	if err != nil && status.Code(err) != codes.Unavailable {
		t.Fatalf("Shutdown: %v", err)
	}
	done := make(chan error, 1)
	go func() { done <- p.cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("plugin exited with %v after Shutdown; stderr:\n%s", err, p.stderr.String())
		}
	case <-plugintest.Context(t).Done():
		t.Fatalf("plugin still running after Shutdown; stderr:\n%s", p.stderr.String())
	}
	if _, err := os.Stat(filepath.Dir(p.parts[3])); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("socket directory left behind (stat: %v)", err)
	}
}

// clientCert makes a certificate as go-plugin's AutoMTLS does (ECDSA P-521,
// self-signed, CA, client and server auth, for localhost).
func clientCert(t *testing.T) (tls.Certificate, []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P521(), crand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(time.Now().UnixNano()),
		Subject:               pkix.Name{CommonName: "localhost", Organization: []string{"runbook test"}},
		DNSNames:              []string{"localhost"},
		ExtKeyUsage:           []x509.ExtKeyUsage{x509.ExtKeyUsageClientAuth, x509.ExtKeyUsageServerAuth},
		KeyUsage:              x509.KeyUsageDigitalSignature | x509.KeyUsageKeyEncipherment | x509.KeyUsageKeyAgreement | x509.KeyUsageCertSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
		NotBefore:             time.Now().Add(-time.Minute),
		NotAfter:              time.Now().Add(time.Hour),
	}
	der, err := x509.CreateCertificate(crand.Reader, tmpl, tmpl, key.Public(), key)
	if err != nil {
		t.Fatal(err)
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	c, err := tls.X509KeyPair(certPEM, pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER}))
	if err != nil {
		t.Fatal(err)
	}
	return c, certPEM
}
