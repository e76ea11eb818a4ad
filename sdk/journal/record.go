// Package journal is the durable record of runbook runs: an append-only
// JSON-lines journal per run (one Record per line, fsynced before the engine
// takes the next step that depends on it), and the lock that keeps two runs
// from acting on one target at the same time.
//
// The engine writes a journal through a Writer and reads one back through a
// Store to resume a run; the CLI lists runs and renders reports from it.
// FileStore is the default backend (a state directory on local disk); the
// Store interface is shaped so that an object-store backend (one journal
// object per run, a lock object created with If-None-Match) can sit behind
// it without changing callers.
package journal

import (
	"encoding/json"
	"fmt"
	"strings"
	"time"
)

// Record types. The engine emits these as events; the journal stores the
// same values, one per line. See docs/execution.md for what each carries.
const (
	// RunStarted is always the first record; Run is set.
	RunStarted = "run_started"
	// RunResumed marks a resume appended to an existing journal; Resume is set.
	RunResumed = "run_resumed"
	// RunPaused: the run stopped to wait for an approval (resumable).
	RunPaused = "run_paused"
	// RunInterrupted: the run was cancelled (signal) or could not journal;
	// nothing was rolled back (resumable).
	RunInterrupted = "run_interrupted"
	// RunFinished ends a run for good: Status is succeeded, failed or
	// rollback_failed. A finished run cannot be resumed.
	RunFinished = "run_finished"

	StepStarted   = "step_started"
	StepSucceeded = "step_succeeded"
	// StepFailed: Error says why; Continued is set under continue_on_error.
	StepFailed  = "step_failed"
	StepSkipped = "step_skipped"
	// StepInterrupted: the step was running when the run was interrupted;
	// InFlight says whether an attempt was in progress at that moment.
	StepInterrupted = "step_interrupted"

	AttemptStarted = "attempt_started"
	// AttemptFailed: Error.Retryable says whether the error allowed a
	// retry; NextDelay is set when another attempt follows.
	AttemptFailed = "attempt_failed"
	// UntilUnmet: an attempt succeeded but the step's `until` condition did
	// not hold yet; Outputs are the attempt's, NextDelay the poll interval.
	UntilUnmet = "until_unmet"
	// Progress is a progress event reported by an action.
	Progress = "progress"
	// Log is a message from core.log or from the engine (Level set).
	Log = "log"

	ApprovalRequested = "approval_requested"
	ApprovalGranted   = "approval_granted"
	ApprovalDenied    = "approval_denied"

	RollbackStarted   = "rollback_started"
	RollbackSucceeded = "rollback_succeeded"
	RollbackFailed    = "rollback_failed"
	// RollbackSkipped: the operator skipped an unfinished rollback on resume.
	RollbackSkipped = "rollback_skipped"
)

// Run statuses as recorded in RunFinished (and as List reports them).
const (
	StatusRunning        = "running"
	StatusSucceeded      = "succeeded"
	StatusFailed         = "failed"
	StatusRollbackFailed = "rollback_failed"
	StatusPaused         = "paused"
	StatusInterrupted    = "interrupted"
	// StatusIncomplete is reported by List for a journal that ends without
	// a terminal record while no live process holds the lock for it: the
	// process running it most likely crashed. It can be resumed.
	StatusIncomplete = "incomplete"
)

// Record is one journal line and one engine event. Fields that do not apply
// to a type are omitted from the JSON.
type Record struct {
	// Seq numbers the records of a run from 1, without gaps, across
	// resumes; a reader treats a gap as corruption.
	Seq   int64     `json:"seq"`
	Type  string    `json:"type"`
	Time  time.Time `json:"time"`
	RunID string    `json:"run_id"`
	// Step is the step the record is about; Group the parallel group that
	// step belongs to ("" at the top level); Uses its action.
	Step  string `json:"step,omitempty"`
	Group string `json:"group,omitempty"`
	Uses  string `json:"uses,omitempty"`
	// Rollback marks attempt, progress and log records that belong to a
	// step's rollback rather than to the step itself.
	Rollback bool `json:"rollback,omitempty"`
	// Attempt counts from 1 and continues across retries and resumes.
	Attempt int `json:"attempt,omitempty"`
	// Status is the run status in RunFinished, the step status in step
	// records.
	Status string `json:"status,omitempty"`
	// Message is human-readable text: an approval's question, a log line, a
	// progress message, why a step was skipped.
	Message string `json:"message,omitempty"`
	// Level of a Log record: debug, info, warn or error.
	Level string `json:"level,omitempty"`
	Error *Error `json:"error,omitempty"`
	// NextDelay is the wait before the next attempt (AttemptFailed,
	// UntilUnmet); zero when no attempt follows.
	NextDelay Duration `json:"next_delay,omitempty"`
	// Duration is how long the attempt, step, rollback or run took.
	Duration Duration       `json:"duration,omitempty"`
	Outputs  map[string]any `json:"outputs,omitempty"`
	// Fields are a progress event's structured fields.
	Fields map[string]any `json:"fields,omitempty"`
	// Continued: a StepFailed under continue_on_error (the run went on).
	Continued bool `json:"continued,omitempty"`
	// InFlight: in StepInterrupted, an attempt was running.
	InFlight bool `json:"in_flight,omitempty"`
	// RolledBack: in RunFinished with status failed, every rollback ran and
	// succeeded (false when nothing was rolled back).
	RolledBack bool `json:"rolled_back,omitempty"`
	// By is who approved or denied (ApprovalGranted, ApprovalDenied); Via
	// how: "interactive", "auto-approve" or "pre-approved".
	By  string `json:"by,omitempty"`
	Via string `json:"via,omitempty"`
	// Approver is who answered, in auditable form (ApprovalGranted,
	// ApprovalDenied): the OS user and host, the AWS caller identity and
	// the CI run when known. Absent in journals written before it existed.
	Approver *Identity `json:"approver,omitempty"`
	// Run is set on RunStarted.
	Run *RunInfo `json:"run,omitempty"`
	// Resume is set on RunResumed.
	Resume *ResumeInfo `json:"resume,omitempty"`
	// Sum is the record's checksum, chained to the record before it (see
	// Seal). It must stay the last field: it is the last on the line.
	Sum string `json:"sum,omitempty"`
}

// Identity is who answered an approval, as far as the machine that ran it
// could tell: the OS user and host; the AWS caller identity (STS
// GetCallerIdentity with the credentials the run's AWS calls use) or why it
// is unknown; the CI run when the approval came from CI; and what the
// operator said of themselves (--approver or RUNBOOK_APPROVER). It holds no
// secret: no key, token or session credential.
type Identity struct {
	OSUser string `json:"os_user,omitempty"`
	Host   string `json:"host,omitempty"`
	// Stated is what --approver (or RUNBOOK_APPROVER) said: a name, a
	// ticket, a change number.
	Stated string `json:"stated,omitempty"`
	// AWS is the caller identity; AWSUnknown says why it is not known
	// (no credentials, STS did not answer in time, STS refused).
	AWS        *AWSIdentity `json:"aws,omitempty"`
	AWSUnknown string       `json:"aws_unknown,omitempty"`
	CI         *CIIdentity  `json:"ci,omitempty"`
}

// AWSIdentity is STS GetCallerIdentity's answer.
type AWSIdentity struct {
	ARN     string `json:"arn"`
	Account string `json:"account,omitempty"`
	UserID  string `json:"user_id,omitempty"`
}

// CIIdentity is the CI run an approval came from, as its environment
// names it (GitHub Actions: GITHUB_ACTOR, GITHUB_WORKFLOW, GITHUB_RUN_ID).
type CIIdentity struct {
	// System is "github-actions", "gitlab-ci" or "ci" (CI=true, unknown).
	System     string `json:"system"`
	Actor      string `json:"actor,omitempty"`
	Workflow   string `json:"workflow,omitempty"`
	RunID      string `json:"run_id,omitempty"`
	Repository string `json:"repository,omitempty"`
	// URL is the run's page, when the environment gives enough to build it.
	URL string `json:"url,omitempty"`
}

// String is the identity on one line, as the report shows it.
func (id *Identity) String() string {
	if id == nil {
		return ""
	}
	var parts []string
	if id.Stated != "" {
		parts = append(parts, "stated: "+id.Stated)
	}
	switch {
	case id.AWS != nil:
		parts = append(parts, "AWS "+id.AWS.ARN)
	case id.AWSUnknown != "":
		parts = append(parts, "AWS identity unknown ("+id.AWSUnknown+")")
	}
	if id.CI != nil {
		c := id.CI.System
		if id.CI.Actor != "" {
			c += " actor " + id.CI.Actor
		}
		var run []string
		if id.CI.Repository != "" {
			run = append(run, id.CI.Repository)
		}
		if id.CI.Workflow != "" {
			run = append(run, "workflow "+id.CI.Workflow)
		}
		if id.CI.RunID != "" {
			run = append(run, "run "+id.CI.RunID)
		}
		if len(run) > 0 {
			c += " (" + strings.Join(run, ", ") + ")"
		}
		parts = append(parts, c)
	}
	if id.OSUser != "" || id.Host != "" {
		parts = append(parts, "OS "+id.OSUser+"@"+id.Host)
	}
	return strings.Join(parts, "; ")
}

// Error is a failure as recorded: the message (secrets redacted), the
// action's code, and how the engine classified it.
type Error struct {
	Message string `json:"message"`
	Code    string `json:"code,omitempty"`
	// Retryable: another attempt may succeed.
	Retryable bool `json:"retryable,omitempty"`
	// Class is where the error came from: "action" (the action reported
	// it), "transport" (the plugin could not be reached or broke the
	// connection), "timeout" (the attempt's timeout expired), "engine"
	// (an expression or parameter could not be evaluated, an approval was
	// denied...) or "interrupted".
	Class string `json:"class,omitempty"`
	// RetryAfter is the wait the server asked for before a retry (HTTP
	// Retry-After), as the plugin reported it.
	RetryAfter Duration `json:"retry_after,omitempty"`
}

// Error classes.
const (
	ClassAction      = "action"
	ClassTransport   = "transport"
	ClassTimeout     = "timeout"
	ClassEngine      = "engine"
	ClassInterrupted = "interrupted"
)

// RunInfo describes a run in its RunStarted record.
type RunInfo struct {
	Runbook     string `json:"runbook"`
	RunbookPath string `json:"runbook_path,omitempty"`
	// RunbookHash is the sha256 of the runbook source; resume refuses a
	// runbook whose hash differs unless forced.
	RunbookHash   string `json:"runbook_hash"`
	EngineVersion string `json:"engine_version"`
	OnFailure     string `json:"on_failure,omitempty"`
	// Inputs in declaration order. Secret inputs have Value "***" and
	// Secret set: resume must be given them again.
	Inputs []Input `json:"inputs"`
}

// Input is one resolved run input.
type Input struct {
	Name   string `json:"name"`
	Value  any    `json:"value"`
	Secret bool   `json:"secret,omitempty"`
	// Defaulted: a secret input took its declared default, so a resume
	// may take it again; a secret that was given must be given again.
	Defaulted bool `json:"defaulted,omitempty"`
}

// ResumeInfo describes a resume in its RunResumed record.
type ResumeInfo struct {
	// RunbookHash is the hash of the runbook resumed with; Forced is set
	// when it differed from the run's and the operator forced the resume.
	RunbookHash string   `json:"runbook_hash"`
	Forced      bool     `json:"forced,omitempty"`
	RetrySteps  []string `json:"retry_steps,omitempty"`
	SkipSteps   []string `json:"skip_steps,omitempty"`
	// Rollback: the operator asked to roll back instead of continuing.
	Rollback      bool   `json:"rollback,omitempty"`
	EngineVersion string `json:"engine_version,omitempty"`
}

// Duration is a time.Duration written as a Go duration string ("1.5s"),
// like every duration on the runbook wire.
type Duration time.Duration

// MarshalJSON writes the duration as a string.
func (d Duration) MarshalJSON() ([]byte, error) {
	return json.Marshal(time.Duration(d).String())
}

// UnmarshalJSON reads a duration string (or a number of nanoseconds).
func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		var n int64
		if err2 := json.Unmarshal(b, &n); err2 != nil {
			return fmt.Errorf("duration: %w", err)
		}
		*d = Duration(n)
		return nil
	}
	v, err := time.ParseDuration(s)
	if err != nil {
		return err
	}
	*d = Duration(v)
	return nil
}

// Std returns the duration as a time.Duration.
func (d Duration) Std() time.Duration { return time.Duration(d) }
