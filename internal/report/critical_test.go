package report

import (
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// act is an action step that ran from s to e seconds after t0.
func act(id, group string, s, e float64) Step {
	return Step{ID: id, Uses: "x.y", Group: group, Status: StepSucceeded, Started: at(s), Finished: at(e)}
}

// grp is a parallel group without its own timestamps (derived from its
// children).
func grp(id, group string) Step {
	return Step{ID: id, Group: group, Parallel: true, Status: StepSucceeded}
}

func TestCriticalPath(t *testing.T) {
	cases := map[string]struct {
		steps     []Step
		finished  float64
		wantSteps []string
		wantRB    []string
		wantBusy  time.Duration
	}{
		"sequence: every step that took time": {
			steps: []Step{
				act("a", "", 0, 2),
				{ID: "b", Uses: "x.y", Status: StepSkipped, Started: at(2.1)},
				act("c", "", 2.2, 5),
				{ID: "d", Uses: "x.y", Status: StepPending},
			},
			wantSteps: []string{"a", "c"},
			wantBusy:  4800 * time.Millisecond,
		},
		"parallel: the child that ends last": {
			steps: []Step{
				act("a", "", 0, 1),
				grp("g", ""),
				act("short", "g", 1, 3), act("long", "g", 1, 9), act("mid", "g", 1, 5),
				act("z", "", 9, 10),
			},
			wantSteps: []string{"a", "g", "long", "z"},
			wantBusy:  10 * time.Second,
		},
		"overlapping: a shorter child that ends later wins": {
			// b started late (scheduling) and ended after the longer a:
			// the group ended when b did.
			steps:     []Step{grp("g", ""), act("a", "g", 0, 10), act("b", "g", 2, 11)},
			wantSteps: []string{"g", "b"},
			wantBusy:  9 * time.Second,
		},
		"max_parallel: the slot chain": {
			// Two slots: a and b start; c takes b's slot at 3, d a's at 5.
			// c ends last and waited for b.
			steps: []Step{
				grp("g", ""),
				act("a", "g", 0, 5), act("b", "g", 0, 3), act("c", "g", 3, 9), act("d", "g", 5, 7),
			},
			wantSteps: []string{"g", "b", "c"},
			wantBusy:  9 * time.Second,
		},
		"max_parallel 1: children in sequence": {
			steps: []Step{
				grp("g", ""),
				act("a", "g", 0, 2), act("b", "g", 2, 5), act("c", "g", 5, 6),
			},
			wantSteps: []string{"g", "a", "b", "c"},
			wantBusy:  6 * time.Second,
		},
		"nested parallel": {
			steps: []Step{
				grp("outer", ""),
				grp("inner", "outer"),
				act("x", "inner", 0, 4), act("y", "inner", 0, 7),
				act("z", "outer", 0, 6),
				act("after", "", 7, 8),
			},
			wantSteps: []string{"outer", "inner", "y", "after"},
			wantBusy:  8 * time.Second,
		},
		"nested parallel: the plain child is longer": {
			steps: []Step{
				grp("outer", ""),
				grp("inner", "outer"),
				act("x", "inner", 0, 4), act("y", "inner", 0, 5),
				act("z", "outer", 0, 6),
			},
			wantSteps: []string{"outer", "z"},
			wantBusy:  6 * time.Second,
		},
		"skipped and pending children are never on the path": {
			steps: []Step{
				grp("g", ""),
				{ID: "s", Uses: "x.y", Group: "g", Status: StepSkipped, Started: at(0)},
				{ID: "p", Uses: "x.y", Group: "g", Status: StepPending},
				act("a", "g", 0, 3),
			},
			wantSteps: []string{"g", "a"},
			wantBusy:  3 * time.Second,
		},
		"a skipped group": {
			steps: []Step{
				act("a", "", 0, 1),
				{ID: "g", Parallel: true, Status: StepSkipped, Started: at(1)},
				{ID: "c", Uses: "x.y", Group: "g", Status: StepSkipped, Started: at(1)},
				act("b", "", 1, 2),
			},
			wantSteps: []string{"a", "b"},
			wantBusy:  2 * time.Second,
		},
		"ties: longer first, then document order": {
			steps: []Step{
				grp("g", ""), act("a", "g", 1, 5), act("b", "g", 0, 5),
				grp("h", ""), act("c", "h", 5, 8), act("d", "h", 5, 8),
			},
			wantSteps: []string{"g", "b", "h", "c"},
			wantBusy:  8 * time.Second,
		},
		"running step ends at the horizon": {
			steps: []Step{
				act("a", "", 0, 1),
				grp("g", ""),
				act("done", "g", 1, 4),
				{ID: "open", Uses: "x.y", Group: "g", Status: StepRunning, Started: at(1)},
			},
			finished:  10,
			wantSteps: []string{"a", "g", "open"},
			wantBusy:  10 * time.Second,
		},
		"gaps between steps are not busy time": {
			steps:     []Step{act("a", "", 0, 1), act("b", "", 3, 4)},
			wantSteps: []string{"a", "b"},
			wantBusy:  2 * time.Second,
		},
		"rollbacks chain after the failure": {
			steps: []Step{
				{ID: "a", Uses: "x.y", Status: StepSucceeded, Started: at(0), Finished: at(1),
					Rollback: &RollbackInfo{Status: StepSucceeded, Started: at(7), Finished: at(9)}},
				grp("g", ""),
				{ID: "b", Uses: "x.y", Group: "g", Status: StepSucceeded, Started: at(1), Finished: at(3),
					Rollback: &RollbackInfo{Status: StepFailed, Started: at(5), Finished: at(7)}},
				{ID: "c", Uses: "x.y", Group: "g", Status: StepFailed, Started: at(1), Finished: at(5)},
			},
			wantSteps: []string{"a", "g", "c"},
			wantRB:    []string{"b", "a"},
			wantBusy:  9 * time.Second,
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := &Run{ID: "r", Started: t0, Steps: c.steps}
			if c.finished > 0 {
				r.Finished = at(c.finished)
			}
			p, err := CriticalPath(r)
			if err != nil {
				t.Fatal(err)
			}
			if diff := cmp.Diff(c.wantSteps, p.Steps); diff != "" {
				t.Errorf("steps on the path (-want +got):\n%s", diff)
			}
			var rb []string
			for _, s := range p.Segments {
				if s.Rollback {
					rb = append(rb, s.Step)
					if !p.HasRollback(s.Step) {
						t.Errorf("HasRollback(%s) = false", s.Step)
					}
				} else if !p.Has(s.Step) {
					t.Errorf("segment %s not in Has", s.Step)
				}
			}
			if diff := cmp.Diff(c.wantRB, rb); diff != "" {
				t.Errorf("rollbacks on the path (-want +got):\n%s", diff)
			}
			if got := p.Busy(); got != c.wantBusy {
				t.Errorf("Busy() = %v, want %v", got, c.wantBusy)
			}
			for i := 1; i < len(p.Segments); i++ {
				if p.Segments[i].Start.Before(p.Segments[i-1].Start) {
					t.Errorf("segments out of time order: %+v", p.Segments)
				}
			}
		})
	}
}

// A group's own recorded interval wins over its children's extent (the
// engine's group record includes its scheduling), and an unfinished group
// extends to the horizon.
func TestGroupIntervals(t *testing.T) {
	r := &Run{ID: "r", Started: t0, Steps: []Step{
		{ID: "g", Parallel: true, Status: StepSucceeded, Started: at(0), Finished: at(6)},
		act("a", "g", 1, 5),
		{ID: "h", Parallel: true, Status: StepRunning},
		act("b", "h", 6, 7),
		{ID: "c", Uses: "x.y", Group: "h", Status: StepRunning, Started: at(6)},
		{ID: "late", Uses: "x.y", Status: StepPending},
	}, Events: []Event{{At: at(12), Type: "run_interrupted"}}}
	tr, err := buildTree(r)
	if err != nil {
		t.Fatal(err)
	}
	check := func(id string, s, e float64, open bool) {
		t.Helper()
		n := tr.byID[id]
		if !n.ran || !n.start.Equal(at(s)) || !n.end.Equal(at(e)) || n.open != open {
			t.Errorf("%s: ran=%v [%v, %v] open=%v; want [%vs, %vs] open=%v", id, n.ran,
				n.start.Sub(t0), n.end.Sub(t0), n.open, s, e, open)
		}
	}
	check("g", 0, 6, false)
	check("h", 6, 12, true)
	check("c", 6, 12, true)
	if tr.byID["late"].ran {
		t.Errorf("a pending step has an interval")
	}
	if !tr.horizon.Equal(at(12)) {
		t.Errorf("horizon = %v, want the last event", tr.horizon.Sub(t0))
	}
}
