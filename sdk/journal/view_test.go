package journal

import (
	"testing"
	"time"
)

var v0 = time.Date(2025, 6, 11, 10, 15, 0, 0, time.UTC)

// fold applies records numbered from 1, one second apart.
func fold(v *View, recs ...Record) *View {
	for i, r := range recs {
		r.Seq, r.RunID, r.Time = int64(i+1), "r1", v0.Add(time.Duration(i)*time.Second)
		v.Apply(r)
	}
	return v
}

func TestViewFoldsAStepAndItsAttempts(t *testing.T) {
	v := NewView("r1")
	v.Declare(StepDecl{Path: "db", Uses: "aws.switch", Milestone: "database writable"})
	v.Declare(StepDecl{Path: "later", Uses: "aws.x", Milestone: "database writable"})
	fold(v,
		Record{Type: RunStarted, Run: &RunInfo{Runbook: "rb"}},
		Record{Type: StepStarted, Step: "db", Uses: "aws.switch"},
		Record{Type: AttemptStarted, Step: "db", Attempt: 1},
		Record{Type: AttemptFailed, Step: "db", Attempt: 1, Error: &Error{Message: "throttled", Retryable: true, Class: ClassAction}},
		Record{Type: AttemptStarted, Step: "db", Attempt: 2},
		Record{Type: UntilUnmet, Step: "db", Attempt: 2},
		Record{Type: AttemptStarted, Step: "db", Attempt: 3},
		Record{Type: StepSucceeded, Step: "db", Attempt: 3, Outputs: map[string]any{"writer": "b"}, Duration: Duration(5 * time.Second)},
		Record{Type: StepStarted, Step: "later"},
		Record{Type: StepSucceeded, Step: "later", Attempt: 1},
	)
	s := v.Step("db")
	if s.Status != StateSucceeded || s.Attempt != 3 || s.Outputs["writer"] != "b" || s.CompletedSeq != 8 || s.Duration != 5*time.Second {
		t.Fatalf("db: %+v", s)
	}
	if len(s.Attempts) != 3 || !s.Attempts[0].Retryable || s.Attempts[0].Error.Message != "throttled" || s.Attempts[1].Error != nil ||
		!s.Attempts[1].Finished.Equal(v0.Add(5*time.Second)) || !s.Attempts[2].Finished.Equal(v0.Add(7*time.Second)) {
		t.Fatalf("attempts: %+v", s.Attempts)
	}
	// A milestone is reached once, by the first step marking it.
	if len(v.Milestones) != 1 || v.Milestones[0].Path != "db" || !v.Milestones[0].At.Equal(v0.Add(7*time.Second)) {
		t.Fatalf("milestones: %+v", v.Milestones)
	}
}

// How the last attempt ended decides whether resume may run it again.
func TestViewLastAttempt(t *testing.T) {
	for _, c := range []struct {
		name string
		last Record
		want AttemptEnd
	}{
		{"in flight", Record{Type: Progress}, AttemptInFlight},
		{"retryable action error", Record{Type: AttemptFailed, Error: &Error{Retryable: true, Class: ClassAction}}, AttemptEndedSafe},
		{"timeout", Record{Type: AttemptFailed, Error: &Error{Retryable: true, Class: ClassTimeout}}, AttemptEndedUnsafe},
		{"transport", Record{Type: AttemptFailed, Error: &Error{Class: ClassTransport}}, AttemptEndedUnsafe},
		{"until unmet", Record{Type: UntilUnmet}, AttemptEndedSafe},
	} {
		c.last.Step = "a"
		v := fold(NewView("r1"), Record{Type: RunStarted}, Record{Type: StepStarted, Step: "a"}, Record{Type: AttemptStarted, Step: "a", Attempt: 1}, c.last)
		if got := v.Step("a").Last; got != c.want {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
		if !v.Step("a").Status.Unfinished() {
			t.Errorf("%s: status %s", c.name, v.Step("a").Status)
		}
	}
}

// Attempts left open end with the interruption, or with the last record
// before a resume (a crash); the run's status follows its last terminal
// record.
func TestViewInterruptionsAndResumes(t *testing.T) {
	v := fold(NewView("r1"),
		Record{Type: RunStarted},
		Record{Type: StepStarted, Step: "a"},
		Record{Type: AttemptStarted, Step: "a", Attempt: 1},
		Record{Type: Progress, Step: "a"}, // the crash comes after this
		Record{Type: RunResumed, Resume: &ResumeInfo{RetrySteps: []string{"a"}}},
		Record{Type: AttemptStarted, Step: "a", Attempt: 2},
		Record{Type: StepInterrupted, Step: "a", Attempt: 2, InFlight: true},
		Record{Type: RunInterrupted, Message: "interrupted"},
	)
	s := v.Step("a")
	if len(s.Attempts) != 2 || s.Attempts[0].Error.Message != CutOffMessage || !s.Attempts[0].Finished.Equal(v0.Add(3*time.Second)) ||
		s.Attempts[1].Error.Class != ClassInterrupted {
		t.Fatalf("attempts: %+v", s.Attempts)
	}
	if s.Status != StateInterrupted || !s.InFlight || !s.Status.Unfinished() {
		t.Fatalf("a: %+v", s)
	}
	if v.Status != StatusInterrupted || !v.Finished.Equal(v0.Add(7*time.Second)) || len(v.Resumes) != 1 {
		t.Fatalf("run: %s %s %d", v.Status, v.Finished, len(v.Resumes))
	}
	fold(v, Record{Type: RunResumed, Resume: &ResumeInfo{Rollback: true}})
	if v.Status != StatusRunning || !v.Finished.IsZero() || v.Message != "" || !v.RollbackRequested {
		t.Fatalf("after a resume: %+v", v)
	}
}

// An approval asked again after a pause is the same request; the answer
// is recorded with it, and a granted approval stands on the step.
func TestViewApprovals(t *testing.T) {
	v := fold(NewView("r1"),
		Record{Type: RunStarted},
		Record{Type: StepStarted, Step: "ok"},
		Record{Type: ApprovalRequested, Step: "ok", Attempt: 1, Message: "go?"},
		Record{Type: RunPaused},
		Record{Type: RunResumed, Resume: &ResumeInfo{}},
		Record{Type: ApprovalRequested, Step: "ok", Attempt: 2, Message: "go?"},
		Record{Type: ApprovalGranted, Step: "ok", Attempt: 2, By: "alice", Via: "pre-approved"},
		Record{Type: StepSucceeded, Step: "ok", Attempt: 2},
		Record{Type: RollbackStarted, Step: "ok", Uses: "core.approve"},
		Record{Type: ApprovalRequested, Step: "ok", Rollback: true, Attempt: 1, Message: "undo?"},
	)
	if len(v.Approvals) != 2 || v.Approvals[0].AnsweredAt.IsZero() || v.Approvals[0].By != "alice" || !v.Approvals[0].RequestedAt.Equal(v0.Add(2*time.Second)) {
		t.Fatalf("approvals: %+v", v.Approvals)
	}
	if s := v.Step("ok"); s.Granted != v.Approvals[0] || s.Attempt != 2 || s.Rollback.Status != StateWaiting || s.Rollback.Uses != "core.approve" {
		t.Fatalf("ok: %+v", s)
	}
	if p := v.Pending(); len(p) != 1 || !p[0].Rollback || p[0].Message != "undo?" {
		t.Fatalf("pending: %+v", p)
	}
}

// Steps the runbook did not declare are added as records name them, their
// group too; a view fed one session's events starts the groups of a step
// that runs again.
func TestViewUndeclaredStepsAndSessions(t *testing.T) {
	v := fold(NewView("r1"),
		Record{Type: StepStarted, Step: "c", Group: "g", Uses: "x.do"},
		Record{Type: StepFailed, Step: "c", Group: "g", Continued: true, Error: &Error{Message: "no"}},
	)
	if steps := v.Steps(); len(steps) != 2 || steps[0].Path != "g" || !steps[0].Parallel || steps[1].Declared || steps[1].Uses != "x.do" {
		t.Fatalf("steps: %+v %+v", steps[0], steps[1])
	}
	if v.Failure != nil {
		t.Fatalf("a continued failure (in a group) ended the run: %+v", v.Failure)
	}

	s := NewView("r1")
	s.Declare(StepDecl{Path: "g", Parallel: true})
	s.Declare(StepDecl{Path: "c", Parent: "g", Uses: "x.do"})
	fold(s, Record{Type: RunResumed}, Record{Type: AttemptStarted, Step: "c", Group: "g", Attempt: 2})
	if g := s.Step("g"); g.Status != StateRunning || !g.Started.Equal(v0.Add(time.Second)) || s.Step("c").Status != StateRunning {
		t.Fatalf("g: %+v", g)
	}
	fold(s, Record{Type: StepFailed, Step: "g", Error: &Error{Code: "ChildFailed"}})
	if s.Failure != s.Step("g") {
		t.Fatalf("failure: %+v", s.Failure)
	}
}
