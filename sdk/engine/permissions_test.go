package engine

import (
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// ActionCalls lists what a run with the inputs may call, without calling
// anything: ifs the inputs decide are applied, ifs on steps are included
// with their condition, rollbacks follow their step.
func TestActionCallsFollowTheInputs(t *testing.T) {
	inv := newInvoker(nil)
	rb := build(t, rbOpts{inputs: []*runbook.Input{{Name: "mode", Type: runbook.TypeString, Default: "planned", HasDefault: true}}},
		def{id: "db", uses: "aws.switch", spec: spec.ActionSpec{}, with: map[string]any{"region": "eu-west-3"}, rollback: &rbDef{uses: "aws.switch"}},
		def{id: "failover", uses: "aws.failover", ifSrc: `inputs.mode == "unplanned"`},
		def{id: "dns", uses: "dns.set", ifSrc: `steps.db.status == "succeeded"`, with: map[string]any{"target": "${{ steps.db.outputs.endpoint }}", "mode": "${{ inputs.mode }}"}},
		def{id: "g", ifSrc: `inputs.mode == "planned"`, parallel: []def{{id: "c1", uses: "x.y"}, {id: "c2", uses: "x.z", ifSrc: `inputs.mode == "unplanned"`}}},
	)
	e, err := New(Options{Runbook: rb, Invoker: inv})
	if err != nil {
		t.Fatal(err)
	}
	calls, err := e.ActionCalls()
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, c := range calls {
		s := c.Step + " " + c.Uses
		if c.Rollback {
			s += " (rollback)"
		}
		if c.Condition != "" {
			s += " if " + c.Condition
		}
		got = append(got, s)
	}
	want := []string{"db aws.switch", "db aws.switch (rollback)", `dns dns.set if steps.db.status == "succeeded"`, "c1 x.y"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("calls (-want +got):\n%s", diff)
	}
	if dns := calls[2]; dns.Params["mode"] != "planned" || dns.Params["target"] != nil || len(dns.Unknown) != 1 || dns.Unknown[0] != "/target" {
		t.Errorf("dns params %v, unknown %v", dns.Params, dns.Unknown)
	}
	if len(inv.calls) != 0 || len(inv.plans) != 0 {
		t.Errorf("ActionCalls called the invoker: %d invocations, %d plans", len(inv.calls), len(inv.plans))
	}
	if _, err := e.ActionCalls(); err == nil {
		t.Error("an engine lists its calls once")
	}
}
