package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"sync"
	"testing"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// harness runs actions over the real plugin protocol and keeps everything
// the plugin logged or reported, so tests can look for leaked secrets.
type harness struct {
	*plugin.Client
	mu       sync.Mutex
	logs     bytes.Buffer
	progress []plugin.Progress
}

func (h *harness) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.Write(p)
}

func start(t *testing.T, actions ...plugin.Action) *harness {
	t.Helper()
	h := &harness{}
	srv, err := plugin.NewServer(plugin.Info{Name: "spacelift", Version: version}, actions...)
	if err != nil {
		t.Fatal(err)
	}
	srv.SetLogger(hclog.New(&hclog.LoggerOptions{Name: "spacelift", Output: io.MultiWriter(h, testLog{t}), Level: hclog.Trace}))
	gc, gs := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{plugin.PluginName: &plugin.GRPCPlugin{Impl: srv}})
	// Stop the server before closing the client: closing first asks the
	// server to stop itself, which races with gs.Stop (go-plugin v1.8.0).
	t.Cleanup(func() { gs.Stop(); _ = gc.Close() })
	raw, err := gc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	h.Client = raw.(*plugin.Client)
	return h
}

func (h *harness) apply(ctx context.Context, action string, params map[string]any) (map[string]any, error) {
	return h.Client.Apply(ctx, plugin.ApplyCall{RunID: "run-1", StepID: "step", Action: action, Attempt: 1,
		IdempotencyKey: "run-1/step", Params: params}, func(p plugin.Progress) {
		h.mu.Lock()
		h.progress = append(h.progress, p)
		h.mu.Unlock()
	})
}

func (h *harness) everything() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	b.WriteString(h.logs.String())
	for _, p := range h.progress {
		fmt.Fprintf(&b, "%s %v\n", p.Message, p.Fields)
	}
	return b.String()
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }() // a line after the test ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func pluginError(t *testing.T, err error) *plugin.Error {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *plugin.Error", err, err)
	}
	return pe
}
