package engine

import (
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// StepRef is a step of a runbook with where it stands in a run: its path
// (journal.StepPath), the path of the parallel group it belongs to ("" at
// the top level), and the path of the runbook it is a step of ("" for the
// run's runbook).
type StepRef struct {
	Step               *runbook.Step
	Path, Group, Scope string
}

// WalkSteps calls fn for every step of rb in document order, a parallel
// group before its children, a step that calls a runbook before the steps
// of that runbook.
func WalkSteps(rb *runbook.Runbook, fn func(StepRef)) {
	var walk func(steps []*runbook.Step, group, scope string)
	walk = func(steps []*runbook.Step, group, scope string) {
		for _, s := range steps {
			ref := StepRef{Step: s, Path: journal.StepPath(scope, s.ID), Group: group, Scope: scope}
			fn(ref)
			walk(s.Parallel, ref.Path, scope)
			if s.Call != nil {
				walk(s.Call.Runbook.AllSteps(), ref.Path, ref.Path)
			}
		}
	}
	walk(rb.AllSteps(), "", "")
}

// NewView returns a view of a run of rb (see journal.View) with every step
// of rb declared, so that it lists them in document order, those that never
// ran included. rb may be nil: steps are then listed as records name them.
func NewView(rb *runbook.Runbook, runID string) *journal.View {
	v := journal.NewView(runID)
	if rb != nil {
		WalkSteps(rb, func(r StepRef) { v.Declare(decl(r)) })
	}
	return v
}

func decl(r StepRef) journal.StepDecl {
	d := journal.StepDecl{Path: r.Path, Parent: r.Group, Uses: r.Step.Uses, Parallel: r.Step.IsGroup(), Milestone: r.Step.Milestone}
	if c := r.Step.Call; c != nil {
		d.Calls = c.Ref
	}
	return d
}
