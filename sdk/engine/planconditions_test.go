package engine

import (
	"testing"

	"github.com/runbookhq/runbook/sdk/spec"
)

// A warning of a step's plan that names a resource an earlier step changes
// is a condition of that step; one nothing explains stays a warning.
func TestPlanConditionsOfEarlierSteps(t *testing.T) {
	res := &PlanResult{Steps: []PlanStep{
		{ID: "db", Decision: PlanRun, Plan: &spec.Plan{Changes: []spec.Change{{Resource: "aurora global cluster gc", Field: "writer", Kind: spec.ChangeUpdate}}}},
		{ID: "other", Decision: PlanSkip, Plan: &spec.Plan{Changes: []spec.Change{{Resource: "aurora global cluster gc", Kind: spec.ChangeUpdate}}}},
		{ID: "start", Decision: PlanRun, Plan: &spec.Plan{Diagnostics: []spec.Diagnostic{
			{Severity: spec.SeverityWarning, Summary: "guard (aurora global cluster gc): writer elsewhere"},
			{Severity: spec.SeverityWarning, Summary: "bucket b has no rule"},
		}}},
	}}
	planConditions(res)
	s := res.Steps[2]
	if len(s.Conditions) != 1 || s.Conditions[0] != "will be checked after db: guard (aurora global cluster gc): writer elsewhere" {
		t.Fatalf("conditions %q", s.Conditions)
	}
	if len(s.Plan.Diagnostics) != 1 || s.Plan.Diagnostics[0].Summary != "bucket b has no rule" {
		t.Fatalf("diagnostics %+v", s.Plan.Diagnostics)
	}
}
