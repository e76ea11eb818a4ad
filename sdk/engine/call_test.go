package engine

import (
	"context"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// callRunbook is a runbook whose step "switch" calls a runbook of three
// steps (db, approve, dns) with the input region; "after" reads the call's
// output, and "last" may fail.
func callRunbook(t *testing.T, lastFails bool) *runbook.Runbook {
	t.Helper()
	region := &runbook.Input{Name: "region", Type: runbook.TypeString, Required: true}
	callee := build(t, rbOpts{inputs: []*runbook.Input{region}, outputs: map[string]string{"writer": "${{ steps.db.outputs.writer }}"}},
		def{id: "db", uses: "x.do", with: map[string]any{"region": "${{ inputs.region }}"}, rollback: &rbDef{uses: "x.undo", with: map[string]any{"region": "${{ inputs.region }}"}}},
		def{id: "approve", uses: "core.approve", with: map[string]any{"message": "go to ${{ inputs.region }}?"}},
		def{id: "dns", uses: "x.do", rollback: &rbDef{uses: "x.undo"}},
	)
	last := "x.do"
	if lastFails {
		last = "x.fail"
	}
	rb := build(t, rbOpts{inputs: []*runbook.Input{{Name: "target", Type: runbook.TypeString, Default: "eu-west-3", HasDefault: true}},
		outputs: map[string]string{"writer": "${{ steps.switch.outputs.writer }}"}},
		def{id: "first", uses: "x.do", rollback: &rbDef{uses: "x.undo"}},
		def{id: "switch", uses: "x.placeholder"}, // replaced by the call below
		def{id: "after", uses: "x.do", with: map[string]any{"writer": "${{ steps.switch.outputs.writer }}"}},
		def{id: "last", uses: last},
	)
	env := expr.Env{Inputs: map[string]expr.Type{"target": expr.StringType}, Steps: map[string]expr.Type{}}
	call := &runbook.Step{ID: "switch", Uses: "./switch.yaml", Call: &runbook.Call{Ref: "./switch.yaml", Runbook: callee},
		With: value(t, map[string]any{"region": "${{ inputs.target }}"}, env)}
	rb.Steps[1] = call
	return rb
}

func calleeInvoker() *fakeInvoker {
	return newInvoker(map[string]action{
		"x.do": func(_ context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			return map[string]any{"writer": c.Params["region"]}, nil
		},
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return nil, fatalErr("boom") },
	})
}

// The called runbook's steps run as the calling step's, with its inputs
// bound by `with`; their paths and idempotency keys name the call; its
// outputs are the step's; an approval inside it is given by its path.
func TestCallRunsTheCalleeInItsOwnScope(t *testing.T) {
	inv := calleeInvoker()
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: callRunbook(t, false), Invoker: inv, OnEvent: rec.on, RunID: "r",
		Approvals: Approvals{Approved: map[string]bool{"switch.approve": true}}})
	expectStatus(t, res, StatusSucceeded)
	db := inv.callsOf("switch.db", false)
	if len(db) != 1 || db[0].Params["region"] != "eu-west-3" || db[0].IdempotencyKey != "r/switch.db" {
		t.Fatalf("switch.db calls: %+v", db)
	}
	if a := inv.callsOf("after", false); len(a) != 1 || a[0].Params["writer"] != "eu-west-3" {
		t.Fatalf("after read the call's output: %+v", a)
	}
	if res.Outputs["writer"] != "eu-west-3" {
		t.Fatalf("outputs %v", res.Outputs)
	}
	if s := stepStatus(t, res, "switch.approve"); s.Group != "switch" || s.Outputs["approved_via"] != "pre-approved" {
		t.Fatalf("switch.approve: %+v", s)
	}
	if got := rec.find(journal.StepStarted, "switch.dns"); len(got) != 1 || got[0].Group != "switch" {
		t.Fatalf("step_started of switch.dns: %+v", got)
	}
}

// A failure after the call rolls back across it: the callee's completed
// steps are compensated with the caller's, most recent first.
func TestCallIsRolledBackAcrossTheBoundary(t *testing.T) {
	inv := calleeInvoker()
	res := mustRun(t, Options{Runbook: callRunbook(t, true), Invoker: inv, RunID: "r", Approvals: Approvals{AutoApprove: true}})
	expectStatus(t, res, StatusFailed)
	if !res.RolledBack || res.Failure == nil || res.Failure.Step != "last" {
		t.Fatalf("rolled back %v, failure %+v", res.RolledBack, res.Failure)
	}
	if diff := cmp.Diff([]string{"switch.dns", "switch.db", "first"}, inv.rollbackOrder()); diff != "" {
		t.Fatalf("rollback order (-want +got):\n%s", diff)
	}
	// The callee's rollback reads the callee's inputs.
	if c := inv.callsOf("switch.db", true); len(c) != 1 || c[0].Params["region"] != "eu-west-3" {
		t.Fatalf("rollback of switch.db: %+v", c)
	}
}

// A run paused inside the callee, then interrupted mid-child on resume,
// then resumed again: the steps of the callee that finished are not run
// again, the cut-off one runs again (idempotent), and a rollback requested
// on the last resume compensates across the call.
func TestCallPausedInterruptedAndResumed(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	inv := calleeInvoker()
	rb := callRunbook(t, false)
	res := runJournaled(t, context.Background(), store, "r1", Options{Runbook: rb, Invoker: inv})
	expectStatus(t, res, StatusPaused)
	if len(res.Waiting) != 1 || res.Waiting[0] != "switch.approve" {
		t.Fatalf("waiting %v", res.Waiting)
	}
	if s := stepStatus(t, res, "switch"); s.Status != StepWaiting {
		t.Fatalf("the call while its step waits: %+v", s)
	}

	// Resumed with the approval; interrupted while switch.dns runs.
	ctx, cancel := context.WithCancel(context.Background())
	inv.actions["x.do"] = func(c context.Context, call Call, _ func(spec.Progress)) (map[string]any, error) {
		if call.StepID == "switch.dns" {
			cancel()
			<-c.Done()
			return nil, c.Err()
		}
		return map[string]any{"writer": call.Params["region"]}, nil
	}
	j := openJournal(t, store, "r1")
	w, err := store.Reopen(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	e, err := New(Options{Runbook: rb, Invoker: inv, Journal: w})
	if err != nil {
		t.Fatal(err)
	}
	res, err = e.Resume(ctx, ResumeOptions{Journal: j, Approved: map[string]bool{"switch.approve": true}})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusInterrupted)
	if s := stepStatus(t, res, "switch.dns"); s.Status != StepInterrupted {
		t.Fatalf("switch.dns: %+v", s)
	}

	// Rolled back at the operator's request: the cut-off step is not
	// compensated (it never completed); the rest is, across the call.
	inv.actions["x.do"] = ok(map[string]any{})
	res, err = resumeJournaled(t, store, "r1", Options{Runbook: rb, Invoker: inv}, ResumeOptions{Rollback: true})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusFailed)
	if diff := cmp.Diff([]string{"switch.db", "first"}, inv.rollbackOrder()); diff != "" {
		t.Fatalf("rollback order (-want +got):\n%s", diff)
	}
	if n := len(inv.callsOf("switch.db", false)); n != 1 {
		t.Fatalf("switch.db ran %d times", n)
	}
	if c := inv.callsOf("switch.db", true); len(c) != 1 || c[0].Params["region"] != "eu-west-3" {
		t.Fatalf("the callee's inputs are bound again on resume: %+v", c)
	}
}
