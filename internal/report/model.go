// Package report renders the postmortem of one runbook run: a Markdown
// document and a self-contained HTML page with a Gantt chart of the steps,
// the critical path, the measured recovery time (RTO), retries, errors,
// rollbacks and approvals.
//
// Its input is Run, a plain model of what the journal recorded. The package
// does not read journals itself: the CLI adapts journal records into a Run,
// so the renderer and the journal format can change independently.
package report

import (
	"errors"
	"fmt"
	"time"
)

// Run is everything a report shows about one run.
type Run struct {
	ID string
	// Runbook is the runbook's name; RunbookHash the sha256 of its source.
	Runbook     string
	RunbookHash string
	Status      RunStatus
	// Error says why the run ended as it did, when it did not succeed
	// (e.g. "step services_dr failed: ..."). Optional.
	Error string
	// Started is when the run started. Finished is zero while it is
	// running, or if the journal ends without a run_finished record; the
	// report then ends at the latest time it knows of.
	Started  time.Time
	Finished time.Time
	Inputs   []Input
	// Steps in document order: a parallel group before its children. Every
	// step of the runbook should be listed, including those that never ran
	// (StepPending), so the report shows what was not done.
	Steps      []Step
	Approvals  []Approval
	Milestones []Milestone
	// Resumes are the times the run was resumed (runbook resume).
	Resumes []time.Time
	Outputs []Output
	// Events are the raw journal records, for the appendix. Optional.
	Events []Event
}

// RunStatus is how a run ended (or where it stands).
type RunStatus string

const (
	RunRunning   RunStatus = "running"
	RunSucceeded RunStatus = "succeeded"
	// RunFailed: a step failed and the run stopped without rolling back
	// (on_failure: stop, or nothing to roll back).
	RunFailed RunStatus = "failed"
	// RunRolledBack: a step failed and every rollback succeeded.
	RunRolledBack RunStatus = "rolled_back"
	// RunRollbackFailed: a step failed and at least one rollback failed;
	// someone must look at the target by hand.
	RunRollbackFailed RunStatus = "rollback_failed"
	// RunPaused: the run stopped to wait for an approval (resumable).
	RunPaused      RunStatus = "paused"
	RunInterrupted RunStatus = "interrupted"
	// RunIncomplete: the journal ends without a terminal record and no
	// process holds the run's lock (the process most likely crashed).
	RunIncomplete RunStatus = "incomplete"
)

// Input is a run input as recorded (secrets already redacted by the engine).
// The renderer never prints the Value of a Secret input; if the real value
// is passed, it is also scrubbed from every other text in the report.
type Input struct {
	Name   string
	Value  any
	Secret bool
}

// Output is a run output.
type Output struct {
	Name   string
	Value  any
	Secret bool
}

// Step is one step of the runbook: an action, or a parallel group whose
// children name it in Group.
type Step struct {
	ID   string
	Name string
	// Uses is "<plugin>.<action>"; empty for a parallel group.
	Uses string
	// Group is the id of the parallel group this step belongs to, "" at the
	// top level. Groups may nest.
	Group string
	// Parallel marks a parallel group. A step that other steps name in
	// Group is a group whether or not this is set.
	Parallel bool
	// Calls is the runbook file a step calls (uses: ./file.yaml): its
	// steps name it in Group, and run one after another.
	Calls  string
	Status StepStatus
	// Started and Finished bound the step, all attempts and retry delays
	// included. For a skipped step, Started (or Finished) is when it was
	// skipped. Finished is zero while it runs.
	Started  time.Time
	Finished time.Time
	Attempts []Attempt
	Outputs  map[string]any
	// Error is the step's final error, if it failed.
	Error string
	// Continued: the step failed under continue_on_error and the run went on.
	Continued bool
	// SkipReason says why a skipped step was skipped (e.g. its `if`).
	SkipReason string
	// Rollback is set once the step's compensation has started.
	Rollback *RollbackInfo
}

// StepStatus is where a step stands.
type StepStatus string

const (
	// StepPending: never started (the run ended before it).
	StepPending   StepStatus = "pending"
	StepRunning   StepStatus = "running"
	StepSucceeded StepStatus = "succeeded"
	StepFailed    StepStatus = "failed"
	StepSkipped   StepStatus = "skipped"
	// StepWaiting: waiting for an approval.
	StepWaiting StepStatus = "waiting"
	// StepInterrupted: it was running when the run was interrupted.
	StepInterrupted StepStatus = "interrupted"
)

// Attempt is one run of a step's action.
type Attempt struct {
	// N counts from 1.
	N        int
	Started  time.Time
	Finished time.Time
	// Error is empty if the attempt succeeded (or is still running).
	Error string
	// Retryable says whether the error allowed another attempt.
	Retryable bool
}

// RollbackInfo is the run of a step's rollback (compensation).
type RollbackInfo struct {
	// Status is StepRunning, StepSucceeded or StepFailed.
	Status   StepStatus
	Started  time.Time
	Finished time.Time
	Error    string
}

// Approval is a request for a human's go-ahead and its answer.
type Approval struct {
	Step string
	// Message is what the operator was asked.
	Message     string
	RequestedAt time.Time
	// GrantedAt is when it was answered; zero while it is pending.
	GrantedAt time.Time
	// GrantedAt is also set, as the time of the answer, when Denied.
	Denied bool
	// By is who answered: a user name, or how it was pre-approved
	// (e.g. "--approve db", "--auto-approve").
	By string
	// Identity is who answered in auditable form, on one line: the AWS
	// caller identity (or why it is unknown), the CI run, the OS user and
	// host ("" in journals that predate it).
	Identity string
}

// Milestone is a moment that matters for recovery time, such as
// "database writable" or "traffic switched".
type Milestone struct {
	Name string
	At   time.Time
	// Step is the step whose completion marks it (optional).
	Step string
	// Undone: reached, then undone by the run's rollback (the step's
	// rollback, or one of its group's, succeeded).
	Undone bool
}

// undoneNote is what follows an undone milestone's name.
const undoneNote = " (undone by the rollback)"

// label is the milestone's name as shown.
func (m Milestone) label() string {
	if m.Undone {
		return m.Name + undoneNote
	}
	return m.Name
}

// Event is one journal record, shown in the report's appendix.
type Event struct {
	At      time.Time
	Type    string
	Step    string
	Attempt int
	Message string
}

// ErrInvalidRun is wrapped by the errors Check returns.
var ErrInvalidRun = errors.New("invalid run")

// Check reports problems that would make a report wrong rather than just
// incomplete: missing or duplicate step ids, a Group naming no step or a
// step that is not a group, groups that contain themselves.
func (r *Run) Check() error {
	_, err := buildTree(r)
	return err
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalidRun, fmt.Sprintf(format, args...))
}
