package journal

import (
	"slices"
	"strings"
	"time"
)

// View is what a run's records mean: the run's status, and each step's
// status, attempts, outputs, error, approvals and rollback, folded record by
// record through Apply. It is the one place that interprets records: the
// engine applies its own events to a View as it emits them and replays a
// journal into one to resume (so a live run and a resumed one cannot read
// the records differently); the CLI's report, `runbook runs`, completion
// and the live terminal view read one too. A new record type is handled
// here and nowhere else that keeps state.
//
// Steps are keyed by their path: a step's id, or for a step of a runbook
// called by another, the calling step's path, a dot and the step's id
// (StepPath). A step's Parent is the path of the parallel group or calling
// step it belongs to.
//
// A View is not safe for concurrent use: its owner serialises Apply and
// reads.
type View struct {
	RunID string
	// Run is the run_started payload.
	Run *RunInfo
	// Started is the run's start; Status where it stands: running (after
	// run_started or run_resumed), paused, interrupted, or the status of
	// run_finished (succeeded, failed, rollback_failed). "" before
	// run_started.
	Started time.Time
	Status  string
	// Finished is the time of the last terminal record (run_finished,
	// run_paused, run_interrupted); zero while the run is running.
	Finished time.Time
	// Message says why the run paused or was interrupted; Error why it
	// failed (run_finished). Both are cleared by a resume.
	Message string
	Error   *Error
	// RolledBack, Outputs and Duration are run_finished's.
	RolledBack bool
	Outputs    map[string]any
	Duration   time.Duration
	// Resumes are the run_resumed records, in order.
	Resumes []Record
	// RollbackRequested: a resume asked to roll back instead of continuing.
	RollbackRequested bool
	// Failure is the step whose failure ended forward execution: the first
	// top-level step that failed without continue_on_error.
	Failure *StepView
	// Milestones reached, in the order they were reached: each the first
	// success of a step declared with it.
	Milestones []Milestone
	// Approvals in the order they were first requested.
	Approvals []*Approval
	// LastSeq is the number of the last record applied.
	LastSeq int64

	steps    []*StepView
	byPath   map[string]*StepView
	pending  map[approvalKey]*Approval
	lastTime time.Time
}

// StepState is where a step, or its rollback, stands.
type StepState string

const (
	// StatePending: not started.
	StatePending   StepState = "pending"
	StateRunning   StepState = "running"
	StateSucceeded StepState = "succeeded"
	// StateFailed: failed (Continued: under continue_on_error).
	StateFailed  StepState = "failed"
	StateSkipped StepState = "skipped"
	// StateWaiting: an approval was requested and not answered yet.
	StateWaiting StepState = "waiting"
	// StateInterrupted: it was running when the run was interrupted.
	StateInterrupted StepState = "interrupted"
)

// Unfinished reports whether the step (or rollback) started and has not
// finished: running, waiting for an approval, or cut off by an interruption.
func (s StepState) Unfinished() bool {
	return s == StateRunning || s == StateWaiting || s == StateInterrupted
}

// AttemptEnd is what the records say about a step's last attempt: whether
// one was in flight, and how it ended. Resume decides from it whether
// running the step again is safe.
type AttemptEnd int

const (
	// AttemptNone: no attempt started (nothing was sent to the action).
	AttemptNone AttemptEnd = iota
	// AttemptInFlight: started, no end recorded: it may have taken effect.
	AttemptInFlight
	// AttemptEndedSafe: ended with an error the action marked retryable, or
	// succeeded without meeting `until`: another attempt is expected.
	AttemptEndedSafe
	// AttemptEndedUnsafe: ended with a transport error, a timeout or an
	// error the action did not mark retryable.
	AttemptEndedUnsafe
)

// StepDecl declares a step of the runbook before any record is applied, so
// that a View lists every step in document order, those that never ran
// included, and knows which milestone each marks.
type StepDecl struct {
	Path   string
	Parent string
	Uses   string
	// Parallel marks a parallel group; Calls a step that calls a runbook
	// (the file, as written): the steps of that runbook are its children.
	Parallel  bool
	Calls     string
	Milestone string
}

// Execution is what a step's records and its rollback's alike say: where
// it stands, when it ran, its attempts, outputs, error and approval.
type Execution struct {
	// Uses is the action ("" for a group).
	Uses   string
	Status StepState
	// Started is when it started (a step: or was skipped); Finished when it
	// ended; Duration what its final record said.
	Started, Finished time.Time
	Duration          time.Duration
	// Attempt is the number of the last attempt (approvals count as
	// attempts); Last how it ended; InFlight what step_interrupted said.
	Attempt  int
	Last     AttemptEnd
	InFlight bool
	Outputs  map[string]any
	// Error is why it failed (nil if the record had none).
	Error *Error
	// Granted is its approval (core.approve), once granted.
	Granted *Approval
}

// StepView is one step as its records say.
type StepView struct {
	Execution
	Path      string
	Parent    string
	Parallel  bool
	Calls     string
	Milestone string
	// Declared: the step was declared (it is in the runbook); otherwise a
	// record named it.
	Declared bool

	Continued bool
	// SkipReason says why a skipped step was skipped.
	SkipReason string
	// Attempts are the attempts of the step's action, in order.
	Attempts []Attempt
	// CompletedSeq is the sequence number of step_succeeded; FailedSeq of
	// step_failed after at least one attempt started. Rollbacks run in the
	// reverse order of these.
	CompletedSeq, FailedSeq int64
	// Rollback is set once a record about the step's rollback was applied.
	Rollback *RollbackView

	open  int        // index in Attempts of the attempt in progress, or -1
	first [1]Attempt // backs Attempts while a step has one attempt
}

// Attempt is one attempt of a step's action.
type Attempt struct {
	N                 int
	Started, Finished time.Time
	// Error is why it failed, nil if it succeeded or is running. An attempt
	// cut off by an interruption or a crash has an error of class
	// interrupted.
	Error *Error
	// Retryable: it ended with an error that allowed another attempt.
	Retryable bool
}

// RollbackView is a step's rollback as its records say.
type RollbackView struct {
	Execution
	// Message says why it was skipped.
	Message string
}

// Approval is a request for approval and its answer.
type Approval struct {
	Path     string
	Rollback bool
	// Message is the question.
	Message     string
	RequestedAt time.Time
	// AnsweredAt is zero while the request waits; Denied says how it was
	// answered; By and Via who answered and how (interactive, pre-approved,
	// auto-approve).
	AnsweredAt time.Time
	Denied     bool
	By, Via    string
	// Approver is who answered, in auditable form (nil in older journals).
	Approver *Identity
}

// Milestone is a milestone reached.
type Milestone struct {
	Name string
	At   time.Time
	Path string
}

type approvalKey struct {
	path     string
	rollback bool
}

// Why attempts ended without a record of their own.
const (
	CutOffMessage      = "cut off: the run stopped (crash or kill) before the attempt ended"
	InterruptedMessage = "interrupted"
)

// NewView returns an empty view of run runID.
func NewView(runID string) *View {
	return &View{RunID: runID, byPath: map[string]*StepView{}, pending: map[approvalKey]*Approval{}}
}

// Grow makes room for n more steps.
func (v *View) Grow(n int) {
	v.steps = slices.Grow(v.steps, n)
	if len(v.byPath) == 0 {
		v.byPath = make(map[string]*StepView, n)
	}
}

// ViewOf folds a journal's records.
func ViewOf(j *Journal) *View {
	v := NewView(j.RunID)
	v.ApplyAll(j.Records)
	return v
}

// ApplyAll applies records in order.
func (v *View) ApplyAll(recs []Record) {
	for _, r := range recs {
		v.Apply(r)
	}
}

// StepPath is the path of step id inside the step at parent ("" at the top
// level of the run's runbook).
func StepPath(parent, id string) string {
	if parent == "" {
		return id
	}
	return parent + "." + id
}

// Declare adds a step of the runbook, in document order (a group before its
// children). Declaring a path again returns the step already there.
func (v *View) Declare(d StepDecl) *StepView { return v.DeclareIn(new(StepView), d) }

// DeclareIn is Declare keeping the step in s, memory its caller owns (the
// engine keeps it with its own state of the step). s must not be used for
// anything else.
func (v *View) DeclareIn(s *StepView, d StepDecl) *StepView {
	if s := v.byPath[d.Path]; s != nil {
		return s
	}
	*s = StepView{Execution: Execution{Uses: d.Uses, Status: StatePending}, Path: d.Path, Parent: d.Parent,
		Parallel: d.Parallel, Calls: d.Calls, Milestone: d.Milestone, Declared: true, open: -1}
	v.add(s)
	return s
}

func (v *View) add(s *StepView) {
	v.byPath[s.Path] = s
	v.steps = append(v.steps, s)
}

// Again makes a finished step pending again, for a step that runs once
// more in the same run (a finally step, at the end of each session that
// ends the run): its status, times, outputs and error are cleared; its
// attempts stay, so that the next attempt's number follows them.
func (s *StepView) Again() {
	s.Status, s.Started, s.Finished, s.Duration = StatePending, time.Time{}, time.Time{}, 0
	s.Last, s.InFlight, s.Outputs, s.Error, s.Granted = AttemptNone, false, nil, nil, nil
	s.Continued, s.SkipReason, s.open = false, "", -1
}

// Steps are every step, declared ones in document order, then those only
// records named, in the order they were first named.
func (v *View) Steps() []*StepView { return v.steps }

// Step returns the step at path, or nil.
func (v *View) Step(path string) *StepView { return v.byPath[path] }

// step returns the step a record is about, adding one the runbook did not
// declare (no runbook, or one changed since the run).
func (v *View) step(r Record) *StepView {
	if s := v.byPath[r.Step]; s != nil {
		if s.Uses == "" && !s.Parallel && r.Uses != "" && !isRollback(r) {
			s.Uses = r.Uses
		}
		return s
	}
	s := &StepView{Execution: Execution{Status: StatePending}, Path: r.Step, Parent: r.Group, open: -1}
	if !isRollback(r) {
		s.Uses = r.Uses
	}
	if r.Group != "" {
		if g := v.byPath[r.Group]; g != nil {
			if !g.Declared {
				g.Parallel, g.Uses = true, ""
			}
		} else {
			v.add(&StepView{Execution: Execution{Status: StateRunning}, Path: r.Group, Parallel: true, open: -1})
		}
	}
	v.add(s)
	return s
}

// isRollback reports whether a record is about a step's rollback.
func isRollback(r Record) bool {
	return r.Rollback || strings.HasPrefix(r.Type, "rollback_")
}

// DecidesRunStatus reports whether records of this type set the run's
// Status: the last of them decides it, so a reader that needs only the
// status may read the first record and the last of these.
func DecidesRunStatus(typ string) bool {
	switch typ {
	case RunFinished, RunPaused, RunInterrupted, RunResumed:
		return true
	}
	return false
}

// Apply folds one record into the view. Records must come in order.
func (v *View) Apply(r Record) {
	defer func() { v.lastTime, v.LastSeq = r.Time, r.Seq }()
	switch r.Type {
	case RunStarted:
		v.Started, v.Status, v.Run = r.Time, StatusRunning, r.Run
		if v.RunID == "" {
			v.RunID = r.RunID
		}
	case RunResumed:
		// Attempts still open were cut off by a crash (an interruption
		// records step_interrupted): they ended, at the latest, with the
		// last record written before the resume.
		v.closeAll(v.lastTime, &Error{Message: CutOffMessage, Class: ClassInterrupted})
		v.Resumes = append(v.Resumes, r)
		v.Status, v.Finished, v.Message, v.Error = StatusRunning, time.Time{}, "", nil
		if r.Resume != nil && r.Resume.Rollback {
			v.RollbackRequested = true
		}
	case RunPaused:
		v.Status, v.Finished, v.Message = StatusPaused, r.Time, r.Message
	case RunInterrupted:
		v.Status, v.Finished, v.Message = StatusInterrupted, r.Time, r.Message
		v.closeAll(r.Time, &Error{Message: InterruptedMessage, Class: ClassInterrupted})
	case RunFinished:
		v.Status, v.Finished, v.Error, v.RolledBack = r.Status, r.Time, r.Error, r.RolledBack
		v.Outputs, v.Duration = r.Outputs, r.Duration.Std()
	}
	if r.Step == "" {
		return
	}
	s := v.step(r)
	if isRollback(r) {
		v.applyRollback(s, r)
		return
	}
	v.startParents(s, r.Time)
	switch r.Type {
	case StepStarted:
		s.Status = StateRunning
		if s.Started.IsZero() {
			s.Started = r.Time
		}
	case AttemptStarted:
		v.resumeStep(s, r.Time)
		v.closeAttempt(s, r.Time, nil, false) // never two open at once
		s.Attempt, s.Last = max(s.Attempt, r.Attempt), AttemptInFlight
		if s.Attempts == nil {
			s.Attempts = s.first[:0]
		}
		s.Attempts = append(s.Attempts, Attempt{N: r.Attempt, Started: r.Time})
		s.open = len(s.Attempts) - 1
	case Progress, Log:
		v.resumeStep(s, r.Time)
	case AttemptFailed:
		retryable := r.Error != nil && r.Error.Retryable
		v.closeAttempt(s, r.Time, r.Error, retryable)
		s.Last = endOf(r.Error)
	case UntilUnmet:
		v.closeAttempt(s, r.Time, nil, false)
		s.Last = AttemptEndedSafe
	case StepSucceeded:
		v.closeAttempt(s, r.Time, nil, false)
		s.Status, s.Finished, s.Outputs, s.Error = StateSucceeded, r.Time, r.Outputs, nil
		if s.Outputs == nil {
			s.Outputs = map[string]any{}
		}
		s.Duration, s.Attempt = r.Duration.Std(), max(s.Attempt, r.Attempt)
		if s.Started.IsZero() {
			s.Started = r.Time.Add(-r.Duration.Std())
		}
		if !s.Parallel && s.Calls == "" {
			s.CompletedSeq = r.Seq
		}
		if m := s.Milestone; m != "" && !v.reached(m) {
			v.Milestones = append(v.Milestones, Milestone{Name: m, At: r.Time, Path: s.Path})
		}
	case StepFailed:
		v.closeAttempt(s, r.Time, r.Error, false)
		s.Status, s.Finished, s.Error, s.Continued = StateFailed, r.Time, r.Error, r.Continued
		s.Duration, s.Attempt = r.Duration.Std(), max(s.Attempt, r.Attempt)
		if s.Started.IsZero() {
			s.Started = r.Time.Add(-r.Duration.Std())
		}
		if r.Attempt > 0 && !s.Parallel && s.Calls == "" {
			s.FailedSeq = r.Seq
		}
		if !r.Continued && s.Parent == "" && v.Failure == nil {
			v.Failure = s
		}
	case StepSkipped:
		s.Status, s.SkipReason, s.Finished = StateSkipped, r.Message, r.Time
		if s.Started.IsZero() {
			s.Started = r.Time
		}
	case StepInterrupted:
		v.closeAttempt(s, r.Time, &Error{Message: InterruptedMessage, Class: ClassInterrupted}, false)
		s.Status, s.InFlight = StateInterrupted, r.InFlight
	case ApprovalRequested:
		if s.Started.IsZero() {
			s.Started = r.Time
		}
		v.approval(&s.Execution, s.Path, false, r)
	case ApprovalGranted, ApprovalDenied:
		v.approval(&s.Execution, s.Path, false, r)
	}
}

// approval applies an approval's request or answer to the step or rollback
// x of the step at path.
func (v *View) approval(x *Execution, path string, rollback bool, r Record) {
	if r.Type == ApprovalRequested {
		x.Status = StateWaiting
		x.Attempt, x.Last = max(x.Attempt, r.Attempt), AttemptInFlight
		v.request(path, rollback, r)
		return
	}
	x.Status = StateRunning
	if a := v.answer(path, rollback, r); !a.Denied {
		x.Granted = a
	}
}

// endOf classifies how an attempt that failed with e ended: an error the
// action marked retryable leaves its target as it was; anything else
// (transport, timeout, a fatal action error) may not.
func endOf(e *Error) AttemptEnd {
	if e != nil && e.Retryable && e.Class == ClassAction {
		return AttemptEndedSafe
	}
	return AttemptEndedUnsafe
}

// resumeStep marks a step running again when a record shows it is: after an
// interruption or a pause a resume sends no new step_started.
func (v *View) resumeStep(s *StepView, at time.Time) {
	switch s.Status {
	case StatePending, StateInterrupted, StateWaiting:
		s.Status = StateRunning
		if s.Started.IsZero() {
			s.Started = at
		}
	}
}

// startParents marks the groups around a step that has a record running,
// when their own start was not applied (a view fed one session's events:
// a resumed run sends no step_started for a group it re-enters).
func (v *View) startParents(s *StepView, at time.Time) {
	for p := v.byPath[s.Parent]; p != nil && p.Status == StatePending; p = v.byPath[p.Parent] {
		p.Status = StateRunning
		if p.Started.IsZero() {
			p.Started = at
		}
	}
}

func (v *View) reached(name string) bool {
	for _, m := range v.Milestones {
		if m.Name == name {
			return true
		}
	}
	return false
}

func (v *View) applyRollback(s *StepView, r Record) {
	rb := s.Rollback
	if rb == nil {
		rb = &RollbackView{Execution: Execution{Status: StateRunning, Started: r.Time}}
		s.Rollback = rb
	}
	if r.Uses != "" {
		rb.Uses = r.Uses
	}
	switch r.Type {
	case RollbackStarted:
		rb.Status, rb.Started = StateRunning, r.Time
	case AttemptStarted:
		rb.Attempt, rb.Last = max(rb.Attempt, r.Attempt), AttemptInFlight
		if rb.Status == StateInterrupted {
			rb.Status = StateRunning
		}
	case Progress:
		if rb.Status == StateInterrupted {
			rb.Status = StateRunning
		}
	case AttemptFailed:
		rb.Last = endOf(r.Error)
	case RollbackSucceeded:
		rb.Status, rb.Finished, rb.Outputs, rb.Error = StateSucceeded, r.Time, r.Outputs, nil
		rb.Duration, rb.Attempt = r.Duration.Std(), max(rb.Attempt, r.Attempt)
	case RollbackFailed:
		rb.Status, rb.Finished, rb.Error = StateFailed, r.Time, r.Error
		rb.Duration, rb.Attempt = r.Duration.Std(), max(rb.Attempt, r.Attempt)
	case RollbackSkipped:
		rb.Status, rb.Finished, rb.Message = StateSkipped, r.Time, r.Message
	case StepInterrupted:
		rb.Status, rb.InFlight = StateInterrupted, r.InFlight
	case ApprovalRequested, ApprovalGranted, ApprovalDenied:
		v.approval(&rb.Execution, s.Path, true, r)
	}
}

// request records an approval request; asked again after a pause, it is
// the same request, still waiting.
func (v *View) request(path string, rollback bool, r Record) *Approval {
	k := approvalKey{path, rollback}
	if a := v.pending[k]; a != nil {
		return a
	}
	a := &Approval{Path: path, Rollback: rollback, Message: r.Message, RequestedAt: r.Time}
	v.pending[k] = a
	v.Approvals = append(v.Approvals, a)
	return a
}

func (v *View) answer(path string, rollback bool, r Record) *Approval {
	a := v.request(path, rollback, r)
	delete(v.pending, approvalKey{path, rollback})
	a.AnsweredAt, a.Denied, a.By, a.Via, a.Approver = r.Time, r.Type == ApprovalDenied, r.By, r.Via, r.Approver
	return a
}

// closeAttempt ends a step's attempt in progress.
func (v *View) closeAttempt(s *StepView, at time.Time, err *Error, retryable bool) {
	if s.open < 0 {
		return
	}
	a := &s.Attempts[s.open]
	s.open = -1
	a.Finished, a.Error, a.Retryable = at, err, retryable
	if a.Finished.Before(a.Started) {
		a.Finished = a.Started
	}
}

func (v *View) closeAll(at time.Time, err *Error) {
	for _, s := range v.steps {
		v.closeAttempt(s, at, err, false)
	}
}

// Pending returns the approvals requested and not answered yet.
func (v *View) Pending() []*Approval {
	var out []*Approval
	for _, a := range v.Approvals {
		if a.AnsweredAt.IsZero() {
			out = append(out, a)
		}
	}
	return out
}
