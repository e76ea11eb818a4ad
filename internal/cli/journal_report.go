package cli

import (
	"fmt"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/report"
	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/redact"
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
// What the records mean is the journal.View's; this only shapes it for the
// report. The journal is already redacted by the engine; secret inputs are
// "***".
func reportRun(j *journal.Journal, rb *runbook.Runbook, live bool) *report.Run {
	v := engine.NewView(rb, j.RunID)
	v.ApplyAll(j.Records)
	r := &report.Run{ID: j.RunID, Started: v.Started}
	if v.Run != nil {
		r.Runbook, r.RunbookHash = v.Run.Runbook, v.Run.RunbookHash
		for _, in := range v.Run.Inputs {
			val := in.Value
			if in.Secret {
				val = redact.Mask
			}
			r.Inputs = append(r.Inputs, report.Input{Name: in.Name, Value: val, Secret: in.Secret})
		}
	}
	for _, res := range v.Resumes {
		r.Resumes = append(r.Resumes, res.Time)
	}
	for _, rec := range j.Records {
		r.Events = append(r.Events, reportEvent(rec))
	}
	names := map[string]string{}
	if rb != nil {
		engine.WalkSteps(rb, func(s engine.StepRef) { names[s.Path] = s.Step.Name })
	}
	hasChildren := map[string]bool{}
	for _, s := range v.Steps() {
		hasChildren[s.Parent] = true
	}
	for _, s := range v.Steps() {
		r.Steps = append(r.Steps, reportStep(s, names[s.Path], hasChildren[s.Path]))
	}
	for _, ap := range v.Approvals {
		r.Approvals = append(r.Approvals, reportApproval(ap))
	}
	for _, m := range v.Milestones {
		r.Milestones = append(r.Milestones, report.Milestone{Name: m.Name, At: m.At, Step: m.Path, Undone: undone(v, m.Path)})
	}
	status := reportStatus(v)
	switch status {
	case report.RunPaused, report.RunInterrupted:
		r.Error = v.Message
	case report.RunSucceeded, report.RunFailed, report.RunRolledBack, report.RunRollbackFailed:
		r.Finished, r.Error = v.Finished, reportErrorText(v.Error)
		for _, k := range reportSortedKeys(v.Outputs) {
			r.Outputs = append(r.Outputs, report.Output{Name: k, Value: v.Outputs[k], Secret: secretOutput(rb, k)})
		}
	}
	if status == report.RunRunning && !live {
		status = report.RunIncomplete
		r.Error = "the journal ends without a final record and no process holds the run's lock: the process most likely died; resume continues it"
	}
	r.Status = status
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
	return r
}

// reportStatus is the run's status as the report names it.
func reportStatus(v *journal.View) report.RunStatus {
	switch v.Status {
	case "":
		return ""
	case journal.StatusFailed:
		if v.RolledBack {
			return report.RunRolledBack
		}
		return report.RunFailed
	}
	return report.RunStatus(v.Status)
}

// reportStep is a step as the report shows it. A step that other steps
// name as their group is a group (a runbook changed since the run may have
// made it an action).
func reportStep(s *journal.StepView, name string, group bool) report.Step {
	out := report.Step{ID: s.Path, Name: name, Uses: s.Uses, Group: s.Parent, Parallel: s.Parallel || group && s.Calls == "", Calls: s.Calls,
		Status: report.StepStatus(s.Status), Started: s.Started, Finished: s.Finished, Outputs: s.Outputs,
		Error: reportErrorText(s.Error), Continued: s.Continued, SkipReason: s.SkipReason}
	if out.Parallel || out.Calls != "" {
		out.Uses = ""
	}
	if s.Status == journal.StateSkipped {
		// A skipped step is an instant: when it was skipped.
		out.Started = s.Finished
	}
	for _, a := range s.Attempts {
		out.Attempts = append(out.Attempts, report.Attempt{N: a.N, Started: a.Started, Finished: a.Finished,
			Error: reportErrorText(a.Error), Retryable: a.Retryable})
	}
	if rb := s.Rollback; rb != nil {
		info := &report.RollbackInfo{Status: report.StepStatus(rb.Status), Started: rb.Started, Finished: rb.Finished}
		switch rb.Status {
		case journal.StateWaiting:
			// The report draws a rollback waiting for its approval as running.
			info.Status = report.StepRunning
		case journal.StateFailed:
			info.Error = reportErrorText(rb.Error)
		case journal.StateSkipped:
			info.Error = rb.Message
		}
		out.Rollback = info
	}
	return out
}

// reportApproval is an approval as the report shows it: By says who
// answered, or how it was given in advance.
func reportApproval(a *journal.Approval) report.Approval {
	out := report.Approval{Step: a.Path, Message: a.Message, RequestedAt: a.RequestedAt, GrantedAt: a.AnsweredAt, Denied: a.Denied, Identity: a.Approver.String()}
	if a.AnsweredAt.IsZero() {
		return out
	}
	switch a.Via {
	case "auto-approve":
		out.By = "--auto-approve"
	case "pre-approved":
		out.By = "--approve " + a.Path
	default:
		out.By = a.By
	}
	if a.Via != "" && a.By != "" && a.Via != "interactive" {
		out.By += " (" + a.By + ")"
	}
	return out
}

func secretOutput(rb *runbook.Runbook, name string) bool {
	if rb == nil {
		return false
	}
	for _, o := range rb.Outputs {
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
func reportEvent(rec journal.Record) report.Event {
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
	return ev
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

// undone reports whether the step at path (a group: one of its steps) was
// rolled back: what it marked is no longer so.
func undone(v *journal.View, path string) bool {
	for _, s := range v.Steps() {
		if (s.Path == path || s.Parent == path) && s.Rollback != nil && s.Rollback.Status == journal.StateSucceeded {
			return true
		}
	}
	return false
}
