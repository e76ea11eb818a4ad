package report

import (
	"time"
)

// node is a step placed in the runbook's structure, with the interval it
// occupied on the run's time axis.
type node struct {
	step     *Step
	parent   *node
	children []*node
	depth    int
	// ran: the step occupies an interval [start, end]. False for steps
	// that never started and for skipped steps without a timestamp.
	ran        bool
	start, end time.Time
	// open: still running at the end of the report (end is the horizon).
	open bool
}

func (n *node) isGroup() bool { return n.step.Parallel || len(n.children) > 0 }

func (n *node) skipped() bool { return n.step.Status == StepSkipped }

// took reports whether the step took time on the axis (skipped steps are
// instants, not work).
func (n *node) took() bool { return n.ran && !n.skipped() }

// tree is the run's steps arranged as the runbook ran them: a sequence of
// top-level steps, parallel groups holding their children.
type tree struct {
	run  *Run
	top  []*node
	byID map[string]*node
	// rows: every node in display order (depth first, groups before their
	// children, siblings in document order).
	rows []*node
	// origin is the run's start; horizon the end of the report's time
	// axis (the run's end, or the latest time recorded).
	origin, horizon time.Time
}

func buildTree(r *Run) (*tree, error) {
	t := &tree{run: r, byID: make(map[string]*node, len(r.Steps))}
	nodes := make([]*node, len(r.Steps))
	for i := range r.Steps {
		s := &r.Steps[i]
		if s.ID == "" {
			return nil, invalid("step %d has no id", i+1)
		}
		if t.byID[s.ID] != nil {
			return nil, invalid("duplicate step id %q", s.ID)
		}
		nodes[i] = &node{step: s}
		t.byID[s.ID] = nodes[i]
	}
	for _, n := range nodes {
		g := n.step.Group
		if g == "" {
			t.top = append(t.top, n)
			continue
		}
		p := t.byID[g]
		if p == nil {
			return nil, invalid("step %q: group %q is not a step of the run", n.step.ID, g)
		}
		if p.step.Uses != "" {
			return nil, invalid("step %q: group %q is an action (%s), not a parallel group", n.step.ID, g, p.step.Uses)
		}
		n.parent = p
		p.children = append(p.children, n)
	}
	// Every node must reach the top level by following parents; a cycle
	// of groups never does.
	for _, n := range nodes {
		seen := 0
		for p := n.parent; p != nil; p = p.parent {
			if seen++; seen > len(nodes) {
				return nil, invalid("step %q: groups contain each other", n.step.ID)
			}
		}
	}
	var walk func([]*node, int)
	walk = func(ns []*node, depth int) {
		for _, n := range ns {
			n.depth = depth
			t.rows = append(t.rows, n)
			walk(n.children, depth+1)
		}
	}
	walk(t.top, 0)

	t.origin, t.horizon = timeBounds(r)
	for _, n := range t.top {
		t.place(n)
	}
	return t, nil
}

// place computes n's interval: its own timestamps where recorded, else
// what its children or attempts show (a group's own records may be
// missing from an older or truncated journal). A step that has not
// finished ends at the horizon and is marked open.
func (t *tree) place(n *node) {
	for _, c := range n.children {
		t.place(c)
	}
	s := n.step
	if s.Status == StepSkipped {
		at := s.Started
		if at.IsZero() {
			at = s.Finished
		}
		n.ran, n.start, n.end = !at.IsZero(), at, at
		return
	}
	start, end := s.Started, s.Finished
	var lastChild time.Time
	childOpen := false
	for _, c := range n.children {
		if !c.took() {
			continue
		}
		if s.Started.IsZero() && (start.IsZero() || c.start.Before(start)) {
			start = c.start
		}
		if c.end.After(lastChild) {
			lastChild = c.end
		}
		childOpen = childOpen || c.open
	}
	if start.IsZero() && len(s.Attempts) > 0 {
		start = s.Attempts[0].Started
	}
	if start.IsZero() {
		return
	}
	if end.IsZero() && finished(s.Status) {
		switch {
		case n.isGroup() && !childOpen && !lastChild.IsZero():
			end = lastChild
		case len(s.Attempts) > 0 && !s.Attempts[len(s.Attempts)-1].Finished.IsZero():
			end = s.Attempts[len(s.Attempts)-1].Finished
		}
	}
	n.ran, n.start, n.end = true, start, end
	if end.IsZero() {
		n.end, n.open = t.horizon, true
	}
	if n.end.Before(n.start) {
		n.end = n.start
	}
}

func finished(s StepStatus) bool {
	return s == StepSucceeded || s == StepFailed || s == StepSkipped
}

// timeBounds returns the run's start and the end of its time axis: the
// recorded finish, or else the latest timestamp anywhere in the run.
func timeBounds(r *Run) (origin, horizon time.Time) {
	var lo, hi time.Time
	see := func(ts ...time.Time) {
		for _, x := range ts {
			if x.IsZero() {
				continue
			}
			if lo.IsZero() || x.Before(lo) {
				lo = x
			}
			if x.After(hi) {
				hi = x
			}
		}
	}
	see(r.Started, r.Finished)
	for i := range r.Steps {
		s := &r.Steps[i]
		see(s.Started, s.Finished)
		for _, a := range s.Attempts {
			see(a.Started, a.Finished)
		}
		if s.Rollback != nil {
			see(s.Rollback.Started, s.Rollback.Finished)
		}
	}
	for _, a := range r.Approvals {
		see(a.RequestedAt, a.GrantedAt)
	}
	for _, m := range r.Milestones {
		see(m.At)
	}
	for _, e := range r.Events {
		see(e.At)
	}
	see(r.Resumes...)
	origin, horizon = r.Started, r.Finished
	if origin.IsZero() {
		origin = lo
	}
	if horizon.IsZero() || horizon.Before(hi) {
		horizon = hi
	}
	if horizon.Before(origin) {
		horizon = origin
	}
	return origin, horizon
}

// attemptEnd is when an attempt ended, or the horizon if it had not.
func (t *tree) attemptEnd(a Attempt) time.Time {
	if a.Finished.IsZero() {
		return t.horizon
	}
	return a.Finished
}

// rollbackInterval returns the interval of n's rollback, if it started.
func (t *tree) rollbackInterval(n *node) (start, end time.Time, ok bool) {
	rb := n.step.Rollback
	if rb == nil || rb.Started.IsZero() {
		return time.Time{}, time.Time{}, false
	}
	end = rb.Finished
	if end.IsZero() {
		end = t.horizon
	}
	if end.Before(rb.Started) {
		end = rb.Started
	}
	return rb.Started, end, true
}
