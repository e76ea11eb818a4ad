package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

var regionOut = &schema.Schema{Type: schema.Object, Properties: map[string]*schema.Schema{
	"writer_region": {Type: schema.String},
	"members":       {Type: schema.Array, Items: &schema.Schema{Type: schema.String}},
	"counts":        {Type: schema.Object, Additional: &schema.Schema{Type: schema.Integer}},
}}

// An attempt's outputs past the cap fail the step once (no retry: the
// action did its work), are not journaled, and the message names the
// largest output and how to raise the cap.
func TestOutputsOverTheCapFailTheStep(t *testing.T) {
	big := strings.Repeat("x", 2<<20)
	inv := newInvoker(map[string]action{"x.read": ok(map[string]any{"blob": big, "n": 1.0})})
	rec := &recorder{}
	w := &memWriter{}
	res := mustRun(t, Options{Invoker: inv, OnEvent: rec.on, Journal: w, Runbook: build(t, rbOpts{},
		def{id: "a", uses: "x.read", retry: runbook.Retry{Attempts: 3}, spec: spec.ActionSpec{Idempotent: true}})})
	expectStatus(t, res, StatusFailed)
	if n := len(inv.callsOf("a", false)); n != 1 {
		t.Errorf("%d calls, want 1 (no retry)", n)
	}
	msg := res.Err.Error()
	for _, want := range []string{"x.read returned 2.0 MiB of outputs, more than the cap of 1.0 MiB", `largest: "blob", 2.0 MiB`, "RUNBOOK_MAX_OUTPUT_BYTES"} {
		if !strings.Contains(msg, want) {
			t.Errorf("error %q lacks %q", msg, want)
		}
	}
	for _, r := range w.records {
		if r.Outputs != nil && r.Outputs["blob"] != nil {
			t.Fatalf("the outputs were journaled in %s", r.Type)
		}
	}
	// A lower cap given by the embedder holds too.
	small := newInvoker(map[string]action{"x.read": ok(map[string]any{"blob": strings.Repeat("y", 4<<10)})})
	res = mustRun(t, Options{Invoker: small, MaxOutputBytes: 2 << 10, Runbook: build(t, rbOpts{}, def{id: "a", uses: "x.read"})})
	if res.Status != StatusFailed || !strings.Contains(res.Err.Error(), "more than the cap of 2.0 KiB") {
		t.Fatalf("with a 2 KiB cap: %s %v", res.Status, res.Err)
	}
}

// Outputs that contradict the action's declared schema are refused, naming
// each; lists and maps a Go plugin returns as null are read as empty.
func TestOutputsMustMatchTheirSchema(t *testing.T) {
	cases := []struct {
		name string
		out  map[string]any
		want string // "" = succeeds
	}{
		{"as declared", map[string]any{"writer_region": "eu-west-3", "members": []any{"a"}, "counts": map[string]any{"server": 2.0}}, ""},
		{"null list and map", map[string]any{"writer_region": "eu-west-3", "members": nil, "counts": nil}, ""},
		{"a number for a string", map[string]any{"writer_region": 3.0}, "outputs.writer_region: must be a string, not an integer"},
		{"a fraction in a map of integers", map[string]any{"counts": map[string]any{"server": 1.5}}, "outputs.counts.server: must be an integer"},
		{"a string for a list", map[string]any{"members": "a,b"}, "outputs.members: must be a list"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			inv := newInvoker(map[string]action{"x.read": ok(c.out)})
			res := mustRun(t, Options{Invoker: inv, Runbook: build(t, rbOpts{},
				def{id: "a", uses: "x.read", spec: spec.ActionSpec{Outputs: regionOut}})})
			if c.want == "" {
				expectStatus(t, res, StatusSucceeded)
				if o := stepStatus(t, res, "a").Outputs; c.out["members"] == nil && o["members"] == nil {
					t.Errorf("null list kept as null: %v", o)
				}
				return
			}
			expectStatus(t, res, StatusFailed)
			if msg := res.Err.Error(); !strings.Contains(msg, c.want) || !strings.Contains(msg, "do not match the schema it declares") {
				t.Fatalf("error %q lacks %q", msg, c.want)
			}
		})
	}
}

// An error message of a megabyte is journaled cut to MaxErrorBytes, saying
// its size, after secrets were masked: a secret across the cut is masked
// whole, not cut into a prefix that escapes the redactor.
func TestLongErrorsAreCutAfterRedaction(t *testing.T) {
	secret := "s3cr3t-value-that-must-not-leak"
	head := strings.Repeat("e", MaxErrorBytes-10)
	msg := head + secret + strings.Repeat("z", 1<<20)
	inv := newInvoker(map[string]action{"x.do": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
		return nil, spec.FatalCode("Boom", "%s", msg)
	}})
	w := &memWriter{}
	res := mustRun(t, Options{Invoker: inv, Journal: w, Secrets: []string{secret}, Runbook: build(t, rbOpts{}, def{id: "a", uses: "x.do"})})
	expectStatus(t, res, StatusFailed)
	var failed *journal.Record
	for i := range w.records {
		if w.records[i].Type == journal.AttemptFailed {
			failed = &w.records[i]
		}
	}
	if failed == nil {
		t.Fatal("no attempt_failed record")
	}
	m := failed.Error.Message
	if len(m) > MaxErrorBytes+100 || !strings.Contains(m, "[cut: 1.0 MiB in all]") {
		t.Fatalf("message of %d bytes, ends %q", len(m), m[max(0, len(m)-60):])
	}
	if strings.Contains(m, secret[:6]) || !strings.Contains(m, redact.Mask) {
		t.Fatalf("the secret across the cut was not masked whole: ...%q", m[MaxErrorBytes-40:])
	}
}

// A step's timeout stops the evaluation of its `if` and its `with`, not only
// its attempts: the evaluation ends on the step's deadline (its own 5 s
// bound would say so in its message), and the action is never called.
func TestStepTimeoutStopsItsExpressions(t *testing.T) {
	slow := `let s = repeat("a", 1000000); all(1..900000, indexOf(s, "b") < 0)`
	for _, where := range []string{"if", "with"} {
		t.Run(where, func(t *testing.T) {
			d := def{id: "a", uses: "x.do", timeout: 200 * time.Millisecond}
			if where == "if" {
				d.ifSrc = slow
			} else {
				d.with = map[string]any{"v": "${{ " + slow + " }}"}
			}
			inv := newInvoker(nil)
			res := mustRun(t, Options{Invoker: inv, Runbook: build(t, rbOpts{}, d)})
			expectStatus(t, res, StatusFailed)
			if msg := res.Err.Error(); !strings.Contains(msg, "the time allowed for it ran out") {
				t.Fatalf("error %q: not stopped by the step's timeout", msg)
			}
			if n := len(inv.callsOf("a", false)); n != 0 {
				t.Fatalf("the action was called %d times", n)
			}
		})
	}
}
