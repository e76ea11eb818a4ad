package cli

import (
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/runbookhq/runbook/internal/report"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// reportRun adapts a run's journal into the report model. rb, when the
// runbook could be loaded, gives every step in document order (those that
// never ran are listed as pending), names, groups, milestones and which
// outputs are secret; without it the steps are those the journal mentions,
// in the order it first mentions them. live says a process holds the run's
// lock (a journal without a terminal record is then running, not
// incomplete).
//
// The journal is already redacted by the engine; secret inputs are "***".
func reportRun(j *journal.Journal, rb *runbook.Runbook, live bool) *report.Run {
	a := newReportAdapter(j, rb)
	for i, rec := range j.Records {
		a.record(i, rec)
	}
	a.finish(live)
	return a.run
}

type reportAdapter struct {
	j     *journal.Journal
	rb    *runbook.Runbook
	run   *report.Run
	steps map[string]int // id -> index in run.Steps
	// open is each step's attempt in progress (index into its Attempts).
	open map[string]int
	// approval is each step's pending approval (index into run.Approvals),
	// by step id plus "/rollback" for a rollback's approval.
	approval  map[string]int
	reached   map[string]bool
	milestone map[string]string // step id -> milestone name
	status    report.RunStatus
}

func newReportAdapter(j *journal.Journal, rb *runbook.Runbook) *reportAdapter {
	a := &reportAdapter{j: j, rb: rb, run: &report.Run{ID: j.RunID}, steps: map[string]int{},
		open: map[string]int{}, approval: map[string]int{}, reached: map[string]bool{}, milestone: map[string]string{}}
	if rb != nil {
		var walk func(steps []*runbook.Step, group string)
		walk = func(steps []*runbook.Step, group string) {
			for _, s := range steps {
				a.addStep(report.Step{ID: s.ID, Name: s.Name, Uses: s.Uses, Group: group, Parallel: s.IsGroup(), Status: report.StepPending})
				if s.Milestone != "" {
					a.milestone[s.ID] = s.Milestone
				}
				walk(s.Parallel, s.ID)
			}
		}
		walk(rb.Steps, "")
	}
	return a
}

func (a *reportAdapter) addStep(s report.Step) *report.Step {
	a.steps[s.ID] = len(a.run.Steps)
	a.run.Steps = append(a.run.Steps, s)
	return &a.run.Steps[len(a.run.Steps)-1]
}

// step returns the step a record is about, adding it when the runbook did
// not list it (no runbook, or a runbook changed since the run).
func (a *reportAdapter) step(rec journal.Record) *report.Step {
	if i, ok := a.steps[rec.Step]; ok {
		s := &a.run.Steps[i]
		if s.Uses == "" && !s.Parallel && rec.Uses != "" && !rec.Rollback && !strings.HasPrefix(rec.Type, "rollback_") {
			s.Uses = rec.Uses
		}
		return s
	}
	s := report.Step{ID: rec.Step, Group: rec.Group, Status: report.StepPending}
	if !rec.Rollback && !strings.HasPrefix(rec.Type, "rollback_") {
		s.Uses = rec.Uses
	}
	if rec.Group != "" {
		if gi, ok := a.steps[rec.Group]; ok {
			g := &a.run.Steps[gi]
			g.Parallel, g.Uses = true, ""
		} else {
			a.addStep(report.Step{ID: rec.Group, Parallel: true, Status: report.StepRunning})
		}
	}
	return a.addStep(s)
}

func (a *reportAdapter) record(i int, rec journal.Record) {
	r := a.run
	switch rec.Type {
	case journal.RunStarted:
		r.Started = rec.Time
		if rec.Run != nil {
			r.Runbook, r.RunbookHash = rec.Run.Runbook, rec.Run.RunbookHash
			for _, in := range rec.Run.Inputs {
				v := in.Value
				if in.Secret {
					v = "***"
				}
				r.Inputs = append(r.Inputs, report.Input{Name: in.Name, Value: v, Secret: in.Secret})
			}
		}
		a.status = report.RunRunning
	case journal.RunResumed:
		r.Resumes = append(r.Resumes, rec.Time)
		// Attempts still open were cut off by a crash (an interruption
		// records step_interrupted): they ended, at the latest, with the
		// last record written before the resume.
		var last time.Time
		if i > 0 {
			last = a.j.Records[i-1].Time
		}
		a.closeAll(last, "cut off: the run stopped (crash or kill) before the attempt ended")
		a.status, r.Error, r.Finished = report.RunRunning, "", time.Time{}
	case journal.RunPaused:
		a.status = report.RunPaused
		r.Error = rec.Message
	case journal.RunInterrupted:
		a.status = report.RunInterrupted
		r.Error = rec.Message
		a.closeAll(rec.Time, "interrupted")
	case journal.RunFinished:
		r.Finished = rec.Time
		switch rec.Status {
		case journal.StatusSucceeded:
			a.status = report.RunSucceeded
		case journal.StatusRollbackFailed:
			a.status = report.RunRollbackFailed
		default:
			a.status = report.RunFailed
			if rec.RolledBack {
				a.status = report.RunRolledBack
			}
		}
		r.Error = reportErrorText(rec.Error)
		r.Outputs = r.Outputs[:0]
		for _, k := range reportSortedKeys(rec.Outputs) {
			r.Outputs = append(r.Outputs, report.Output{Name: k, Value: rec.Outputs[k], Secret: a.secretOutput(k)})
		}
	}
	if ev, ok := reportEvent(rec); ok {
		r.Events = append(r.Events, ev)
	}
	if rec.Step == "" {
		return
	}
	s := a.step(rec)
	rollback := rec.Rollback || strings.HasPrefix(rec.Type, "rollback_")
	if rollback {
		a.rollbackRecord(s, rec)
		return
	}
	switch rec.Type {
	case journal.StepStarted:
		s.Status = report.StepRunning
		if s.Started.IsZero() {
			s.Started = rec.Time
		}
	case journal.AttemptStarted:
		a.resumeStep(s, rec)
		a.closeAttempt(s.ID, rec.Time, "", false) // never two open at once
		s.Attempts = append(s.Attempts, report.Attempt{N: rec.Attempt, Started: rec.Time})
		a.open[s.ID] = len(s.Attempts) - 1
	case journal.Progress, journal.Log:
		a.resumeStep(s, rec)
	case journal.AttemptFailed:
		a.closeAttempt(s.ID, rec.Time, reportErrorText(rec.Error), rec.Error != nil && rec.Error.Retryable)
	case journal.UntilUnmet:
		a.closeAttempt(s.ID, rec.Time, "", false)
	case journal.StepSucceeded:
		a.closeAttempt(s.ID, rec.Time, "", false)
		s.Status, s.Finished, s.Outputs, s.Error = report.StepSucceeded, rec.Time, rec.Outputs, ""
		if s.Started.IsZero() {
			s.Started = rec.Time.Add(-rec.Duration.Std())
		}
		if m := a.milestone[s.ID]; m != "" && !a.reached[m] {
			a.reached[m] = true
			r.Milestones = append(r.Milestones, report.Milestone{Name: m, At: rec.Time, Step: s.ID})
		}
	case journal.StepFailed:
		msg := reportErrorText(rec.Error)
		a.closeAttempt(s.ID, rec.Time, msg, false)
		s.Status, s.Finished, s.Error, s.Continued = report.StepFailed, rec.Time, msg, rec.Continued
		if s.Started.IsZero() {
			s.Started = rec.Time.Add(-rec.Duration.Std())
		}
	case journal.StepSkipped:
		s.Status, s.SkipReason = report.StepSkipped, rec.Message
		s.Started, s.Finished = rec.Time, rec.Time
	case journal.StepInterrupted:
		a.closeAttempt(s.ID, rec.Time, "interrupted", false)
		s.Status = report.StepInterrupted
	case journal.ApprovalRequested:
		s.Status = report.StepWaiting
		if s.Started.IsZero() {
			s.Started = rec.Time
		}
		a.request(s.ID, rec)
	case journal.ApprovalGranted, journal.ApprovalDenied:
		s.Status = report.StepRunning
		a.answer(s.ID, rec)
	}
}

// resumeStep marks a step running again when a record shows it is (after
// an interruption or a pause, a resume sends no new step_started).
func (a *reportAdapter) resumeStep(s *report.Step, rec journal.Record) {
	switch s.Status {
	case report.StepPending, report.StepInterrupted, report.StepWaiting:
		s.Status = report.StepRunning
		if s.Started.IsZero() {
			s.Started = rec.Time
		}
	}
}

func (a *reportAdapter) rollbackRecord(s *report.Step, rec journal.Record) {
	rb := s.Rollback
	if rb == nil {
		rb = &report.RollbackInfo{Status: report.StepRunning, Started: rec.Time}
		s.Rollback = rb
	}
	switch rec.Type {
	case journal.RollbackStarted:
		rb.Status, rb.Started = report.StepRunning, rec.Time
	case journal.AttemptStarted, journal.Progress:
		if rb.Status == report.StepInterrupted {
			rb.Status = report.StepRunning
		}
	case journal.RollbackSucceeded:
		rb.Status, rb.Finished, rb.Error = report.StepSucceeded, rec.Time, ""
	case journal.RollbackFailed:
		rb.Status, rb.Finished, rb.Error = report.StepFailed, rec.Time, reportErrorText(rec.Error)
	case journal.RollbackSkipped:
		rb.Status, rb.Finished = report.StepSkipped, rec.Time
		rb.Error = rec.Message
	case journal.StepInterrupted:
		rb.Status = report.StepInterrupted
	case journal.ApprovalRequested:
		a.request(s.ID+"/rollback", rec)
	case journal.ApprovalGranted, journal.ApprovalDenied:
		a.answer(s.ID+"/rollback", rec)
	}
}

// request records an approval request; asked again after a pause, it is
// the same request, still waiting.
func (a *reportAdapter) request(key string, rec journal.Record) {
	if _, pending := a.approval[key]; pending {
		return
	}
	a.approval[key] = len(a.run.Approvals)
	a.run.Approvals = append(a.run.Approvals, report.Approval{Step: rec.Step, Message: rec.Message, RequestedAt: rec.Time})
}

func (a *reportAdapter) answer(key string, rec journal.Record) {
	i, ok := a.approval[key]
	if !ok {
		a.request(key, rec)
		i = a.approval[key]
	}
	delete(a.approval, key)
	ap := &a.run.Approvals[i]
	ap.GrantedAt, ap.Denied = rec.Time, rec.Type == journal.ApprovalDenied
	switch rec.Via {
	case "auto-approve":
		ap.By = "--auto-approve"
	case "pre-approved":
		ap.By = "--approve " + rec.Step
	default:
		ap.By = rec.By
	}
	if rec.Via != "" && rec.By != "" && rec.Via != "interactive" {
		ap.By += " (" + rec.By + ")"
	}
}

// closeAttempt ends a step's open attempt.
func (a *reportAdapter) closeAttempt(id string, at time.Time, errText string, retryable bool) {
	i, ok := a.open[id]
	if !ok {
		return
	}
	delete(a.open, id)
	s := &a.run.Steps[a.steps[id]]
	at0 := &s.Attempts[i]
	at0.Finished, at0.Error, at0.Retryable = at, errText, retryable
	if at0.Finished.Before(at0.Started) {
		at0.Finished = at0.Started
	}
}

func (a *reportAdapter) closeAll(at time.Time, why string) {
	ids := make([]string, 0, len(a.open))
	for id := range a.open {
		ids = append(ids, id)
	}
	sort.Strings(ids)
	for _, id := range ids {
		a.closeAttempt(id, at, why, false)
	}
}

func (a *reportAdapter) finish(live bool) {
	r := a.run
	if a.status == report.RunRunning && !live {
		r.Status = report.RunIncomplete
		if r.Error == "" {
			r.Error = "the journal ends without a final record and no process holds the run's lock: the process most likely died; 'runbook resume " + r.ID + "' continues it"
		}
	} else {
		r.Status = a.status
	}
	if r.Status == report.RunRollbackFailed {
		var failed []string
		for _, s := range r.Steps {
			if s.Rollback != nil && s.Rollback.Status == report.StepFailed {
				failed = append(failed, s.ID)
			}
		}
		if len(failed) > 0 {
			msg := "the rollback of " + strings.Join(failed, ", ") + " failed: manual attention needed"
			if r.Error != "" {
				msg = r.Error + "; " + msg
			}
			r.Error = msg
		}
	}
}

func (a *reportAdapter) secretOutput(name string) bool {
	if a.rb == nil {
		return false
	}
	for _, o := range a.rb.Outputs {
		if o.Name == name {
			return o.Secret
		}
	}
	return false
}

// reportErrorText is a journaled error as one string: "Code: message".
func reportErrorText(e *journal.Error) string {
	if e == nil {
		return ""
	}
	s := e.Message
	if e.Code != "" && !strings.HasPrefix(s, e.Code) {
		s = e.Code + ": " + s
	}
	return s
}

// reportEvent is a record as the report's appendix lists it.
func reportEvent(rec journal.Record) (report.Event, bool) {
	ev := report.Event{At: rec.Time, Type: rec.Type, Step: rec.Step, Attempt: rec.Attempt}
	switch rec.Type {
	case journal.RunStarted:
		if rec.Run != nil {
			ev.Message = rec.Run.Runbook
		}
	case journal.RunResumed:
		if rec.Resume != nil {
			var parts []string
			if rec.Resume.Forced {
				parts = append(parts, "forced (the runbook had changed)")
			}
			if len(rec.Resume.RetrySteps) > 0 {
				parts = append(parts, "retry "+strings.Join(rec.Resume.RetrySteps, ", "))
			}
			if len(rec.Resume.SkipSteps) > 0 {
				parts = append(parts, "skip "+strings.Join(rec.Resume.SkipSteps, ", "))
			}
			if rec.Resume.Rollback {
				parts = append(parts, "roll back")
			}
			ev.Message = strings.Join(parts, "; ")
		}
	case journal.Progress:
		ev.Message = rec.Message + reportFieldsText(rec.Fields)
	case journal.Log:
		ev.Message = rec.Level + ": " + rec.Message
	case journal.AttemptFailed:
		ev.Message = reportErrorText(rec.Error)
		if rec.NextDelay > 0 {
			ev.Message += fmt.Sprintf(" (retrying in %s)", rec.NextDelay.Std())
		}
	case journal.UntilUnmet:
		ev.Message = "condition not met"
		if rec.NextDelay > 0 {
			ev.Message += fmt.Sprintf(", polling again in %s", rec.NextDelay.Std())
		}
	case journal.StepFailed, journal.RollbackFailed:
		ev.Message = reportErrorText(rec.Error)
		if rec.Continued {
			ev.Message += " (continued)"
		}
	case journal.StepSucceeded, journal.RollbackSucceeded:
		ev.Message = "in " + rec.Duration.Std().String()
	case journal.ApprovalGranted:
		ev.Message = fmt.Sprintf("by %s (%s)", rec.By, rec.Via)
	case journal.ApprovalDenied:
		ev.Message = fmt.Sprintf("by %s (%s): %s", rec.By, rec.Via, rec.Message)
	case journal.StepInterrupted:
		if rec.InFlight {
			ev.Message = "an attempt was in flight"
		}
	case journal.RunFinished:
		ev.Message = rec.Status
		if rec.Error != nil {
			ev.Message += ": " + reportErrorText(rec.Error)
		}
	case journal.RollbackStarted:
		ev.Message = rec.Uses
	default:
		ev.Message = rec.Message
	}
	return ev, true
}

func reportFieldsText(f map[string]any) string {
	if len(f) == 0 {
		return ""
	}
	parts := make([]string, 0, len(f))
	for _, k := range reportSortedKeys(f) {
		parts = append(parts, fmt.Sprintf("%s=%v", k, f[k]))
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

func reportSortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
