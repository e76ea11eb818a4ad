package report

import (
	"sort"
	"strings"
	"time"
)

// view is a Run prepared for rendering: its structure, critical path,
// summaries, and a redactor that every free text goes through. Both
// renderers read the same view, so Markdown and HTML always agree.
type view struct {
	run  *Run
	t    *tree
	path *Path
	red  redactor
}

func newView(r *Run) (*view, error) {
	t, err := buildTree(r)
	if err != nil {
		return nil, err
	}
	return &view{run: r, t: t, path: t.criticalPath(), red: newRedactor(r.Inputs)}, nil
}

func (v *view) duration() time.Duration { return v.t.horizon.Sub(v.t.origin) }

func (v *view) offset(t time.Time) time.Duration { return t.Sub(v.t.origin) }

// ended reports whether the run has a recorded end.
func (v *view) ended() bool { return !v.run.Finished.IsZero() }

// milestone is a Milestone with its distance from the run's start.
type milestone struct {
	Milestone
	since time.Duration
	// resume: a marker of the run's resumption, drawn like a milestone.
	resume bool
}

func (v *view) milestones() []milestone {
	out := make([]milestone, 0, len(v.run.Milestones))
	for _, m := range v.run.Milestones {
		m.Name = v.red.text(m.Name)
		out = append(out, milestone{Milestone: m, since: v.offset(m.At)})
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].At.Before(out[j].At) })
	return out
}

// evidenceOutput is the step output in which an action records what ended
// its wait (the AWS plugin's switchover and failover: which reads, where,
// when): an object with a "summary", or a string.
const evidenceOutput = "done_evidence"

type evidence struct{ Step, Summary string }

// evidence lists, in document order, what ended each step's wait.
func (v *view) evidence() []evidence {
	var out []evidence
	for _, n := range v.t.rows {
		var summary string
		switch e := n.step.Outputs[evidenceOutput].(type) {
		case string:
			summary = e
		case map[string]any:
			summary, _ = e["summary"].(string)
		}
		if summary != "" {
			out = append(out, evidence{Step: n.step.ID, Summary: oneLine(v.red.text(summary))})
		}
	}
	return out
}

// approvalWait is the time spent waiting for people, pending approvals
// counted up to the end of the report.
func (v *view) approvalWait() time.Duration {
	var d time.Duration
	for _, a := range v.run.Approvals {
		if a.RequestedAt.IsZero() {
			continue
		}
		end := a.GrantedAt
		if end.IsZero() {
			end = v.t.horizon
		}
		if end.After(a.RequestedAt) {
			d += end.Sub(a.RequestedAt)
		}
	}
	return d
}

// retried lists the failed attempts of every step, in display order.
type failedAttempt struct {
	step    *node
	attempt Attempt
	last    bool // the step's last attempt: no retry followed
}

func (v *view) failedAttempts() []failedAttempt {
	var out []failedAttempt
	for _, n := range v.t.rows {
		as := n.step.Attempts
		for i, a := range as {
			if a.Error != "" {
				out = append(out, failedAttempt{step: n, attempt: a, last: i == len(as)-1})
			}
		}
	}
	return out
}

func (v *view) rollbacks() []*node {
	var out []*node
	for _, n := range v.t.rows {
		if n.step.Rollback != nil {
			out = append(out, n)
		}
	}
	sort.SliceStable(out, func(i, j int) bool {
		a, b := out[i].step.Rollback.Started, out[j].step.Rollback.Started
		if a.IsZero() != b.IsZero() {
			return b.IsZero()
		}
		return a.Before(b)
	})
	return out
}

// retries counts the attempts beyond the first, over all steps.
func (v *view) retries() int {
	n := 0
	for _, s := range v.t.rows {
		if len(s.step.Attempts) > 1 {
			n += len(s.step.Attempts) - 1
		}
	}
	return n
}

// statusText is a run status in words, upper case for the header.
func runStatusText(s RunStatus) string {
	switch s {
	case RunSucceeded:
		return "SUCCEEDED"
	case RunFailed:
		return "FAILED"
	case RunRolledBack:
		return "FAILED, ROLLED BACK"
	case RunRollbackFailed:
		return "FAILED, ROLLBACK FAILED: MANUAL ATTENTION NEEDED"
	case RunPaused:
		return "PAUSED, AWAITING APPROVAL"
	case RunInterrupted:
		return "INTERRUPTED"
	case RunRunning:
		return "RUNNING"
	case RunIncomplete:
		return "INCOMPLETE (NO FINAL RECORD)"
	case "":
		return "UNKNOWN"
	}
	return string(s)
}

// runGlyph is a symbol that repeats the status in shape, not colour.
func runGlyph(s RunStatus) string {
	switch s {
	case RunSucceeded:
		return "✓"
	case RunFailed, RunRollbackFailed:
		return "✗"
	case RunRolledBack:
		return "↶"
	case RunPaused:
		return "‖"
	case RunInterrupted:
		return "■"
	}
	return "…"
}

func stepGlyph(s StepStatus) string {
	switch s {
	case StepSucceeded:
		return "✓"
	case StepFailed:
		return "✗"
	case StepSkipped:
		return "⊘"
	case StepPending:
		return "○"
	case StepWaiting:
		return "‖"
	case StepInterrupted:
		return "■"
	}
	return "…"
}

func stepStatusText(s StepStatus) string {
	if s == "" {
		return "unknown"
	}
	return string(s)
}

// rollbackStatusText describes a rollback for tables.
func rollbackStatusText(s StepStatus) string {
	switch s {
	case StepSucceeded:
		return "rolled back"
	case StepFailed:
		return "rollback failed"
	case StepRunning, "":
		return "rolling back"
	}
	return "rollback " + string(s)
}

// statusClass is the CSS/SVG class suffix of a step status; unknown
// statuses share one class.
func statusClass(s StepStatus) string {
	switch s {
	case StepSucceeded, StepFailed, StepSkipped, StepPending, StepRunning, StepWaiting, StepInterrupted:
		return string(s)
	}
	return "unknown"
}

// within names the groups around a step, outermost first: "outer › inner".
func (v *view) within(id string) string {
	n := v.t.byID[id]
	if n == nil {
		return ""
	}
	var parts []string
	for p := n.parent; p != nil; p = p.parent {
		parts = append([]string{p.step.ID}, parts...)
	}
	return strings.Join(parts, " › ")
}

// stepStatusLabel is a step's status in words, with what qualifies it.
func stepStatusLabel(s *Step) string {
	out := stepStatusText(s.Status)
	if s.Status == StepFailed && s.Continued {
		out += " (continued)"
	}
	return out
}

// approvalAnswer describes the answer to an approval: "approved 03:12:48
// (+41.1s)", "denied ...", or "pending".
func (v *view) approvalAnswer(a Approval) string {
	if a.GrantedAt.IsZero() {
		return "pending"
	}
	verb := "✓ approved"
	if a.Denied {
		verb = "✗ denied"
	}
	return verb + " " + fmtClock(a.GrantedAt) + " (" + fmtOffset(v.offset(a.GrantedAt)) + ")"
}

// resumes are the run's resume times in order.
func (v *view) resumes() []time.Time {
	out := append([]time.Time(nil), v.run.Resumes...)
	sort.Slice(out, func(i, j int) bool { return out[i].Before(out[j]) })
	return out
}
