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

// lastAttempt is what the journal says about a step's last attempt, to
// decide whether re-running it after a crash is safe.
type lastAttempt int

const (
	// attemptNone: no attempt started (nothing was sent to the action).
	attemptNone lastAttempt = iota
	// attemptInFlight: started, no end recorded: it may have taken effect.
	attemptInFlight
	// attemptEndedSafe: ended with an error the action marked retryable,
	// or succeeded without meeting `until`: another attempt is expected.
	attemptEndedSafe
	// attemptEndedUnsafe: ended with a transport error or a timeout.
	attemptEndedUnsafe
)

// stepState is the engine's view of one step. Guarded by Engine.mu.
type stepState struct {
	step       *runbook.Step
	group      string
	status     StepStatus
	continued  bool
	skipReason string
	attempts   int
	last       lastAttempt
	started    time.Time
	finished   time.Time
	outputs    map[string]any
	err        *StepError
	// completedSeq is the journal sequence number of step_succeeded: the
	// rollback order is the reverse of it.
	completedSeq int64
	// failedSeq is the sequence number of step_failed after at least one
	// attempt started: a rollback with `when: attempted` compensates the
	// step in that place of the order.
	failedSeq int64
	choice    resumeChoice
	// approval granted (possibly before the run stopped).
	approval approval
	rb       rollbackState
}

type rollbackState struct {
	status            StepStatus // "" until started
	attempts          int
	last              lastAttempt
	started, finished time.Time
	outputs           map[string]any
	err               *StepError
	choice            resumeChoice
	approval          approval
}

func (e *Engine) state(id string) *stepState { return e.states[id] }

func isIdempotent(plugin string, sp *spec.ActionSpec) bool {
	return plugin == CorePlugin || (sp != nil && sp.Idempotent)
}

// finished reports whether a step needs nothing more in the forward phase.
func (st *stepState) done() bool {
	switch st.status {
	case StepSucceeded, StepSkipped:
		return true
	case StepFailed:
		return st.continued
	}
	return false
}

// env returns the expression environment at this point of the run and the
// function to call once the evaluation is over (the `steps` map is shared
// and must not change while an expression reads it); outputs is the
// current step's (for `until`, and for a rollback's `with`).
func (e *Engine) env(outputs map[string]any) (map[string]any, func()) {
	e.envMu.RLock()
	sc := &expr.Scope{Inputs: e.inputs, Outputs: outputs, RunID: e.runID, RunMode: "run", RunStarted: e.started}
	m := sc.Map()
	m["steps"] = e.envSteps
	return m, e.envMu.RUnlock
}

// publish makes a finished step visible to expressions. e.mu is held.
func (e *Engine) publish(st *stepState) {
	switch st.status {
	case StepSucceeded, StepSkipped, StepFailed:
	default:
		return
	}
	// One step's entry, built by expr.Scope so its shape has one owner.
	sc := &expr.Scope{Steps: map[string]expr.StepValues{st.step.ID: {Status: string(st.status), Outputs: st.outputs, StartedAt: st.started, FinishedAt: st.finished}}}
	entry := sc.Map()["steps"].(map[string]any)[st.step.ID]
	e.envMu.Lock()
	e.envSteps[st.step.ID] = entry
	e.envMu.Unlock()
}

// publishAll rebuilds the `steps` map from the states (those restored from
// a journal on resume). e.mu is held.
func (e *Engine) publishAll() {
	e.envMu.Lock()
	e.envSteps = make(map[string]any, len(e.states))
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
	if e.failure == nil && !e.rollback {
		oc = e.runSequence(ctx, e.rb.Steps)
	}
	return e.finish(ctx, oc)
}

func (e *Engine) runSequence(ctx context.Context, steps []*runbook.Step) outcome {
	for _, s := range steps {
		st := e.state(s.ID)
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
	if st.step.IsGroup() {
		return e.runGroup(ctx, st)
	}
	return e.runAction(ctx, st)
}

// stepEvent is an event about st with its identifying fields set.
func stepEvent(typ string, st *stepState) Event {
	return Event{Type: typ, Step: st.step.ID, Group: st.group, Uses: st.step.Uses}
}

// begin evaluates a pending step's `if` and records its start. It returns
// false when the step was skipped, failed or could not be journaled (oc
// then says which).
func (e *Engine) begin(ctx context.Context, st *stepState) (bool, outcome) {
	e.mu.Lock()
	status, choice := st.status, st.choice
	e.mu.Unlock()
	if status != StepPending {
		// Resumed: it started before, its `if` held.
		if choice == resumeSkip {
			e.skip(st, "skipped by the operator on resume")
			return false, outcomeOK
		}
		return true, outcomeOK
	}
	run := true
	var ifErr *StepError
	if p := st.step.If; p != nil {
		env, done := e.env(nil)
		ok, err := p.EvalBool(env)
		done()
		if err != nil {
			ifErr = &StepError{Step: st.step.ID, Uses: st.step.Uses, Class: journal.ClassEngine, Code: "InvalidCondition", Message: e.red.string("if: " + err.Error())}
		}
		run = ok
	}
	if ifErr == nil && !run {
		e.skip(st, "if: "+st.step.If.Source()+" is false")
		return false, outcomeOK
	}
	e.mu.Lock()
	st.status, st.started = StepRunning, time.Now().UTC()
	e.mu.Unlock()
	if err := e.emit(stepEvent(journal.StepStarted, st)); err != nil {
		return false, e.interruptStep(st, false)
	}
	if ifErr != nil {
		return false, e.failStep(st, ifErr)
	}
	return true, outcomeOK
}

// skip records a skipped step, and every child of a skipped group.
func (e *Engine) skip(st *stepState, reason string) {
	now := time.Now().UTC()
	e.mu.Lock()
	st.status, st.skipReason, st.finished = StepSkipped, reason, now
	if st.started.IsZero() {
		st.started = now
	}
	e.publish(st)
	e.mu.Unlock()
	ev := stepEvent(journal.StepSkipped, st)
	ev.Message, ev.Time = reason, now
	_ = e.emit(ev)
	for _, c := range st.step.Parallel {
		cst := e.state(c.ID)
		e.mu.Lock()
		pending := cst.status == StepPending
		e.mu.Unlock()
		if pending {
			e.skip(cst, "group "+st.step.ID+" was skipped")
		}
	}
}

func (e *Engine) runAction(ctx context.Context, st *stepState) outcome {
	s := st.step
	if run, oc := e.begin(ctx, st); !run {
		return oc
	}
	params, serr := e.renderWith(s.With, s.Spec, nil, st, false)
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
		st.status = StepWaiting
		e.waiting = append(e.waiting, st.step.ID)
		e.mu.Unlock()
	case outcomeInterrupted:
		return e.interruptStep(st, res.inFlight)
	}
	return res.oc
}

func (e *Engine) succeedStep(st *stepState, outputs map[string]any) {
	if outputs == nil {
		outputs = map[string]any{}
	}
	if st.step.Spec != nil {
		e.red.addAt(st.step.Spec.Outputs, outputs)
	}
	now := time.Now().UTC()
	e.mu.Lock()
	st.status, st.outputs, st.finished, st.err = StepSucceeded, outputs, now, nil
	e.publish(st)
	ev := stepEvent(journal.StepSucceeded, st)
	ev.Time, ev.Outputs, ev.Attempt, ev.Duration = now, outputs, st.attempts, journal.Duration(now.Sub(st.started))
	e.mu.Unlock()
	seq, _ := e.emitSeq(ev)
	if !st.step.IsGroup() {
		e.mu.Lock()
		st.completedSeq = seq
		e.mu.Unlock()
	}
}

// failStep records a failure; under continue_on_error the run goes on.
// Only a top-level failure ends forward execution: a child's failure fails
// its group, which decides.
func (e *Engine) failStep(st *stepState, serr *StepError) outcome {
	now := time.Now().UTC()
	e.mu.Lock()
	cont := st.step.ContinueOnError
	st.status, st.err, st.finished, st.continued = StepFailed, serr, now, cont
	e.publish(st)
	if serr.Attempts == 0 {
		serr.Attempts = st.attempts
	}
	if !cont && st.group == "" && e.failure == nil {
		e.failure = serr
	}
	ev := stepEvent(journal.StepFailed, st)
	ev.Time, ev.Error, ev.Continued, ev.Attempt, ev.Duration = now, serr.record(), cont, st.attempts, journal.Duration(now.Sub(st.started))
	attempted := st.attempts > 0 && !st.step.IsGroup()
	e.mu.Unlock()
	seq, _ := e.emitSeq(ev)
	if attempted {
		e.mu.Lock()
		st.failedSeq = seq
		e.mu.Unlock()
	}
	if cont {
		return outcomeOK
	}
	return outcomeFailed
}

// interruptStep records that st was running when the run was interrupted.
func (e *Engine) interruptStep(st *stepState, inFlight bool) outcome {
	e.mu.Lock()
	st.status = StepInterrupted
	ev := stepEvent(journal.StepInterrupted, st)
	ev.Attempt, ev.InFlight = st.attempts, inFlight
	e.mu.Unlock()
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
		if cst := e.state(c.ID); cst.status == StepFailed && !cst.continued {
			stop = true
		}
	}
	e.mu.Unlock()
children:
	for _, c := range g.Parallel {
		cst := e.state(c.ID)
		e.mu.Lock()
		skip := cst.done() || cst.status == StepFailed
		started := cst.status != StepPending
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
			outcomes[cst.step.ID] = oc
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
		cst := e.state(c.ID)
		switch outcomes[c.ID] {
		case outcomeInterrupted:
			ctxInterrupted(st, e)
			return outcomeInterrupted
		case outcomePaused:
			paused = true
		}
		e.mu.Lock()
		if cst.status == StepFailed && !cst.continued {
			failed = append(failed, cst)
		}
		e.mu.Unlock()
	}
	if ctx.Err() != nil {
		ctxInterrupted(st, e)
		return outcomeInterrupted
	}
	if len(failed) > 0 {
		var ids, msgs []string
		class := journal.ClassEngine
		for _, f := range failed {
			ids = append(ids, f.step.ID)
			if f.err != nil {
				msgs = append(msgs, f.err.Error())
				class = f.err.Class
			}
		}
		return e.failStep(st, &StepError{Step: g.ID, Class: class, Code: "ChildFailed",
			Message: fmt.Sprintf("%s failed: %s", strings.Join(ids, ", "), strings.Join(msgs, "; "))})
	}
	if paused {
		e.mu.Lock()
		st.status = StepWaiting
		e.mu.Unlock()
		return outcomePaused
	}
	for _, c := range g.Parallel {
		if cst := e.state(c.ID); !cst.done() {
			// Not started because the run stopped early: leave the group open.
			ctxInterrupted(st, e)
			return outcomeInterrupted
		}
	}
	e.succeedStep(st, nil)
	return outcomeOK
}

// ctxInterrupted marks a group interrupted without an event of its own: its
// children recorded theirs, and resume re-enters the group.
func ctxInterrupted(st *stepState, e *Engine) {
	e.mu.Lock()
	st.status = StepInterrupted
	e.mu.Unlock()
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

// nextAttempt increments and returns the attempt counter (it continues
// across resumes).
func (e *Engine) nextAttempt(x execSpec) int {
	e.mu.Lock()
	defer e.mu.Unlock()
	if x.rollback {
		x.st.rb.attempts++
		x.st.rb.last = attemptInFlight
		return x.st.rb.attempts
	}
	x.st.attempts++
	x.st.last = attemptInFlight
	return x.st.attempts
}

func (e *Engine) idempotencyKey(x execSpec) string {
	k := e.runID + "/" + x.st.step.ID
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
		call := Call{Plugin: x.plugin, Action: x.action, RunID: e.runID, StepID: x.st.step.ID, Attempt: n,
			IdempotencyKey: e.idempotencyKey(x), Rollback: x.rollback, Params: deepCopyMap(x.params), Deadline: deadline}
		out, err := e.invoke(actx, call, func(p spec.Progress) {
			pev := e.attemptEvent(journal.Progress, x, n)
			pev.Message, pev.Fields = p.Message, p.Fields
			_ = e.emit(pev)
		})
		timedOut := err != nil && ctx.Err() == nil && errors.Is(actx.Err(), context.DeadlineExceeded)
		cancel()
		took := time.Since(start)

		if err == nil {
			if out == nil {
				out = map[string]any{}
			}
			if x.until == nil {
				return attemptResult{outputs: out, oc: outcomeOK}
			}
			if x.spec != nil {
				e.red.addAt(x.spec.Outputs, out)
			}
			env, done := e.env(out)
			holds, everr := x.until.Condition.EvalBool(env)
			done()
			if everr != nil {
				return attemptResult{oc: outcomeFailed, err: &StepError{Step: x.st.step.ID, Uses: x.uses, Class: journal.ClassEngine,
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
			e.mu.Lock()
			x.st.last = attemptEndedSafe
			e.mu.Unlock()
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
			delay = backoff(x.retry, failures)
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
		e.mu.Lock()
		if serr.Retryable && serr.Class == journal.ClassAction {
			setLast(x, attemptEndedSafe)
		} else {
			setLast(x, attemptEndedUnsafe)
		}
		e.mu.Unlock()
		if !retry {
			return attemptResult{oc: outcomeFailed, err: serr}
		}
		if !sleepCtx(ctx, delay) {
			return attemptResult{oc: outcomeInterrupted}
		}
	}
}

func setLast(x execSpec, l lastAttempt) {
	if x.rollback {
		x.st.rb.last = l
	} else {
		x.st.last = l
	}
}

func (e *Engine) untilTimeout(x execSpec, n int) *StepError {
	return &StepError{Step: x.st.step.ID, Uses: x.uses, Class: journal.ClassTimeout, Code: "UntilTimeout", Attempts: n,
		Message: fmt.Sprintf("until: %s did not hold within %s", x.until.Condition.Source(), x.until.Timeout)}
}

// classify turns an attempt's error into a StepError and decides whether
// another attempt may follow. The action's own verdict (a *spec.Error)
// decides for action errors. Transport errors and timeouts leave unknown
// whether the action took effect, so they are retried only for actions
// declared idempotent.
func (e *Engine) classify(err error, timedOut bool, x execSpec, idem bool, n int) *StepError {
	se := &StepError{Step: x.st.step.ID, Rollback: x.rollback, Uses: x.uses, Attempts: n}
	msg := err.Error()
	var ae *spec.Error
	isAction := errors.As(err, &ae)
	switch {
	case timedOut:
		se.Class, se.Code = journal.ClassTimeout, "Timeout"
		se.Retryable = (isAction && ae.Retryable) || idem
		msg = fmt.Sprintf("attempt timed out after %s (%s)", x.timeout, msg)
	case isAction && ae.Code == CodePluginExited:
		// The plugin process died mid-action: as with a broken connection,
		// nobody knows whether the attempt took effect, so the action's
		// idempotency decides (the rule resume applies after a crash).
		se.Class, se.Code, se.Retryable = journal.ClassTransport, ae.Code, idem
	case isAction:
		se.Class, se.Code, se.Retryable = journal.ClassAction, ae.Code, ae.Retryable
	default:
		se.Class, se.Retryable = journal.ClassTransport, idem
	}
	if !se.Retryable && !idem && se.Class != journal.ClassAction {
		msg += fmt.Sprintf("; not retried: %s is not declared idempotent, so another attempt could repeat what this one did", x.uses)
	}
	se.Message = e.red.string(msg)
	return se
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

// renderWith renders a `with` against the current scope. outputs is the
// step's own outputs, for a rollback.
func (e *Engine) renderWith(v *expr.Value, sp *spec.ActionSpec, outputs map[string]any, st *stepState, rollback bool) (map[string]any, *StepError) {
	env, done := e.env(outputs)
	out, err := v.Render(env)
	done()
	fail := func(msg string) *StepError {
		return &StepError{Step: st.step.ID, Rollback: rollback, Uses: st.step.Uses, Class: journal.ClassEngine, Code: "InvalidParams", Message: e.red.string(msg)}
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
	case st.status == StepSucceeded:
		return st.completedSeq
	case st.status == StepFailed && rb.Attempted:
		return st.failedSeq
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
		status, choice, prevErr, outputs := st.rb.status, st.rb.choice, st.rb.err, st.outputs
		e.mu.Unlock()
		switch status {
		case StepSucceeded, StepSkipped:
			ran = true
			continue
		case StepFailed:
			ran = true
			failures = append(failures, prevErr)
			continue
		}
		if ctx.Err() != nil {
			return outcomeInterrupted, ran, failures
		}
		ran = true
		if status == StepRunning && choice == resumeSkip {
			e.mu.Lock()
			st.rb.status, st.rb.finished = StepSkipped, time.Now().UTC()
			e.mu.Unlock()
			ev := stepEvent(journal.RollbackSkipped, st)
			ev.Uses, ev.Message = rb.Uses, "skipped by the operator on resume"
			_ = e.emit(ev)
			continue
		}
		if status == "" {
			e.mu.Lock()
			st.rb.status, st.rb.started = StepRunning, time.Now().UTC()
			e.mu.Unlock()
			ev := stepEvent(journal.RollbackStarted, st)
			ev.Uses = rb.Uses
			if err := e.emit(ev); err != nil {
				return outcomeInterrupted, ran, failures
			}
		}
		x := execSpec{st: st, rollback: true, uses: rb.Uses, plugin: rb.Plugin, action: rb.Action, spec: rb.Spec,
			timeout: rb.Timeout, retry: rb.Retry}
		params, serr := e.renderWith(rb.With, rb.Spec, outputs, st, true)
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
		switch res.oc {
		case outcomeOK:
			if rb.Spec != nil {
				e.red.addAt(rb.Spec.Outputs, res.outputs)
			}
			e.mu.Lock()
			st.rb.status, st.rb.outputs, st.rb.finished = StepSucceeded, res.outputs, now
			ev := stepEvent(journal.RollbackSucceeded, st)
			ev.Uses, ev.Time, ev.Outputs, ev.Attempt, ev.Duration = rb.Uses, now, res.outputs, st.rb.attempts, journal.Duration(now.Sub(st.rb.started))
			e.mu.Unlock()
			_ = e.emit(ev)
		case outcomeFailed:
			res.err.Rollback = true
			e.mu.Lock()
			if res.err.Attempts == 0 {
				res.err.Attempts = st.rb.attempts
			}
			st.rb.status, st.rb.err, st.rb.finished = StepFailed, res.err, now
			ev := stepEvent(journal.RollbackFailed, st)
			ev.Uses, ev.Time, ev.Error, ev.Attempt, ev.Duration = rb.Uses, now, res.err.record(), st.rb.attempts, journal.Duration(now.Sub(st.rb.started))
			e.mu.Unlock()
			_ = e.emit(ev)
			failures = append(failures, res.err)
		case outcomePaused:
			e.mu.Lock()
			st.rb.status = StepWaiting
			e.waiting = append(e.waiting, st.step.ID)
			e.mu.Unlock()
			return outcomePaused, ran, failures
		case outcomeInterrupted:
			e.mu.Lock()
			st.rb.status = StepInterrupted
			ev := stepEvent(journal.StepInterrupted, st)
			ev.Uses, ev.Rollback, ev.Attempt, ev.InFlight = rb.Uses, true, st.rb.attempts, res.inFlight
			e.mu.Unlock()
			_ = e.emit(ev)
			return outcomeInterrupted, ran, failures
		}
	}
	return outcomeOK, ran, failures
}

// finish ends the run according to the forward phase's outcome.
func (e *Engine) finish(ctx context.Context, oc outcome) *Result {
	res := &Result{RunID: e.runID, Started: e.started}
	var runErr *RunError
	switch oc {
	case outcomeOK:
		res.Status = StatusSucceeded
		outputs, shown := e.renderOutputs(false)
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
		e.mu.Lock()
		res.Failure = e.failure
		e.mu.Unlock()
		runErr = &RunError{Status: res.Status, Failure: res.Failure, RollbackFailures: res.RollbackFailures}
		if res.Failure == nil && e.rollback {
			runErr.Cause = "rolled back at the operator's request"
		}
		// The outputs that can still be computed (e.g. what was done and
		// what is left) help the operator of a failed run too.
		outputs, shown := e.renderOutputs(true)
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
	e.mu.Lock()
	res.Failure = e.failure
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
func (e *Engine) renderOutputs(partial bool) (values, shown map[string]any) {
	if len(e.rb.Outputs) == 0 {
		return nil, nil
	}
	values, shown = map[string]any{}, map[string]any{}
	env, done := e.env(nil)
	defer done()
	for _, o := range e.rb.Outputs {
		if partial && !e.finishedAll(o.Value.Refs().Steps) {
			continue
		}
		v, err := o.Value.Render(env)
		if err != nil {
			e.log("warn", "", "output %s: %v", o.Name, err)
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
	return values, shown
}

func (e *Engine) stepResults() []StepResult {
	e.mu.Lock()
	defer e.mu.Unlock()
	out := make([]StepResult, 0, len(e.order))
	for _, st := range e.order {
		r := StepResult{ID: st.step.ID, Group: st.group, Uses: st.step.Uses, Status: st.status, Continued: st.continued,
			SkipReason: st.skipReason, Attempts: st.attempts, Started: st.started, Finished: st.finished,
			Outputs: st.outputs, Err: st.err}
		if st.rb.status != "" {
			r.Rollback = &RollbackResult{Status: st.rb.status, Attempts: st.rb.attempts, Started: st.rb.started,
				Finished: st.rb.finished, Outputs: st.rb.outputs, Err: st.rb.err}
		}
		out = append(out, r)
	}
	return out
}

// finishedAll reports whether every step in ids finished (succeeded,
// failed and continued, or skipped), so expressions can read it.
func (e *Engine) finishedAll(ids []string) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	for _, id := range ids {
		st, ok := e.states[id]
		if !ok {
			return false
		}
		switch st.status {
		case StepSucceeded, StepSkipped:
		case StepFailed:
			if !st.continued {
				return false
			}
		default:
			return false
		}
	}
	return true
}
