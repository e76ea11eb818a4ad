package report

import (
	"sort"
	"time"
)

// Path is a run's critical path: the chain of steps (and rollbacks) whose
// durations add up to the run's duration, so that making any of them
// shorter would have made the run shorter.
type Path struct {
	// Steps are the ids on the path in time order, a parallel group before
	// the children of it that are on the path.
	Steps []string
	// Segments are the intervals that make up the path: actions (never
	// groups, whose time is their children's) and rollbacks, in time order.
	Segments []Segment

	steps     map[string]bool
	rollbacks map[string]bool
}

// Segment is one interval on the critical path.
type Segment struct {
	Step string
	// Rollback: the interval is the step's rollback, not the step.
	Rollback   bool
	Start, End time.Time
}

// Has reports whether the step is on the path.
func (p *Path) Has(step string) bool { return p.steps[step] }

// HasRollback reports whether the step's rollback is on the path.
func (p *Path) HasRollback(step string) bool { return p.rollbacks[step] }

// Busy is the time covered by the path's segments. The rest of the run's
// duration was spent between steps: the interpreter's own overhead, or a
// paused run waiting to be resumed.
func (p *Path) Busy() time.Duration {
	var total time.Duration
	var reach time.Time
	for _, s := range p.Segments { // sorted by start: count overlaps once
		start := s.Start
		if start.Before(reach) {
			start = reach
		}
		if s.End.After(start) {
			total += s.End.Sub(start)
		}
		if s.End.After(reach) {
			reach = s.End
		}
	}
	return total
}

// CriticalPath computes the run's critical path from the recorded step
// intervals and the runbook's structure.
func CriticalPath(r *Run) (*Path, error) {
	t, err := buildTree(r)
	if err != nil {
		return nil, err
	}
	return t.criticalPath(), nil
}

// criticalPath walks the structure the engine executed:
//
//   - Top-level steps run in sequence: each starts only after the previous
//     one ended, so every one that took time is on the path. So do the
//     steps of a called runbook, under the step that calls it. (Skipped steps
//     took none; steps that never started are not part of the run.)
//   - A parallel group ends when its last child ends, so the child that
//     finished last is on the path; when all children start together, as
//     they do without max_parallel, that is simply the longest child. If
//     that child started after the group did, it waited for a concurrency
//     slot, which the child that finished last before it started had
//     freed: walk back through such children until one started with the
//     group. Ties go to the longer child, then to document order. A child
//     on the path that is itself a group is expanded the same way.
//   - Rollbacks run after the forward steps, in reverse completion order;
//     the same backward walk from the rollback that ended last gives the
//     chain of rollbacks that determined when the run ended.
//
// The path uses measured intervals, not durations alone, so retries,
// approval waits and scheduling delays count where they really happened.
func (t *tree) criticalPath() *Path {
	p := &Path{steps: map[string]bool{}, rollbacks: map[string]bool{}}
	var seq func(ns []*node)
	var add func(n *node)
	add = func(n *node) {
		p.Steps = append(p.Steps, n.step.ID)
		p.steps[n.step.ID] = true
		if !n.isGroup() {
			p.Segments = append(p.Segments, Segment{Step: n.step.ID, Start: n.start, End: n.end})
			return
		}
		if n.step.Calls != "" {
			// The steps of a called runbook run one after another.
			seq(n.children)
			return
		}
		for _, c := range chain(n.start, n.children) {
			add(c)
		}
	}
	seq = func(ns []*node) {
		for _, n := range ns {
			if n.took() {
				add(n)
			}
		}
	}
	seq(t.top)

	var rbs []*node
	rbStart := map[*node][2]time.Time{}
	for _, n := range t.rows {
		if s, e, ok := t.rollbackInterval(n); ok {
			rbs = append(rbs, n)
			rbStart[n] = [2]time.Time{s, e}
		}
	}
	if len(rbs) > 0 {
		iv := func(n *node) (time.Time, time.Time) { x := rbStart[n]; return x[0], x[1] }
		// Rollbacks have no group start to stop at: walk back as far
		// as predecessors exist.
		for _, n := range backWalk(time.Time{}, rbs, iv) {
			s, e := iv(n)
			p.rollbacks[n.step.ID] = true
			p.Segments = append(p.Segments, Segment{Step: n.step.ID, Rollback: true, Start: s, End: e})
		}
	}
	sort.SliceStable(p.Segments, func(i, j int) bool { return p.Segments[i].Start.Before(p.Segments[j].Start) })
	return p
}

// chain returns the children of a group that form its critical path, in
// time order.
func chain(groupStart time.Time, children []*node) []*node {
	var ran []*node
	for _, c := range children {
		if c.took() {
			ran = append(ran, c)
		}
	}
	return backWalk(groupStart, ran, func(n *node) (time.Time, time.Time) { return n.start, n.end })
}

// backWalk picks the candidate that ended last, then repeatedly the one
// that ended last at or before the current one's start, until the current
// one started at or before floor (or nothing precedes it). Candidates are
// in document order, which breaks the remaining ties.
func backWalk(floor time.Time, cands []*node, iv func(*node) (time.Time, time.Time)) []*node {
	if len(cands) == 0 {
		return nil
	}
	used := map[*node]bool{}
	better := func(a, b *node) bool { // a ends later, or as late and is longer
		as, ae := iv(a)
		bs, be := iv(b)
		if !ae.Equal(be) {
			return ae.After(be)
		}
		return as.Before(bs)
	}
	var cur *node
	for _, c := range cands {
		if cur == nil || better(c, cur) {
			cur = c
		}
	}
	out := []*node{cur}
	used[cur] = true
	for {
		cs, _ := iv(cur)
		if !floor.IsZero() && !cs.After(floor) {
			break
		}
		var pred *node
		for _, c := range cands {
			if used[c] {
				continue
			}
			s, e := iv(c)
			// A zero-length candidate at cur's own start did not hold
			// cur back; neither did one that ends after cur started.
			if e.After(cs) || (e.Equal(s) && e.Equal(cs)) {
				continue
			}
			if pred == nil || better(c, pred) {
				pred = c
			}
		}
		if pred == nil {
			break
		}
		used[pred] = true
		out = append(out, pred)
		cur = pred
	}
	for i, j := 0, len(out)-1; i < j; i, j = i+1, j-1 {
		out[i], out[j] = out[j], out[i]
	}
	return out
}
