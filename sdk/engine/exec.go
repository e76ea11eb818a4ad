package engine

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// outcome is how a step (or a sequence of steps) ended, for control flow.
type outcome int

const (
	outcomeOK outcome = iota
	outcomeFailed
	outcomePaused
	outcomeInterrupted
)

// resumeChoice is what resume does with a step that started and did not
// finish.
type resumeChoice int

const (
	resumeNone resumeChoice = iota
	resumeRerun
	resumeSkip
)

// stepState is the engine's view of one step: the step, and what its
// records say (v, a step of the engine's journal.View, to which every event
// is applied as it is emitted, and into which resume replays the journal).
// Guarded by Engine.mu.
type stepState struct {
	step *runbook.Step
	// path is the step's path (journal.StepPath); group the path of the
	// parallel group it belongs to ("" at the top level); scope the path of
	// the runbook it is a step of ("" for the run's runbook).
	path, group, scope string
	v                  *journal.StepView
	own                journal.StepView // where v is kept
	// choice and rbChoice are what resume decided for the step, or for its
	// rollback, when it had started and not finished.
	choice, rbChoice resumeChoice
	// stopped is the status Result reports for a group the run left
	// unfinished, paused or interrupted, without a record of its own (its
	// children recorded theirs; resume re-enters the group).
	stopped StepStatus
	// final are the outputs of a call rendered at the end of the run, after
	// its runbook's finally steps ran (nil until then): what expressions
	// read as the call's outputs from then on, the call having failed too.
	final map[string]any
}

func (e *Engine) state(id string) *stepState { return e.states[id] }

func isIdempotent(plugin string, sp *spec.ActionSpec) bool {
	return plugin == CorePlugin || (sp != nil && sp.Idempotent)
}

// done reports whether a step needs nothing more in the forward phase.
func (st *stepState) done() bool {
	switch st.v.Status {
	case journal.StateSucceeded, journal.StateSkipped:
		return true
	case journal.StateFailed:
		return st.v.Continued
	}
	return false
}

// scope is what the expressions of one runbook of the program read: its
// inputs and its finished steps. The run's runbook is scope ""; a called
// runbook's is the calling step's path, and its inputs are bound (from the
// call's `with`) when first needed.
type scope struct {
	call   *stepState // nil for the run's runbook
	inputs map[string]any
	bound  bool
	steps  map[string]any
}

// env returns the expression environment of scope sc at this point of the
// run and the function to call once the evaluation is over (the `steps`
// map is shared and must not change while an expression reads it);
// outputs is the current step's (for `until`, and for a rollback's `with`).
//
// The inputs of a called runbook's scope must be bound first (bind): the
// step that reads them checks that they could be.
func (e *Engine) env(sc string, outputs map[string]any) (map[string]any, func()) {
	e.envMu.RLock()
	s := e.scopes[sc]
	x := &expr.Scope{Inputs: s.inputs, Outputs: outputs, RunID: e.runID, RunMode: "run", RunStarted: e.started}
	m := x.Map()
	m["steps"] = s.steps
	return m, e.envMu.RUnlock
}

// bind computes the inputs of a called runbook's scope from its call's
// `with`, rendered where the call stands, once.
func (e *Engine) bind(ctx context.Context, sc string) *StepError {
	e.envMu.RLock()
	s := e.scopes[sc]
	done := s.bound
	e.envMu.RUnlock()
	if done {
		return nil
	}
	call := s.call
	given, serr := e.renderWith(ctx, call.step.With, nil, nil, call, false)
	var inputs map[string]any
	if serr == nil {
		var err error
		if inputs, err = call.step.Call.Runbook.BindInputs(given); err != nil {
			serr = &StepError{Step: call.path, Uses: call.step.Uses, Class: journal.ClassEngine, Code: "InvalidInputs", Message: e.red.string("with: " + err.Error())}
		}
	}
	if serr != nil {
		return serr
	}
	for _, in := range call.step.Call.Runbook.Inputs {
		if in.Secret {
			e.red.addValue(inputs[in.Name])
		}
	}
	e.envMu.Lock()
	s.inputs, s.bound = inputs, true
	e.envMu.Unlock()
	return nil
}

// publish makes a finished step visible to expressions. e.mu is held.
func (e *Engine) publish(st *stepState) {
	v := st.v
	switch v.Status {
	case journal.StateSucceeded, journal.StateSkipped, journal.StateFailed:
	default:
		return
	}
	e.publishEntry(st)
}

// publishEntry makes st visible to expressions as it stands, whatever its
// status. e.mu is held.
func (e *Engine) publishEntry(st *stepState) {
	v := st.v
	outputs := v.Outputs
	if st.final != nil {
		outputs = st.final
	}
	// One step's entry, built by expr.Scope so its shape has one owner.
	sc := &expr.Scope{Steps: map[string]expr.StepValues{st.step.ID: {Status: string(v.Status), Outputs: outputs, StartedAt: v.Started, FinishedAt: v.Finished,
		RolledBack: e.rolledBack(st)}}}
	entry := sc.Map()["steps"].(map[string]any)[st.step.ID]
	e.envMu.Lock()
	e.scopes[st.scope].steps[st.step.ID] = entry
	e.envMu.Unlock()
}

// publishAll rebuilds the `steps` maps from the states (those restored from
// a journal on resume). e.mu is held.
func (e *Engine) publishAll() {
	e.envMu.Lock()
	for _, s := range e.scopes {
		s.steps = map[string]any{}
	}
	e.envMu.Unlock()
	for _, st := range e.states {
		e.publish(st)
	}
}

// execute runs the forward phase (unless the run has already failed), then
// whatever the outcome calls for.
func (e *Engine) execute(parent context.Context) *Result {
	ctx, cancel := context.WithCancelCause(parent)
	defer cancel(nil)
	e.mu.Lock()
	e.publishAll()
	e.mu.Unlock()
	e.emitMu.Lock()
	e.stopRun = cancel
	e.emitMu.Unlock()

	oc := outcomeFailed
	if e.failed() == nil && !e.rollback {
		oc = e.runSequence(ctx, e.rb.Steps, "")
	}
	return e.finish(ctx, oc)
}

// runSequence runs steps in order; scope is the path of the runbook they
// belong to ("" for the run's runbook).
func (e *Engine) runSequence(ctx context.Context, steps []*runbook.Step, scope string) outcome {
	for _, s := range steps {
		st := e.state(journal.StepPath(scope, s.ID))
		e.mu.Lock()
		done := st.done()
		e.mu.Unlock()
		if done {
			continue
		}
		if ctx.Err() != nil {
			return outcomeInterrupted
		}
		if oc := e.runStep(ctx, st); oc != outcomeOK {
			return oc
		}
	}
	return outcomeOK
}

func (e *Engine) runStep(ctx context.Context, st *stepState) outcome {
	switch {
	case st.step.IsGroup():
		return e.runGroup(ctx, st)
	case st.step.IsCall():
		return e.runCall(ctx, st)
	}
	return e.runAction(ctx, st)
}

// runCall runs a called runbook's steps, in its own scope, as the steps of
// the calling step: their paths are the call's path, a dot and their ids.
// The call fails when one of them fails (its rollback is the program's:
// every completed step, across the call, most recent first), pauses when
// one waits for an approval, and succeeds with the callee's outputs.
func (e *Engine) runCall(ctx context.Context, st *stepState) outcome {
	if run, oc := e.begin(ctx, st); !run {
		return oc
	}
	if serr := e.bind(ctx, st.path); serr != nil {
		return e.failStep(st, serr)
	}
	callee := st.step.Call.Runbook
	switch oc := e.runSequence(ctx, callee.Steps, st.path); oc {
	case outcomeOK:
	case outcomeFailed:
		var failed []*stepState
		e.mu.Lock()
		for _, c := range callee.Steps {
			if cst := e.child(st, c); cst.v.Status == journal.StateFailed && !cst.v.Continued {
				failed = append(failed, cst)
			}
		}
		e.mu.Unlock()
		return e.failStep(st, e.childFailure(st, failed))
	case outcomePaused:
		e.stop(st, StepWaiting)
		return oc
	default:
		e.stop(st, StepInterrupted)
		return oc
	}
	// A callee with finally steps has its outputs rendered again at the end
	// of the run (runFinally); those that read its finally steps wait till
	// then.
	outputs, _ := e.renderOutputsOf(ctx, callee, st.path, len(callee.Finally) > 0)
	e.succeedStep(st, outputs)
	return outcomeOK
}

// stepEvent is an event about st with its identifying fields set.
func stepEvent(typ string, st *stepState) Event {
	return Event{Type: typ, Step: st.path, Group: st.group, Uses: st.step.Uses}
}

// begin evaluates a pending step's `if` and records its start. It returns
// false when the step was skipped, failed or could not be journaled (oc
// then says which).
func (e *Engine) begin(ctx context.Context, st *stepState) (bool, outcome) {
	e.mu.Lock()
	status, choice := st.v.Status, st.choice
	e.mu.Unlock()
	if status != journal.StatePending {
		// Resumed: it started before, its `if` held.
		if choice == resumeSkip {
			e.skip(st, "skipped by the operator on resume")
			return false, outcomeOK
		}
		return true, outcomeOK
	}
	run := true
	ifErr := e.bind(ctx, st.scope)
	if p := st.step.If; p != nil && ifErr == nil {
		env, done := e.env(st.scope, nil)
		ectx, cancel := evalCtx(ctx, st.step.Timeout)
		ok, err := p.EvalBool(ectx, env)
		cancel()
		done()
		if err != nil {
			ifErr = &StepError{Step: st.path, Uses: st.step.Uses, Class: journal.ClassEngine, Code: "InvalidCondition", Message: e.red.string("if: " + err.Error())}
		}
		run = ok
	}
	if ifErr == nil && !run {
		e.skip(st, "if: "+st.step.If.Source()+" is false")
		return false, outcomeOK
	}
	if err := e.emit(stepEvent(journal.StepStarted, st)); err != nil {
		return false, e.interruptStep(st, false)
	}
	if ifErr != nil && ctx.Err() != nil {
		return false, e.interruptStep(st, false) // stopped mid-evaluation
	}
	if ifErr != nil {
		return false, e.failStep(st, ifErr)
	}
	return true, outcomeOK
}

// skip records a skipped step, and every child of a skipped group.
func (e *Engine) skip(st *stepState, reason string) {
	ev := stepEvent(journal.StepSkipped, st)
	ev.Message, ev.Time = reason, time.Now().UTC()
	_ = e.emit(ev)
	children, why := st.step.Parallel, "group "+st.step.ID+" was skipped"
	if st.step.IsCall() {
		children, why = st.step.Call.Runbook.Steps, "the call "+st.path+" was skipped"
	}
	for _, c := range children {
		cst := e.child(st, c)
		e.mu.Lock()
		pending := cst.v.Status == journal.StatePending
		e.mu.Unlock()
		if pending {
			e.skip(cst, why)
		}
	}
}

func (e *Engine) runAction(ctx context.Context, st *stepState) outcome {
	s := st.step
	if run, oc := e.begin(ctx, st); !run {
		return oc
	}
	ectx, cancel := evalCtx(ctx, s.Timeout)
	params, serr := e.renderWith(ectx, s.With, s.Spec, nil, st, false)
	cancel()
	if serr != nil && ctx.Err() != nil {
		return e.interruptStep(st, false) // stopped mid-evaluation
	}
	if serr != nil {
		return e.failStep(st, serr)
	}
	x := execSpec{st: st, uses: s.Uses, plugin: s.Plugin, action: s.Action, spec: s.Spec, params: params,
		timeout: s.Timeout, retry: s.Retry, until: s.Until}
	var res attemptResult
	if s.Plugin == CorePlugin && s.Action == "approve" {
		res = e.runApproval(ctx, x)
	} else {
		res = e.attempts(ctx, x)
	}
	switch res.oc {
	case outcomeOK:
		e.succeedStep(st, res.outputs)
	case outcomeFailed:
		return e.failStep(st, res.err)
	case outcomePaused:
		e.mu.Lock()
		e.waiting = append(e.waiting, st.path)
		e.mu.Unlock()
	case outcomeInterrupted:
		return e.interruptStep(st, res.inFlight)
	}
	return res.oc
}

// progress returns the step's start and the number of its last attempt.
func (e *Engine) progress(st *stepState) (time.Time, int) {
	e.mu.Lock()
	defer e.mu.Unlock()
	return st.v.Started, st.v.Attempt
}

func (e *Engine) succeedStep(st *stepState, outputs map[string]any) {
	if outputs == nil {
		outputs = map[string]any{}
	}
	if st.step.Spec != nil {
		e.red.addAt(st.step.Spec.Outputs, outputs)
	}
	started, attempts := e.progress(st)
	now := time.Now().UTC()
	ev := stepEvent(journal.StepSucceeded, st)
	ev.Time, ev.Outputs, ev.Attempt, ev.Duration = now, outputs, attempts, journal.Duration(now.Sub(started))
	_ = e.emit(ev)
}

// failStep records a failure; under continue_on_error the run goes on.
// Only a top-level failure ends forward execution (the view's Failure): a
// child's failure fails its group, which decides.
func (e *Engine) failStep(st *stepState, serr *StepError) outcome {
	started, attempts := e.progress(st)
	now := time.Now().UTC()
	cont := st.step.ContinueOnError
	if serr.Attempts == 0 {
		serr.Attempts = attempts
	}
	ev := stepEvent(journal.StepFailed, st)
	ev.Time, ev.Error, ev.Continued, ev.Attempt, ev.Duration = now, serr.record(), cont, attempts, journal.Duration(now.Sub(started))
	_ = e.emit(ev)
	if cont {
		return outcomeOK
	}
	return outcomeFailed
}

// interruptStep records that st was running when the run was interrupted.
func (e *Engine) interruptStep(st *stepState, inFlight bool) outcome {
	_, attempts := e.progress(st)
	ev := stepEvent(journal.StepInterrupted, st)
	ev.Attempt, ev.InFlight = attempts, inFlight
	_ = e.emit(ev)
	return outcomeInterrupted
}

// runGroup runs a parallel group's children concurrently, at most
// MaxParallel at a time. After a child fails (or pauses, or the run is
// interrupted) no further child starts; those running are left to finish.
func (e *Engine) runGroup(ctx context.Context, st *stepState) outcome {
	g := st.step
	if run, oc := e.begin(ctx, st); !run {
		return oc
	}
	limit := g.MaxParallel
	if limit <= 0 || limit > len(g.Parallel) {
		limit = len(g.Parallel)
	}
	sem := make(chan struct{}, limit)
	var (
		wg       sync.WaitGroup
		mu       sync.Mutex
		stop     bool
		outcomes = map[string]outcome{}
	)
	stopped := func() bool { mu.Lock(); defer mu.Unlock(); return stop }
	// On resume: a child that failed before the run stopped is not run
	// again, and (as when it failed) no pending child starts; children that
	// were already running are run again (if safe) so that they finish and
	// can be compensated, as they would have without the interruption.
	e.mu.Lock()
	for _, c := range g.Parallel {
		if cst := e.child(st, c); cst.v.Status == journal.StateFailed && !cst.v.Continued {
			stop = true
		}
	}
	e.mu.Unlock()
children:
	for _, c := range g.Parallel {
		cst := e.child(st, c)
		e.mu.Lock()
		skip := cst.done() || cst.v.Status == journal.StateFailed
		started := cst.v.Status != journal.StatePending
		e.mu.Unlock()
		if skip {
			continue
		}
		select {
		case sem <- struct{}{}:
		case <-ctx.Done():
			break children
		}
		if ctx.Err() != nil {
			<-sem
			break
		}
		if !started && stopped() {
			<-sem
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			defer func() { <-sem }()
			oc := e.runStep(ctx, cst)
			mu.Lock()
			outcomes[cst.path] = oc
			if oc != outcomeOK {
				stop = true
			}
			mu.Unlock()
		}()
	}
	wg.Wait()

	var failed []*stepState
	paused := false
	for _, c := range g.Parallel {
		cst := e.child(st, c)
		switch outcomes[cst.path] {
		case outcomeInterrupted:
			e.stop(st, StepInterrupted)
			return outcomeInterrupted
		case outcomePaused:
			paused = true
		}
		e.mu.Lock()
		if cst.v.Status == journal.StateFailed && !cst.v.Continued {
			failed = append(failed, cst)
		}
		e.mu.Unlock()
	}
	if ctx.Err() != nil {
		e.stop(st, StepInterrupted)
		return outcomeInterrupted
	}
	if len(failed) > 0 {
		return e.failStep(st, e.childFailure(st, failed))
	}
	if paused {
		e.stop(st, StepWaiting)
		return outcomePaused
	}
	for _, c := range g.Parallel {
		if cst := e.child(st, c); !cst.done() {
			// Not started because the run stopped early: leave the group open.
			e.stop(st, StepInterrupted)
			return outcomeInterrupted
		}
	}
	e.succeedStep(st, nil)
	return outcomeOK
}

// childFailure is the error of a step whose children failed.
func (e *Engine) childFailure(st *stepState, failed []*stepState) *StepError {
	var ids, msgs []string
	class := journal.ClassEngine
	e.mu.Lock()
	for _, f := range failed {
		ids = append(ids, f.step.ID)
		if err := e.stepError(f, false); err != nil {
			msgs = append(msgs, err.Error())
			class = err.Class
		}
	}
	e.mu.Unlock()
	return &StepError{Step: st.path, Class: class, Code: "ChildFailed",
		Message: fmt.Sprintf("%s failed: %s", strings.Join(ids, ", "), strings.Join(msgs, "; "))}
}

// stop marks a group the run leaves unfinished (interrupted, or waiting for
// an approval inside it) without an event of its own: its children recorded
// theirs, and resume re-enters the group. Only Result shows it.
func (e *Engine) stop(st *stepState, status StepStatus) {
	e.mu.Lock()
	st.stopped = status
	e.mu.Unlock()
}

// child is the state of a parallel group's child, or of a step of the
// runbook a step calls.
func (e *Engine) child(parent *stepState, c *runbook.Step) *stepState {
	if parent.step.IsCall() {
		return e.states[journal.StepPath(parent.path, c.ID)]
	}
	return e.states[journal.StepPath(parent.scope, c.ID)]
}

// execSpec is one action to run with its policy: a step's action or its
// rollback.
type execSpec struct {
	st       *stepState
	rollback bool
	uses     string
	plugin   string
	action   string
	spec     *spec.ActionSpec
	params   map[string]any
	timeout  time.Duration
	retry    runbook.Retry
	until    *runbook.Until
}

type attemptResult struct {
	outputs  map[string]any
	err      *StepError
	oc       outcome
	inFlight bool
}

func (e *Engine) attemptEvent(typ string, x execSpec, n int) Event {
	ev := stepEvent(typ, x.st)
	ev.Uses, ev.Rollback, ev.Attempt = x.uses, x.rollback, n
	return ev
}

// nextAttempt returns the number of the attempt to start (it continues
// across resumes); the attempt's record counts it.
func (e *Engine) nextAttempt(x execSpec) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x.rollback {
		if rb := x.st.v.Rollback; rb != nil {
			return rb.Attempt + 1
		}
		return 1
	}
	return x.st.v.Attempt + 1
}

func (e *Engine) idempotencyKey(x execSpec) string {
	k := e.runID + "/" + x.st.path
	if x.rollback {
		k += "/rollback"
	}
	return k
}

// attempts runs an action under its retry policy, per-attempt timeout and
// `until` condition.
func (e *Engine) attempts(ctx context.Context, x execSpec) attemptResult {
	idem := isIdempotent(x.plugin, x.spec)
	maxFailures := max(x.retry.Attempts, 1)
	failures := 0
	var untilDeadline time.Time
	if x.until != nil && x.until.Timeout > 0 {
		untilDeadline = time.Now().Add(x.until.Timeout)
	}
	for {
		if ctx.Err() != nil {
			return attemptResult{oc: outcomeInterrupted}
		}
		n := e.nextAttempt(x)
		start := time.Now()
		ev := e.attemptEvent(journal.AttemptStarted, x, n)
		ev.Time = start.UTC()
		if err := e.emit(ev); err != nil {
			return attemptResult{oc: outcomeInterrupted}
		}

		var deadline time.Time
		if x.timeout > 0 {
			deadline = start.Add(x.timeout)
		}
		untilBound := false
		if !untilDeadline.IsZero() && (deadline.IsZero() || untilDeadline.Before(deadline)) {
			deadline, untilBound = untilDeadline, true
		}
		actx, cancel := ctx, context.CancelFunc(func() {})
		if !deadline.IsZero() {
			actx, cancel = context.WithDeadline(ctx, deadline)
		}
		call := Call{Plugin: x.plugin, Action: x.action, RunID: e.runID, StepID: x.st.path, Attempt: n,
			IdempotencyKey: e.idempotencyKey(x), Rollback: x.rollback, Params: deepCopyMap(x.params), Deadline: deadline}
		out, err := e.invoke(actx, call, func(p spec.Progress) {
			pev := e.attemptEvent(journal.Progress, x, n)
			pev.Message, pev.Fields = capMessage(e.red.string(p.Message)), p.Fields
			if n, ok := expr.Size(p.Fields); !ok || n > MaxErrorBytes {
				pev.Fields = map[string]any{"cut": fmt.Sprintf("%d fields, more than %s as JSON", len(p.Fields), byteSize(MaxErrorBytes))}
			}
			_ = e.emit(pev)
		})
		timedOut := err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		took := time.Since(start)

		if err == nil {
			if out == nil {
				out = map[string]any{}
			}
			if serr := e.checkOutputs(x, out, n); serr != nil {
				fev := e.attemptEvent(journal.AttemptFailed, x, n)
				fev.Error, fev.Duration = serr.record(), journal.Duration(took)
				_ = e.emit(fev)
				return attemptResult{oc: outcomeFailed, err: serr}
			}
			if x.until == nil {
				return attemptResult{outputs: out, oc: outcomeOK}
			}
			if x.spec != nil {
				e.red.addAt(x.spec.Outputs, out)
			}
			env, done := e.env(x.st.scope, out)
			holds, everr := x.until.Condition.EvalBool(ctx, env)
			done()
			if everr != nil {
				return attemptResult{oc: outcomeFailed, err: &StepError{Step: x.st.path, Uses: x.uses, Class: journal.ClassEngine,
					Code: "InvalidCondition", Attempts: n, Message: e.red.string("until: " + everr.Error())}}
			}
			if holds {
				return attemptResult{outputs: out, oc: outcomeOK}
			}
			failures = 0
			wait := x.until.Interval
			unmet := e.attemptEvent(journal.UntilUnmet, x, n)
			unmet.Outputs, unmet.Duration, unmet.Message = out, journal.Duration(took), "until: "+x.until.Condition.Source()+" does not hold yet"
			if !untilDeadline.IsZero() && time.Now().Add(wait).After(untilDeadline) {
				_ = e.emit(unmet)
				return attemptResult{oc: outcomeFailed, err: e.untilTimeout(x, n)}
			}
			unmet.NextDelay = journal.Duration(wait)
			_ = e.emit(unmet)
			if !sleepCtx(ctx, wait) {
				return attemptResult{oc: outcomeInterrupted}
			}
			continue
		}

		if ctx.Err() != nil {
			// The run was interrupted while the attempt ran: the action saw
			// the cancellation; whether it took effect is unknown.
			return attemptResult{oc: outcomeInterrupted, inFlight: true}
		}
		if timedOut && untilBound {
			fev := e.attemptEvent(journal.AttemptFailed, x, n)
			serr := e.untilTimeout(x, n)
			fev.Error, fev.Duration = serr.record(), journal.Duration(took)
			_ = e.emit(fev)
			return attemptResult{oc: outcomeFailed, err: serr}
		}
		serr := e.classify(err, timedOut, x, idem, n)
		failures++
		retry := serr.Retryable && failures < maxFailures
		var delay time.Duration
		if retry {
			delay = retryDelay(x, backoff(x.retry, failures), serr.RetryAfter)
			if !untilDeadline.IsZero() && time.Now().Add(delay).After(untilDeadline) {
				// The retry would start after the polling deadline.
				retry = false
				cause := serr.Message
				serr = e.untilTimeout(x, n)
				serr.Message += "; last error: " + cause
			}
		}
		if serr.Retryable && !retry && failures >= maxFailures && maxFailures > 1 {
			serr.Message += fmt.Sprintf(" (giving up after %d attempts)", failures)
		}
		fev := e.attemptEvent(journal.AttemptFailed, x, n)
		fev.Error, fev.Duration = serr.record(), journal.Duration(took)
		if retry {
			fev.NextDelay = journal.Duration(delay)
		}
		_ = e.emit(fev)
		if !retry {
			return attemptResult{oc: outcomeFailed, err: serr}
		}
		if !sleepCtx(ctx, delay) {
			return attemptResult{oc: outcomeInterrupted}
		}
	}
}

func (e *Engine) untilTimeout(x execSpec, n int) *StepError {
	return &StepError{Step: x.st.path, Uses: x.uses, Class: journal.ClassTimeout, Code: "UntilTimeout", Attempts: n,
		Message: fmt.Sprintf("until: %s did not hold within %s", x.until.Condition.Source(), x.until.Timeout)}
}

// classify turns an attempt's error into a StepError and decides whether
// another attempt may follow. The action's own verdict (a *spec.Error)
// decides for action errors. Transport errors and timeouts leave unknown
// whether the action took effect, so they are retried only for actions
// declared idempotent.
func (e *Engine) classify(err error, timedOut bool, x execSpec, idem bool, n int) *StepError {
	se := &StepError{Step: x.st.path, Rollback: x.rollback, Uses: x.uses, Attempts: n}
	msg := err.Error()
	var ae *spec.Error
	isAction := errors.As(err, &ae)
	switch {
	case timedOut:
		se.Class, se.Code = journal.ClassTimeout, "Timeout"
		se.Retryable = (isAction && ae.Retryable) || idem
		if isAction && ae.Message != "" {
			msg = ae.Message // its code is this error's: not "Timeout: ... (Timeout: ...)"
		}
		msg = fmt.Sprintf("attempt timed out after %s (%s)", x.timeout, msg)
	case isAction && ae.Code == CodePluginExited:
		// The plugin process died mid-action: as with a broken connection,
		// nobody knows whether the attempt took effect, so the action's
		// idempotency decides (the rule resume applies after a crash).
		se.Class, se.Code, se.Retryable = journal.ClassTransport, ae.Code, idem
	case isAction:
		se.Class, se.Code, se.Retryable = journal.ClassAction, ae.Code, ae.Retryable
		if ae.Retryable {
			se.RetryAfter = ae.RetryAfter
		}
	default:
		se.Class, se.Retryable = journal.ClassTransport, idem
	}
	if !se.Retryable && !idem && se.Class != journal.ClassAction {
		msg += fmt.Sprintf("; not retried: %s is not declared idempotent, so another attempt could repeat what this one did", x.uses)
	}
	se.Message = capMessage(e.red.string(msg))
	return se
}

// retryDelay is the wait before the next attempt: the longer of the
// backoff and what the server asked for (Retry-After), the latter bounded
// by the step's timeout, so that a server asking for an hour cannot hold a
// step with a two-minute timeout for an hour (the until deadline, when
// there is one, ends the wait earlier still).
func retryDelay(x execSpec, backoff, retryAfter time.Duration) time.Duration {
	if x.timeout > 0 && retryAfter > x.timeout {
		retryAfter = x.timeout
	}
	return max(backoff, retryAfter)
}

// backoff is the wait after the n-th consecutive failure: Delay*2^(n-1),
// capped at MaxDelay, then (with Jitter) uniformly random in [0, that].
func backoff(r runbook.Retry, n int) time.Duration {
	d := r.Delay
	if d <= 0 {
		return 0
	}
	for i := 1; i < n; i++ {
		if r.MaxDelay > 0 && d >= r.MaxDelay {
			break
		}
		if d > time.Duration(1)<<61 {
			break
		}
		d *= 2
	}
	if r.MaxDelay > 0 && d > r.MaxDelay {
		d = r.MaxDelay
	}
	if r.Jitter {
		d = rand.N(d + 1)
	}
	return d
}

func sleepCtx(ctx context.Context, d time.Duration) bool {
	if d <= 0 {
		return ctx.Err() == nil
	}
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return true
	case <-ctx.Done():
		return false
	}
}

// invoke dispatches to the built-ins or the Invoker. A panicking in-process
// Invoker fails the attempt instead of the engine.
func (e *Engine) invoke(ctx context.Context, call Call, progress func(spec.Progress)) (out map[string]any, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, err = nil, spec.FatalCode("Panic", "%s.%s panicked: %v", call.Plugin, call.Action, r)
		}
	}()
	if call.Plugin == CorePlugin {
		return e.runCore(ctx, call, progress)
	}
	return e.opts.Invoker.Invoke(ctx, call, progress)
}

// evalCtx bounds an evaluation made for a step (its `if`, its `with`) by
// the step's timeout as well as by expr.EvalTimeout, whichever ends first:
// a step's timeout stops its expressions too, not only its attempts.
func evalCtx(ctx context.Context, timeout time.Duration) (context.Context, context.CancelFunc) {
	if timeout > 0 {
		return context.WithTimeout(ctx, timeout)
	}
	return ctx, func() {}
}

// renderWith renders a `with` against the current scope. outputs is the
// step's own outputs, for a rollback.
func (e *Engine) renderWith(ctx context.Context, v *expr.Value, sp *spec.ActionSpec, outputs map[string]any, st *stepState, rollback bool) (map[string]any, *StepError) {
	if serr := e.bind(ctx, st.scope); serr != nil {
		// The inputs of the runbook st belongs to could not be bound.
		return nil, &StepError{Step: st.path, Rollback: rollback, Uses: st.step.Uses, Class: serr.Class, Code: serr.Code, Message: serr.Message}
	}
	env, done := e.env(st.scope, outputs)
	out, err := v.Render(ctx, env)
	done()
	fail := func(msg string) *StepError {
		return &StepError{Step: st.path, Rollback: rollback, Uses: st.step.Uses, Class: journal.ClassEngine, Code: "InvalidParams", Message: e.red.string(msg)}
	}
	if err != nil && expr.IsLimit(err) {
		// Refused before it reaches the plugin or the journal: say where.
		pos := st.step.Pos
		if rollback {
			pos = st.step.Rollback.Pos
		}
		return nil, fail(fmt.Sprintf("with%s: %v", atPos(pos), err))
	}
	if err != nil {
		return nil, fail("with: " + err.Error())
	}
	if out == nil {
		return map[string]any{}, nil
	}
	m, ok := out.(map[string]any)
	if !ok {
		return nil, fail(fmt.Sprintf("with: evaluated to %s, not a mapping", schema.Describe(out)))
	}
	if sp != nil {
		e.red.addAt(sp.Params, m)
	}
	return m, nil
}

// atPos is " (file:line:col)" for a known position.
func atPos(p runbook.Pos) string {
	if p.Line == 0 {
		return ""
	}
	return " (" + p.String() + ")"
}

func deepCopyMap(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return deepCopy(m).(map[string]any)
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[k] = deepCopy(it)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = deepCopy(it)
		}
		return out
	}
	return v
}

// compensationSeq is where st's rollback stands in the reverse order: the
// sequence number of its step_succeeded, or, for a rollback with `when:
// attempted`, of its step_failed after an attempt started; 0 if st is not to
// be compensated.
func (st *stepState) compensationSeq() int64 {
	rb := st.step.Rollback
	switch {
	case rb == nil:
		return 0
	case st.v.Status == journal.StateSucceeded:
		return st.v.CompletedSeq
	case st.v.Status == journal.StateFailed && rb.Attempted:
		return st.v.FailedSeq
	}
	return 0
}

// rollbackAll runs the rollback of every completed step (and of every failed
// one whose rollback says `when: attempted`), most recent first. A failing
// rollback is recorded and the others still run.
func (e *Engine) rollbackAll(ctx context.Context) (oc outcome, ran bool, failures []*StepError) {
	e.mu.Lock()
	var stack []*stepState
	for _, st := range e.order {
		if st.compensationSeq() > 0 {
			stack = append(stack, st)
		}
	}
	e.mu.Unlock()
	sort.Slice(stack, func(i, j int) bool { return stack[i].compensationSeq() > stack[j].compensationSeq() })

	for _, st := range stack {
		rb := st.step.Rollback
		e.mu.Lock()
		var status StepStatus
		if st.v.Rollback != nil {
			status = st.v.Rollback.Status
		}
		choice, outputs := st.rbChoice, st.v.Outputs
		e.mu.Unlock()
		switch status {
		case StepSucceeded, StepSkipped:
			ran = true
			continue
		case StepFailed:
			ran = true
			failures = append(failures, e.rollbackError(st))
			continue
		}
		if ctx.Err() != nil {
			return outcomeInterrupted, ran, failures
		}
		ran = true
		if status.Unfinished() && choice == resumeSkip {
			ev := stepEvent(journal.RollbackSkipped, st)
			ev.Uses, ev.Message = rb.Uses, "skipped by the operator on resume"
			_ = e.emit(ev)
			continue
		}
		if status == "" {
			ev := stepEvent(journal.RollbackStarted, st)
			ev.Uses = rb.Uses
			if err := e.emit(ev); err != nil {
				return outcomeInterrupted, ran, failures
			}
		}
		x := execSpec{st: st, rollback: true, uses: rb.Uses, plugin: rb.Plugin, action: rb.Action, spec: rb.Spec,
			timeout: rb.Timeout, retry: rb.Retry}
		params, serr := e.renderWith(ctx, rb.With, rb.Spec, outputs, st, true)
		var res attemptResult
		switch {
		case serr != nil:
			res = attemptResult{oc: outcomeFailed, err: serr}
		case rb.Plugin == CorePlugin && rb.Action == "approve":
			x.params = params
			res = e.runApproval(ctx, x)
		default:
			x.params = params
			res = e.attempts(ctx, x)
		}
		now := time.Now().UTC()
		e.mu.Lock()
		started, attempts := st.v.Rollback.Started, st.v.Rollback.Attempt
		e.mu.Unlock()
		switch res.oc {
		case outcomeOK:
			if rb.Spec != nil {
				e.red.addAt(rb.Spec.Outputs, res.outputs)
			}
			ev := stepEvent(journal.RollbackSucceeded, st)
			ev.Uses, ev.Time, ev.Outputs, ev.Attempt, ev.Duration = rb.Uses, now, res.outputs, attempts, journal.Duration(now.Sub(started))
			_ = e.emit(ev)
		case outcomeFailed:
			ev := stepEvent(journal.RollbackFailed, st)
			ev.Uses, ev.Time, ev.Error, ev.Attempt, ev.Duration = rb.Uses, now, res.err.record(), attempts, journal.Duration(now.Sub(started))
			_ = e.emit(ev)
			failures = append(failures, e.rollbackError(st))
		case outcomePaused:
			e.mu.Lock()
			e.waiting = append(e.waiting, st.path)
			e.mu.Unlock()
			return outcomePaused, ran, failures
		case outcomeInterrupted:
			ev := stepEvent(journal.StepInterrupted, st)
			ev.Uses, ev.Rollback, ev.Attempt, ev.InFlight = rb.Uses, true, attempts, res.inFlight
			_ = e.emit(ev)
			return outcomeInterrupted, ran, failures
		}
	}
	return outcomeOK, ran, failures
}

// rollbackError is the error of st's rollback, which failed.
func (e *Engine) rollbackError(st *stepState) *StepError {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.stepError(st, true)
}

// stepError is the error the view records for st (or its rollback), as a
// StepError; nil if it did not fail. e.mu is held.
func (e *Engine) stepError(st *stepState, rollback bool) *StepError {
	x, uses := &st.v.Execution, st.step.Uses
	if rollback {
		if st.v.Rollback == nil {
			return nil
		}
		x, uses = &st.v.Rollback.Execution, st.step.Rollback.Uses
	}
	if x.Status != journal.StateFailed {
		return nil
	}
	err := stepErrorFromRecord(st.path, rollback, x.Error, x.Attempt)
	err.Uses = uses
	return err
}

// failed is the failure that ended forward execution: the first top-level
// step of the runbook that failed without continue_on_error (nil if none).
func (e *Engine) failed() *StepError {
	e.mu.Lock()
	defer e.mu.Unlock()
	f := e.view.Failure
	if f == nil {
		return nil
	}
	st := e.states[f.Path]
	if st == nil {
		// A step the runbook no longer has (a forced resume): ignored, as
		// every record about it is.
		return nil
	}
	return e.stepError(st, false)
}

// finish ends the run according to the forward phase's outcome.
func (e *Engine) finish(ctx context.Context, oc outcome) *Result {
	res := &Result{RunID: e.runID, Started: e.started}
	var runErr *RunError
	switch oc {
	case outcomeOK:
		res.Status = StatusSucceeded
		e.runFinally(ctx)
		outputs, shown := e.renderOutputs(ctx, false)
		res.Outputs = outputs
		ev := Event{Type: journal.RunFinished, Status: string(res.Status), Outputs: shown, Duration: journal.Duration(time.Since(e.started))}
		_ = e.emit(ev)
	case outcomeFailed:
		res.Status = StatusFailed
		if e.onFailure() == runbook.OnFailureRollback || e.rollback {
			roc, ran, failures := e.rollbackAll(ctx)
			switch roc {
			case outcomeInterrupted:
				return e.finishStopped(ctx, res, outcomeInterrupted)
			case outcomePaused:
				return e.finishStopped(ctx, res, outcomePaused)
			}
			res.RollbackFailures = failures
			if len(failures) > 0 {
				res.Status = StatusRollbackFailed
			} else {
				res.RolledBack = ran
			}
		}
		e.runFinally(ctx)
		res.Failure = e.failed()
		runErr = &RunError{Status: res.Status, Failure: res.Failure, RollbackFailures: res.RollbackFailures}
		if res.Failure == nil && e.rollback {
			runErr.Cause = "rolled back at the operator's request"
		}
		// The outputs that can still be computed (e.g. what was done and
		// what is left) help the operator of a failed run too.
		outputs, shown := e.renderOutputs(ctx, true)
		res.Outputs = outputs
		ev := Event{Type: journal.RunFinished, Status: string(res.Status), Error: res.Failure.record(),
			RolledBack: res.RolledBack, Outputs: shown, Duration: journal.Duration(time.Since(e.started))}
		if ev.Error == nil && runErr.Cause != "" {
			ev.Error = &journal.Error{Message: runErr.Cause, Class: journal.ClassEngine}
		}
		_ = e.emit(ev)
	default:
		return e.finishStopped(ctx, res, oc)
	}
	if runErr != nil {
		res.Err = runErr
	}
	res.Finished = time.Now().UTC()
	res.Steps = e.stepResults()
	return res
}

// finishStopped ends a run that can be resumed: paused or interrupted.
func (e *Engine) finishStopped(ctx context.Context, res *Result, oc outcome) *Result {
	res.Failure = e.failed()
	e.mu.Lock()
	res.Waiting = append([]string(nil), e.waiting...)
	e.mu.Unlock()
	if oc == outcomePaused {
		res.Status = StatusPaused
		_ = e.emit(Event{Type: journal.RunPaused, Message: "waiting for approval of " + strings.Join(res.Waiting, ", ")})
	} else {
		res.Status = StatusInterrupted
		cause := interruptCause(ctx)
		res.Err = &RunError{Status: res.Status, Cause: cause}
		_ = e.emit(Event{Type: journal.RunInterrupted, Message: cause})
	}
	res.Finished = time.Now().UTC()
	res.Steps = e.stepResults()
	return res
}

// renderOutputs renders the runbook outputs: the real values for the
// Result, and the values shown in events (secret outputs as "***"). An
// output that cannot be rendered is reported in a warning and left out;
// the steps have run, so it does not fail the run. For a failed run
// (partial), outputs that read steps which did not finish are left out
// without a warning.
func (e *Engine) renderOutputs(ctx context.Context, partial bool) (values, shown map[string]any) {
	return e.renderOutputsOf(ctx, e.rb, "", partial)
}

// renderOutputsOf renders the outputs of rb, the runbook of scope sc.
func (e *Engine) renderOutputsOf(ctx context.Context, rb *runbook.Runbook, sc string, partial bool) (values, shown map[string]any) {
	if len(rb.Outputs) == 0 {
		return nil, nil
	}
	values, shown = map[string]any{}, map[string]any{}
	env, done := e.env(sc, nil)
	var warnings []string
	total := 0 // the outputs are journaled in one record: bounded together
	for _, o := range rb.Outputs {
		if partial && !e.finishedAll(sc, o.Value.Refs().Steps) {
			continue
		}
		v, err := o.Value.Render(ctx, env)
		if partial && err == nil && v == nil {
			// Nothing known (a failed call's output it could not render).
			continue
		}
		if err == nil {
			n, _ := expr.Size(v)
			if total += n; total > expr.MaxValueBytes {
				err = fmt.Errorf("left out: the outputs add up to more than %d MiB as JSON", expr.MaxValueBytes>>20)
			}
		}
		if err != nil {
			warnings = append(warnings, fmt.Sprintf("output %s%s: %v", o.Name, atPos(o.Pos), err))
			continue
		}
		values[o.Name] = v
		if o.Secret {
			e.red.addValue(v)
			shown[o.Name] = redacted
		} else {
			shown[o.Name] = v
		}
	}
	done()
	for _, w := range warnings {
		e.log("warn", sc, "%s", w)
	}
	return values, shown
}

func (e *Engine) stepResults() []StepResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]StepResult, 0, len(e.order))
	for _, st := range e.order {
		v := st.v
		status := v.Status
		if st.stopped != "" {
			status = st.stopped
		}
		r := StepResult{ID: st.path, Group: st.group, Uses: st.step.Uses, Status: status, Continued: v.Continued,
			SkipReason: v.SkipReason, Attempts: v.Attempt, Started: v.Started, Finished: v.Finished,
			Outputs: v.Outputs, Err: e.stepError(st, false)}
		if rb := v.Rollback; rb != nil {
			r.Rollback = &RollbackResult{Status: rb.Status, Attempts: rb.Attempt, Started: rb.Started,
				Finished: rb.Finished, Outputs: rb.Outputs, Err: e.stepError(st, true)}
		}
		out = append(out, r)
	}
	return out
}

// finishedAll reports whether every step in ids finished (succeeded,
// failed and continued, or skipped), so expressions can read it.
func (e *Engine) finishedAll(sc string, ids []string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		st, ok := e.states[journal.StepPath(sc, id)]
		if !ok || !st.done() && st.final == nil {
			return false
		}
	}
	return true
}

// rolledBack reports whether st's rollback ran and succeeded (a group's:
// one of its steps'). e.mu is held.
func (e *Engine) rolledBack(st *stepState) bool {
	if rb := st.v.Rollback; rb != nil && rb.Status == journal.StateSucceeded {
		return true
	}
	if st.step.IsGroup() {
		for _, c := range st.step.Parallel {
			if e.rolledBack(e.child(st, c)) {
				return true
			}
		}
	}
	return false
}

// runFinally runs the finally steps of the runbooks the run entered, once
// the forward phase and any rollback are over: those of each called
// runbook whose call started (the innermost first), whose outputs are then
// rendered again for the steps and outputs that read the call, then the
// run's own. Every step of a runbook is visible to its finally steps, one
// that did not finish with its status as it stands (pending, interrupted).
// A finally step's failure is tolerated (continue_on_error); an
// interruption stops them.
func (e *Engine) runFinally(ctx context.Context) {
	e.mu.Lock()
	// The rollbacks have run: what expressions see says which undid their
	// step (rolled_back).
	for _, st := range e.order {
		e.publish(st)
	}
	var calls []*stepState
	for _, st := range e.order {
		if st.step.IsCall() && len(st.step.Call.Runbook.Finally) > 0 {
			calls = append(calls, st)
		}
	}
	e.mu.Unlock()
	for i := len(calls) - 1; i >= 0; i-- {
		st := calls[i]
		e.mu.Lock()
		status := st.v.Status
		e.mu.Unlock()
		e.envMu.RLock()
		bound := e.scopes[st.path].bound
		e.envMu.RUnlock()
		if status == journal.StatePending || status == journal.StateSkipped || !bound {
			continue
		}
		callee := st.step.Call.Runbook
		if !e.finally(ctx, callee.Finally, st.path) {
			return
		}
		outputs, _ := e.renderOutputsOf(ctx, callee, st.path, status != journal.StateSucceeded)
		if outputs == nil {
			outputs = map[string]any{}
		}
		e.mu.Lock()
		st.final = outputs
		e.publishEntry(st)
		e.mu.Unlock()
	}
	e.finally(ctx, e.rb.Finally, "")
}

// finally runs the finally steps of scope sc, afresh (a resumed run that
// ends again reads again); false if the run was interrupted.
func (e *Engine) finally(ctx context.Context, steps []*runbook.Step, sc string) bool {
	if len(steps) == 0 {
		return ctx.Err() == nil
	}
	e.mu.Lock()
	var again func(steps []*runbook.Step)
	again = func(steps []*runbook.Step) {
		for _, s := range steps {
			st := e.state(journal.StepPath(sc, s.ID))
			st.v.Again()
			st.stopped = ""
			e.envMu.Lock()
			delete(e.scopes[sc].steps, s.ID)
			e.envMu.Unlock()
			again(s.Parallel)
		}
	}
	again(steps)
	isFinally := map[*runbook.Step]bool{}
	var mark func(steps []*runbook.Step)
	mark = func(steps []*runbook.Step) {
		for _, s := range steps {
			isFinally[s] = true
			mark(s.Parallel)
		}
	}
	mark(steps)
	for _, st := range e.order {
		if st.scope == sc && !isFinally[st.step] && !st.done() && st.v.Status != journal.StateFailed {
			e.publishEntry(st)
		}
	}
	e.mu.Unlock()
	if ctx.Err() != nil {
		return false
	}
	return e.runSequence(ctx, steps, sc) != outcomeInterrupted
}
