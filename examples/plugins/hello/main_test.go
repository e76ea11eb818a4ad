package main

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

func start(t *testing.T) *plugintest.Client {
	return plugintest.Start(t, plugin.Info{Name: "hello", Version: "0.1.0"}, plugin.NewAction("greet", greet))
}

func TestGreet(t *testing.T) {
	c := start(t)
	out, err := c.Apply(plugintest.Context(t), "greet", map[string]any{"name": "ops"})
	if err != nil {
		t.Fatal(err)
	}
	if out["greeting"] != "Hello, ops!" {
		t.Errorf("outputs = %v", out)
	}
	if p := c.Progress(); len(p) != 1 || p[0].Message != "greeting ops" || p[0].Fields["attempt"] != 1.0 {
		t.Errorf("progress = %+v", p)
	}
}

func TestGreetFailsRetryablyForTheFirstAttempts(t *testing.T) {
	c := start(t)
	ctx := plugintest.Context(t)
	for attempt := 1; attempt <= 3; attempt++ {
		out, err := c.ApplyCall(ctx, plugin.ApplyCall{Action: "greet", Attempt: attempt, Params: map[string]any{"name": "ops", "fail_times": 2}})
		var e *plugin.Error
		switch {
		case attempt <= 2 && (!errors.As(err, &e) || !e.Retryable || e.Code != "Shy"):
			t.Errorf("attempt %d: want a retryable Shy error, got %v", attempt, err)
		case attempt == 3 && (err != nil || out["greeting"] != "Hello, ops!"):
			t.Errorf("attempt 3: %v, %v", out, err)
		}
	}
}

func TestGreetStopsWhenCancelled(t *testing.T) {
	c := start(t)
	ctx, cancel := context.WithTimeout(plugintest.Context(t), 50*time.Millisecond)
	defer cancel()
	_, err := c.Apply(ctx, "greet", map[string]any{"name": "ops", "sleep": "1h"})
	if err == nil {
		t.Fatal("greet ignored the cancellation")
	}
}

// The built binary, with its Plan, runs end to end in sdk/pluginhost's
// tests (TestHostRunsTheHelloExample).
func TestGreetSchema(t *testing.T) {
	c := start(t)
	diags, err := c.Validate(plugintest.Context(t), "greet", map[string]any{"sleep": "soon"}, nil)
	if err != nil || len(diags) != 2 {
		t.Errorf("want a missing name and a bad duration, got %+v, %v", diags, err)
	}
}
