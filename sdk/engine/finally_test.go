package engine

import (
	"context"
	"testing"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// moveToFinally makes the last n top-level steps of rb its finally steps,
// as the loader does (continue_on_error implied).
func moveToFinally(rb *runbook.Runbook, n int) {
	k := len(rb.Steps) - n
	rb.Finally = rb.Steps[k:]
	rb.Steps = rb.Steps[:k]
	for _, s := range rb.Finally {
		s.ContinueOnError = true
	}
}

// where is a world of one value that steps set and undo and finally reads.
type where struct{ at string }

func whereInvoker(w *where) *fakeInvoker {
	return newInvoker(map[string]action{
		"x.set": func(_ context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			w.at = c.Params["to"].(string)
			return map[string]any{}, nil
		},
		"x.read": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			return map[string]any{"at": w.at}, nil
		},
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return nil, fatalErr("boom") },
	})
}

// The finally steps run after the rollbacks, and the outputs of the failed,
// rolled-back run say what they read: where things are, not where the run
// had put them.
func TestFinallyReadsAfterTheRollbacks(t *testing.T) {
	w := &where{at: "primary"}
	inv := whereInvoker(w)
	rb := build(t, rbOpts{outputs: map[string]string{"at": "${{ steps.now.outputs.at }}", "then": "${{ steps.gate.status }}", "undone": "${{ steps.move.rolled_back }}"}},
		def{id: "move", uses: "x.set", with: map[string]any{"to": "dr"}, rollback: &rbDef{uses: "x.set", with: map[string]any{"to": "primary"}}},
		def{id: "later", uses: "x.fail"},
		def{id: "gate", uses: "x.read"},
		def{id: "now", uses: "x.read", ifSrc: `steps.move.status == "succeeded" && steps.gate.status == "pending"`},
	)
	// gate never runs (it comes after the failure): now reads its status as
	// pending.
	moveToFinally(rb, 1)
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, RunID: "r"})
	expectStatus(t, res, StatusFailed)
	if !res.RolledBack {
		t.Fatalf("not rolled back: %+v", res)
	}
	if len(inv.callsOf("move", true)) != 1 || len(inv.callsOf("now", false)) != 1 {
		t.Fatalf("calls: %+v", inv.calls)
	}
	last := inv.calls[len(inv.calls)-1]
	if last.StepID != "now" {
		t.Fatalf("the last call is %s, want the finally step now after the rollback", last.StepID)
	}
	if res.Outputs["at"] != "primary" || res.Outputs["undone"] != true {
		t.Fatalf("outputs %v: want at = primary (read after the rollback), undone (move was rolled back)", res.Outputs)
	}
	if _, ok := res.Outputs["then"]; ok {
		t.Fatalf("output then reads a step that never ran: %v", res.Outputs)
	}
}

// A finally step's failure is tolerated: the run's outcome stands.
func TestFinallyFailureIsTolerated(t *testing.T) {
	w := &where{at: "primary"}
	rb := build(t, rbOpts{outputs: map[string]string{"read": "${{ steps.now.status }}"}},
		def{id: "move", uses: "x.set", with: map[string]any{"to": "dr"}},
		def{id: "now", uses: "x.fail"},
	)
	moveToFinally(rb, 1)
	res := mustRun(t, Options{Runbook: rb, Invoker: whereInvoker(w), RunID: "r"})
	expectStatus(t, res, StatusSucceeded)
	if res.Outputs["read"] != "failed" {
		t.Fatalf("outputs %v", res.Outputs)
	}
}

// A run paused for an approval is not over: no finally step runs.
func TestFinallyDoesNotRunWhilePaused(t *testing.T) {
	w := &where{at: "primary"}
	inv := whereInvoker(w)
	rb := build(t, rbOpts{},
		def{id: "ok", uses: "core.approve", with: map[string]any{"message": "go?"}},
		def{id: "now", uses: "x.read"},
	)
	moveToFinally(rb, 1)
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, RunID: "r"})
	expectStatus(t, res, StatusPaused)
	if len(inv.callsOf("now", false)) != 0 {
		t.Fatalf("finally ran in a paused run")
	}
}

// A called runbook's finally steps run at the end of the whole run, after
// the program's rollbacks; the call's outputs are rendered again then, also
// when the call failed, and the caller's outputs read them.
func TestCalleeFinallyFeedsTheCallersOutputs(t *testing.T) {
	w := &where{at: "primary"}
	inv := whereInvoker(w)
	callee := build(t, rbOpts{outputs: map[string]string{"at": "${{ steps.now.outputs.at }}"}},
		def{id: "move", uses: "x.set", with: map[string]any{"to": "dr"}, rollback: &rbDef{uses: "x.set", with: map[string]any{"to": "primary"}}},
		def{id: "later", uses: "x.fail"},
		def{id: "now", uses: "x.read"},
	)
	moveToFinally(callee, 1)
	rb := build(t, rbOpts{outputs: map[string]string{"at": "${{ steps.switch.outputs.at }}"}},
		def{id: "switch", uses: "x.placeholder"},
	)
	rb.Steps[0] = &runbook.Step{ID: "switch", Uses: "./switch.yaml", Call: &runbook.Call{Ref: "./switch.yaml", Runbook: callee},
		With: value(t, map[string]any{}, expr.Env{Inputs: map[string]expr.Type{}, Steps: map[string]expr.Type{}})}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, RunID: "r"})
	expectStatus(t, res, StatusFailed)
	if c := inv.callsOf("switch.now", false); len(c) != 1 || inv.calls[len(inv.calls)-1].StepID != "switch.now" {
		t.Fatalf("switch.now not called last: %+v", inv.calls)
	}
	if res.Outputs["at"] != "primary" {
		t.Fatalf("outputs %v: want at = primary", res.Outputs)
	}
}
