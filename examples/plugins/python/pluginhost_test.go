package pyplugin_test

import (
	"errors"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
	"github.com/runbookhq/runbook/sdk/pluginhost"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// TestThroughPluginhost runs the Python plugin through runbook's own
// production host: locked by checksum (which runs `describe`), started,
// called as the engine calls it, and closed.
func TestThroughPluginhost(t *testing.T) {
	path := launcher(t)
	dir := t.TempDir()
	refs := []*runbook.PluginRef{{Name: "pyhello", Command: path}}
	ctx := plugintest.Context(t)

	lock, err := pluginhost.Lock(ctx, dir, refs)
	if err != nil {
		t.Fatalf("locking the Python plugin: %v", err)
	}
	if e := lock.Plugins["pyhello"]; e.Version != "0.1.0" || e.ProtocolVersion != 1 || len(e.SHA256) != 64 {
		t.Fatalf("lock entry = %+v", e)
	}

	logs := &syncBuffer{}
	const secret = "s3cr3t-person"
	h, err := pluginhost.Start(ctx, pluginhost.Config{
		Plugins: refs, Dir: dir, Lock: lock, Secrets: []string{secret},
		// Sockets under the test's directory: the plugin this test kills
		// cannot remove its own.
		Env:    []string{"PLUGIN_UNIX_SOCKET_DIR=" + t.TempDir()},
		Logger: hclog.New(&hclog.LoggerOptions{Output: logs, JSONFormat: true, Level: hclog.Debug}),
	})
	if err != nil {
		t.Fatalf("pluginhost.Start: %v", err)
	}
	closed := false
	t.Cleanup(func() {
		if !closed {
			_ = h.Close()
		}
		if t.Failed() {
			t.Logf("host log:\n%s", logs.String())
		}
	})
	if d, err := h.Description("pyhello"); err != nil || d.Name != "pyhello" {
		t.Fatalf("description: %+v, %v", d, err)
	}

	diags, err := h.Validate(ctx, "pyhello", "greet", map[string]any{"name": "nobody"}, nil)
	if err != nil || len(diags) != 1 || diags[0].Path != "/name" {
		t.Fatalf("validate: %+v, %v", diags, err)
	}
	plan, err := h.Plan(ctx, engine.PlanCall{Plugin: "pyhello", Action: "greet", RunID: "r", StepID: "s", Params: map[string]any{"name": "ops"}})
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Kind != spec.ChangeNoop {
		t.Fatalf("plan: %+v, %v", plan, err)
	}

	var progress []spec.Progress
	out, err := h.Invoke(ctx, engine.Call{
		Plugin: "pyhello", Action: "greet", RunID: "r", StepID: "s", Attempt: 1, IdempotencyKey: "r/s",
		Params: map[string]any{"name": "ops", "wait": "10ms"}, Deadline: time.Now().Add(time.Minute),
	}, func(p spec.Progress) { progress = append(progress, p) })
	if err != nil || out["greeting"] != "hello, ops" || len(progress) != 1 || progress[0].Message != "waiting" {
		t.Fatalf("invoke: outputs %v, progress %+v, err %v", out, progress, err)
	}

	_, err = h.Invoke(ctx, engine.Call{Plugin: "pyhello", Action: "greet", RunID: "r", StepID: "s", Attempt: 2,
		Params: map[string]any{"name": "ops", "fail": "retryable"}}, nil)
	var se *spec.Error
	if !errors.As(err, &se) || !se.Retryable || se.Code != "Throttled" {
		t.Fatalf("retryable failure: %v", err)
	}
	// The host redacts secrets in what it re-emits from any plugin.
	_, err = h.Invoke(ctx, engine.Call{Plugin: "pyhello", Action: "greet", RunID: "r", StepID: "s", Attempt: 1,
		Params: map[string]any{"name": secret, "fail": "fatal"}}, nil)
	if !errors.As(err, &se) || se.Retryable || se.Code != "GreetingRefused" || strings.Contains(err.Error(), secret) {
		t.Fatalf("fatal failure: %v", err)
	}

	// A plugin that dies mid-action fails that call, and the host goes on.
	pid := h.Pid("pyhello")
	done := make(chan error, 1)
	go func() {
		_, err := h.Invoke(ctx, engine.Call{Plugin: "pyhello", Action: "greet", RunID: "r", StepID: "d", Attempt: 1,
			Params: map[string]any{"name": "ops", "wait": "1h"}}, func(p spec.Progress) {
			if p.Message == "waiting" {
				_ = syscall.Kill(pid, syscall.SIGKILL)
			}
		})
		done <- err
	}()
	var dead error
	select {
	case dead = <-done:
	case <-ctx.Done():
		t.Fatal("the call to a killed plugin did not return")
	}
	if !errors.As(dead, &se) || se.Code != pluginhost.CodePluginExited || se.Retryable {
		t.Fatalf("call to a plugin killed mid-action: %v", dead)
	}
	// The next call starts a fresh process.
	out, err = h.Invoke(ctx, engine.Call{Plugin: "pyhello", Action: "greet", RunID: "r", StepID: "e", Attempt: 1,
		Params: map[string]any{"name": "again"}}, nil)
	if err != nil || out["greeting"] != "hello, again" {
		t.Fatalf("call after the restart: %v, %v", out, err)
	}

	pid = h.Pid("pyhello")
	if err := h.Close(); err != nil {
		t.Fatalf("close: %v", err)
	}
	closed = true
	if err := syscall.Kill(pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Fatalf("plugin process %d still exists after Close (kill -0: %v)", pid, err)
	}
	if strings.Contains(logs.String(), secret) {
		t.Fatalf("the secret reached the host's log:\n%s", logs.String())
	}
}
