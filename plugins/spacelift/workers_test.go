package main

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sim/fakes/spaceliftapi"
)

// These tests run the actions against the simulation's Spacelift fake, whose
// workers connect to the broker the IoT domain resolves to when they start.

const iotDomain = "worker-iot.example.com"

type movableBroker struct {
	mu     sync.Mutex
	target string
}

func (b *movableBroker) set(t string) { b.mu.Lock(); b.target = t; b.mu.Unlock() }
func (b *movableBroker) Resolve(context.Context, string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.target, nil
}

// simPool starts the fake with n workers connected to the primary broker.
func simPool(t *testing.T, n int) (*spaceliftapi.Server, *movableBroker) {
	t.Helper()
	s, err := spaceliftapi.Start(keyID, keySecret)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.AddPool(poolID)
	b := &movableBroker{target: "primary-ats.iot.eu-west-1.amazonaws.com"}
	s.SetBrokerDomain(iotDomain, b)
	if _, err := s.AddWorkers(context.Background(), poolID, n); err != nil {
		t.Fatal(err)
	}
	return s, b
}

func simParams(s *spaceliftapi.Server, extra map[string]any) map[string]any {
	p := map[string]any{"worker_pool_id": poolID, "endpoint": s.Endpoint(), "api_key_id": keyID, "api_key_secret": keySecret}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

// cycleNow cycles the pool through the fake's API, as the cycle action does.
func cycleNow(t *testing.T, h *harness, s *spaceliftapi.Server) {
	t.Helper()
	if _, err := h.apply(context.Background(), "worker_pool_cycle", simParams(s, nil)); err != nil {
		t.Fatal(err)
	}
}

func TestWorkerPoolWorkersReadsTheCount(t *testing.T) {
	s, _ := simPool(t, 3)
	h := start(t, poolWorkersAction(), cycleAction())
	out, err := h.apply(context.Background(), "worker_pool_workers", simParams(s, nil))
	if err != nil {
		t.Fatal(err)
	}
	ws := out["workers"].([]any)
	if out["count"] != float64(3) || out["active"] != float64(3) || len(ws) != 3 {
		t.Fatalf("outputs %v", out)
	}
	if id := ws[0].(map[string]any)["id"]; id != s.Workers(poolID)[0].ID {
		t.Errorf("first worker %v, want %s", id, s.Workers(poolID)[0].ID)
	}
	// A cycle drains them: they still count, no longer as active.
	s.SetCycleDelay(time.Hour)
	cycleNow(t, h, s)
	out, err = h.apply(context.Background(), "worker_pool_workers", simParams(s, nil))
	if err != nil || out["count"] != float64(3) || out["active"] != float64(0) {
		t.Fatalf("after a cycle: %v, %v", out, err)
	}

	_, err = h.apply(context.Background(), "worker_pool_workers", simParams(s, map[string]any{"worker_pool_id": "01NOPE"}))
	if pe := pluginError(t, err); pe.Code != "NotFound" || pe.Retryable {
		t.Errorf("unknown pool: %v", pe)
	}
	_, err = h.apply(context.Background(), "worker_pool_workers", simParams(s, map[string]any{"api_key_secret": "wrong-secret-value"}))
	if pe := pluginError(t, err); pe.Code != "Unauthorized" {
		t.Errorf("wrong key: %v", pe)
	}
	if all := h.everything(); strings.Contains(all, keySecret) {
		t.Errorf("the secret leaked:\n%s", all)
	}
	d, err := h.Describe(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := d.Action("worker_pool_workers"); !a.ReadOnly {
		t.Error("worker_pool_workers must be read-only")
	}
}

// Workers restarted after the record moved reconnect: the wait ends with
// them as evidence.
func TestWorkersReconnectedAfterTheMove(t *testing.T) {
	s, b := simPool(t, 2)
	h := start(t, reconnectedAction(), cycleAction())
	moved := time.Now().UTC()
	b.set("dr-ats.iot.eu-west-3.amazonaws.com")
	// A worker takes over a second to drain and come back, so its createdAt
	// (whole seconds) is after the second the record moved in.
	s.SetCycleDelay(1100 * time.Millisecond)
	cycleNow(t, h, s)
	out, err := h.apply(context.Background(), "workers_reconnected", simParams(s, map[string]any{
		"registered_after": moved.Format(time.RFC3339Nano), "min_workers": 2, "wait_timeout": "30s", "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if out["reconnected"] != float64(2) || out["checked"] != true || len(out["workers"].([]any)) != 2 {
		t.Fatalf("outputs %v", out)
	}
	if out["done_evidence"] != out["evidence"] {
		t.Errorf("done_evidence %q, want the evidence %q (the report's \"What ended each wait\")", out["done_evidence"], out["evidence"])
	}
	for _, w := range s.Workers(poolID) {
		if !strings.Contains(out["evidence"].(string), w.ID) {
			t.Errorf("evidence %q does not name %s", out["evidence"], w.ID)
		}
	}
	if all := h.everything(); strings.Contains(all, keySecret) || !strings.Contains(all, "2 of 2 workers reconnected") {
		t.Errorf("progress and logs:\n%s", all)
	}
}

// Workers restarted before the record moved stay on the old broker: the
// wait times out saying how many reconnected.
func TestWorkersRestartedBeforeTheMoveDoNotCount(t *testing.T) {
	s, b := simPool(t, 2)
	s.SetCycleDelay(0)
	h := start(t, reconnectedAction(), cycleAction())
	cycleNow(t, h, s) // before the move
	moved := time.Now().UTC()
	b.set("dr-ats.iot.eu-west-3.amazonaws.com")
	_, err := h.apply(context.Background(), "workers_reconnected", simParams(s, map[string]any{
		"registered_after": moved.Format(time.RFC3339Nano), "min_workers": 2, "wait_timeout": "1s", "poll_interval": "100ms"}))
	pe := pluginError(t, err)
	if pe.Code != "NotReconnected" || pe.Retryable || !strings.Contains(pe.Message, "0 of 2 workers reconnected") {
		t.Fatalf("error %v", pe)
	}
}

// Reconnected means registered after the move and not drained; a partial
// reconnection times out with the count.
func TestWorkersReconnectedCountsOnlyFreshWorkers(t *testing.T) {
	s, _ := simPool(t, 3)
	h := start(t, reconnectedAction())
	// Registered "after" a time well before the workers started: all three count.
	past := time.Now().Add(-time.Hour).UTC().Format(time.RFC3339)
	out, err := h.apply(context.Background(), "workers_reconnected", simParams(s, map[string]any{"registered_after": past, "min_workers": 3, "poll_interval": "100ms"}))
	if err != nil || out["reconnected"] != float64(3) {
		t.Fatalf("%v, %v", out, err)
	}
	_, err = h.apply(context.Background(), "workers_reconnected", simParams(s, map[string]any{"registered_after": past, "min_workers": 4, "wait_timeout": "500ms", "poll_interval": "100ms"}))
	if pe := pluginError(t, err); pe.Code != "NotReconnected" || !strings.Contains(pe.Message, "3 of 4 workers reconnected") {
		t.Fatalf("error %v", pe)
	}
	// In the second the record moved, a worker might have started before it:
	// a createdAt in that second does not count.
	sameSecond := s.Workers(poolID)[0].CreatedAt.Format(time.RFC3339Nano)
	_, err = h.apply(context.Background(), "workers_reconnected", simParams(s, map[string]any{"registered_after": sameSecond, "min_workers": 1, "wait_timeout": "300ms", "poll_interval": "100ms"}))
	if pe := pluginError(t, err); pe.Code != "NotReconnected" {
		t.Fatalf("a worker of the same second counted: %v", err)
	}
}

// A plan reads once and never waits, however far the pool is from the goal.
func TestWorkersReconnectedInAPlan(t *testing.T) {
	s, _ := simPool(t, 2)
	h := start(t, reconnectedAction())
	params := simParams(s, map[string]any{"registered_after": time.Now().UTC().Format(time.RFC3339), "min_workers": 5, "wait_timeout": "1h"})
	out, err := h.Client.Apply(context.Background(), plugin.ApplyCall{RunID: "run-1", StepID: "check", Action: "workers_reconnected", Attempt: 1,
		IdempotencyKey: "run-1/check/plan", Params: params}, nil)
	if err != nil || out["checked"] != false || out["reconnected"] != float64(0) || !strings.Contains(out["evidence"].(string), "not waited") {
		t.Fatalf("plan read: %v, %v", out, err)
	}
	params["registered_after"] = "${{ steps.traffic.finished_at }}"
	plan, err := h.Client.Plan(context.Background(), plugin.PlanCall{RunID: "run-1", StepID: "check", Action: "workers_reconnected", Params: params, Unknown: []string{"/registered_after"}})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(plan.Summary, "the broker record moved (known at run time)") || !strings.Contains(plan.Summary, "the pool lists 2 workers now") {
		t.Errorf("plan summary %q", plan.Summary)
	}
	for _, c := range []struct {
		params map[string]any
		path   string
	}{
		{map[string]any{"worker_pool_id": poolID, "hostname": "x", "registered_after": "yesterday", "min_workers": 1}, "/registered_after"},
		{map[string]any{"worker_pool_id": poolID, "hostname": "x", "registered_after": "2025-03-04T05:06:07Z", "min_workers": 0}, "/min_workers"},
		{map[string]any{"worker_pool_id": poolID, "endpoint": "http://spacelift.example.com/graphql", "registered_after": "2025-03-04T05:06:07Z", "min_workers": 1}, "/endpoint"},
	} {
		diags, err := h.Client.Validate(context.Background(), "workers_reconnected", c.params, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(diags) != 1 || diags[0].Path != c.path {
			t.Errorf("%v: diagnostics %+v, want one at %s", c.params, diags, c.path)
		}
	}
}
