package engine

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// A `with` too large to send or journal fails its step, naming where the
// step is, before the action is called; no record holds the value.
func TestWithTooLargeFailsTheStepWithItsPosition(t *testing.T) {
	inv := newInvoker(nil)
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
		def{id: "big", uses: "x.a", with: map[string]any{"body": `${{ let s = repeat("x", 1000000); s + s + s + s + s }}`}})
	rb.Steps[0].Pos = runbook.Pos{File: "rb.yaml", Line: 7, Col: 5}
	mem := &memWriter{}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, Journal: mem})
	expectStatus(t, res, StatusFailed)
	if len(inv.callsOf("big", false)) != 0 {
		t.Fatal("the action was called with the value")
	}
	msg := res.Failure.Message
	for _, want := range []string{"InvalidParams", "rb.yaml:7:5", "value too large"} {
		if !strings.Contains(res.Failure.Code+" "+msg, want) {
			t.Errorf("failure %q (%s) does not say %q", msg, res.Failure.Code, want)
		}
	}
	for _, r := range mem.records {
		if b, _ := json.Marshal(r); len(b) > 64<<10 {
			t.Errorf("%s record of %d bytes", r.Type, len(b))
		}
	}
}

// Runbook outputs are journaled in one record: together they are bounded.
func TestOutputsTooLargeTogetherAreLeftOut(t *testing.T) {
	rb := build(t, rbOpts{outputs: map[string]string{
		"a": `${{ repeat("aa", 750000) }}`, "b": `${{ repeat("bb", 750000) }}`, "c": `${{ repeat("cc", 750000) }}`,
	}}, def{id: "s", uses: "core.log", with: map[string]any{"message": "hi"}})
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: rb, OnEvent: rec.on})
	expectStatus(t, res, StatusSucceeded)
	if len(res.Outputs) != 2 || res.Outputs["c"] != nil {
		t.Errorf("outputs %v, want a and b only", keysOf(res.Outputs))
	}
	found := false
	for _, ev := range rec.find(journal.Log, "") {
		found = found || strings.Contains(ev.Message, "output c: left out: the outputs add up to more than 4 MiB")
	}
	if !found {
		t.Error("no warning says why c was left out")
	}
}

// Interrupting the run while an expression is evaluated stops the
// evaluation and records the step as interrupted (to resume), not failed.
func TestInterruptDuringEvaluationInterruptsTheStep(t *testing.T) {
	inv := newInvoker(nil)
	rb := build(t, rbOpts{},
		def{id: "slow", uses: "x.a", ifSrc: `let s = repeat("a", 1000000); all(1..900000, indexOf(s, "b") < 0)`})
	e, err := New(Options{Runbook: rb, Invoker: inv})
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	res, err := e.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusInterrupted)
	if s := stepStatus(t, res, "slow"); s.Status != StepInterrupted {
		t.Errorf("step %s, want interrupted", s.Status)
	}
	if len(inv.callsOf("slow", false)) != 0 || len(inv.rollbackOrder()) != 0 {
		t.Error("the action ran or something was rolled back")
	}
}

func keysOf(m map[string]any) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	return out
}
