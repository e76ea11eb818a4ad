package engine

import (
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// Status is how a run ended.
type Status string

const (
	StatusSucceeded Status = journal.StatusSucceeded
	// StatusFailed: a step failed; the run rolled back (Result.RolledBack)
	// or stopped (on_failure: stop, or nothing to roll back).
	StatusFailed Status = journal.StatusFailed
	// StatusRollbackFailed: a step failed and at least one rollback failed
	// too; the target needs manual attention.
	StatusRollbackFailed Status = journal.StatusRollbackFailed
	// StatusPaused: waiting for an approval; resume the run to continue.
	StatusPaused Status = journal.StatusPaused
	// StatusInterrupted: the context was cancelled (or the journal could
	// not be written); nothing was rolled back. Resume, or resume with
	// Rollback, decides what happens next.
	StatusInterrupted Status = journal.StatusInterrupted
)

// Exit codes of the runbook CLI for each status (docs/cli.md, "Exit codes").
const (
	ExitSucceeded      = 0
	ExitFailed         = 1
	ExitPaused         = 3
	ExitRollbackFailed = 4
	ExitInterrupted    = 130
)

// StepStatus is where a step stands. Expressions see it as
// steps.<id>.status.
type StepStatus = journal.StepState

const (
	StepPending   StepStatus = journal.StatePending
	StepRunning   StepStatus = journal.StateRunning
	StepSucceeded StepStatus = journal.StateSucceeded
	// StepFailed: the step failed. With continue_on_error the run went on
	// (StepResult.Continued; journal field "continued").
	StepFailed  StepStatus = journal.StateFailed
	StepSkipped StepStatus = journal.StateSkipped
	// StepWaiting: a core.approve step waiting for an answer (run paused).
	StepWaiting StepStatus = journal.StateWaiting
	// StepInterrupted: running when the run was interrupted.
	StepInterrupted StepStatus = journal.StateInterrupted
)

// Result is how a run ended and what each step did.
type Result struct {
	RunID  string
	Status Status
	// RolledBack: the run failed and every rollback ran and succeeded.
	RolledBack bool
	Started    time.Time
	Finished   time.Time
	// Steps in document order, each parallel group before its children.
	Steps []StepResult
	// Outputs are the runbook's outputs (succeeded runs), unredacted: the
	// caller must not print outputs declared secret.
	Outputs map[string]any
	// Failure is the step failure that ended forward execution.
	Failure *StepError
	// RollbackFailures are the rollbacks that failed.
	RollbackFailures []*StepError
	// Waiting lists the steps waiting for approval (paused runs).
	Waiting []string
	// Err summarises why the run did not succeed (nil for succeeded and
	// paused runs). Its message is redacted.
	Err error
}

// ExitCode maps the status to the CLI's exit code: 0 succeeded, 1 failed,
// 3 paused, 4 rollback failed, 130 interrupted.
func (r *Result) ExitCode() int {
	switch r.Status {
	case StatusSucceeded:
		return ExitSucceeded
	case StatusPaused:
		return ExitPaused
	case StatusRollbackFailed:
		return ExitRollbackFailed
	case StatusInterrupted:
		return ExitInterrupted
	}
	return ExitFailed
}

// Step returns the result of one step.
func (r *Result) Step(id string) (StepResult, bool) {
	for _, s := range r.Steps {
		if s.ID == id {
			return s, true
		}
	}
	return StepResult{}, false
}

// StepResult is what one step did.
type StepResult struct {
	ID    string
	Group string
	// Uses is the action; empty for a parallel group.
	Uses   string
	Status StepStatus
	// Continued: failed under continue_on_error.
	Continued bool
	// SkipReason says why a skipped step was skipped.
	SkipReason string
	// Attempts is the number of the last attempt (across resumes).
	Attempts int
	Started  time.Time
	Finished time.Time
	Outputs  map[string]any
	Err      *StepError
	Rollback *RollbackResult
}

// RollbackResult is what a step's rollback did.
type RollbackResult struct {
	// Status is StepRunning (interrupted), StepSucceeded, StepFailed or
	// StepSkipped (the operator skipped it on resume).
	Status   StepStatus
	Attempts int
	Started  time.Time
	Finished time.Time
	Outputs  map[string]any
	Err      *StepError
}

// StepError is a step (or rollback) failure. Its message is redacted;
// it deliberately does not wrap the action's error, whose text may not be.
type StepError struct {
	Step     string
	Rollback bool
	Uses     string
	// Class is one of journal.Class*: action, transport, timeout, engine,
	// interrupted.
	Class     string
	Code      string
	Retryable bool
	Attempts  int
	Message   string
	// RetryAfter is the wait the server asked for before another attempt
	// (spec.Error.RetryAfter); 0 when it said nothing.
	RetryAfter time.Duration
}

func (e *StepError) Error() string {
	what := "step " + e.Step
	if e.Rollback {
		what = "rollback of step " + e.Step
	}
	if e.Attempts > 1 {
		what += fmt.Sprintf(" failed after %d attempts", e.Attempts)
	} else {
		what += " failed"
	}
	return what + ": " + e.Message
}

func (e *StepError) record() *journal.Error {
	if e == nil {
		return nil
	}
	return &journal.Error{Message: e.Message, Code: e.Code, Retryable: e.Retryable, Class: e.Class, RetryAfter: journal.Duration(e.RetryAfter)}
}

func stepErrorFromRecord(step string, rollback bool, r *journal.Error, attempts int) *StepError {
	if r == nil {
		return &StepError{Step: step, Rollback: rollback, Class: journal.ClassEngine, Message: "failed (no error recorded)", Attempts: attempts}
	}
	return &StepError{Step: step, Rollback: rollback, Class: r.Class, Code: r.Code, Retryable: r.Retryable, Message: r.Message, Attempts: attempts}
}

// RunError summarises a run that did not succeed.
type RunError struct {
	Status           Status
	Failure          *StepError
	RollbackFailures []*StepError
	// Cause explains an interruption (context cancelled, journal failure).
	Cause string
}

func (e *RunError) Error() string {
	var parts []string
	if e.Cause != "" {
		parts = append(parts, e.Cause)
	}
	if e.Failure != nil {
		parts = append(parts, e.Failure.Error())
	}
	if len(e.RollbackFailures) > 0 {
		var ids []string
		for _, f := range e.RollbackFailures {
			ids = append(ids, f.Step)
		}
		parts = append(parts, fmt.Sprintf("rollback failed for %s: manual attention needed", strings.Join(ids, ", ")))
		for _, f := range e.RollbackFailures {
			parts = append(parts, f.Error())
		}
	}
	if len(parts) == 0 {
		return "run " + string(e.Status)
	}
	return strings.Join(parts, "; ")
}
