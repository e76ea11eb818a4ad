package engine

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/spec"
)

// Approvals says how core.approve steps are answered. In order: AutoApprove
// approves everything; Approved pre-approves the listed step ids; otherwise
// the Approver is asked; with none, the run pauses (journaled, status
// paused) until it is resumed with an approval.
type Approvals struct {
	AutoApprove bool
	Approved    map[string]bool
	Approver    Approver
	// By names who approved in advance (AutoApprove, Approved), for the
	// journal; default: the OS user running the engine.
	By string
	// Identity, when set, says who answered in auditable form; it is
	// called for every answer and journaled with it (secrets redacted).
	// It must return promptly: an approval waits for it.
	Identity func(ctx context.Context) *journal.Identity
}

// Approver asks a human. The CLI implements it with a TTY prompt. Calls are
// serialised (one question at a time, even from parallel steps). ctx ends
// when the run is interrupted or the approval's timeout expires.
type Approver interface {
	Approve(ctx context.Context, req ApprovalRequest) (Decision, error)
}

// ApproverFunc adapts a function to Approver.
type ApproverFunc func(ctx context.Context, req ApprovalRequest) (Decision, error)

func (f ApproverFunc) Approve(ctx context.Context, req ApprovalRequest) (Decision, error) {
	return f(ctx, req)
}

// ApprovalRequest is the question.
type ApprovalRequest struct {
	RunID, StepID string
	// Message is the step's message, secrets redacted.
	Message string
	// Timeout bounds the wait (zero: none); ctx carries it as a deadline.
	Timeout time.Duration
	// Rollback: the approval is part of a step's rollback.
	Rollback bool
}

// Decision is the answer.
type Decision struct {
	Approved bool
	// By is who answered (recorded in the journal).
	By string
	// Reason is an optional comment, recorded with a denial.
	Reason string
}

// ErrApprovalDeferred, returned by an Approver, pauses the run instead of
// answering (the operator chose to decide later, or cannot be asked).
var ErrApprovalDeferred = errors.New("approval deferred")

type approvalState struct {
	mu sync.Mutex
	by string
}

// runApproval runs core.approve: it is not an attempt with a timeout (a
// human is not an action); its own `timeout` parameter bounds the wait for
// an interactive answer.
func (e *Engine) runApproval(ctx context.Context, x execSpec) attemptResult {
	st, id := x.st, x.st.path
	fail := func(code, msg string, n int) attemptResult {
		return attemptResult{oc: outcomeFailed, err: &StepError{Step: id, Rollback: x.rollback, Uses: x.uses,
			Class: journal.ClassEngine, Code: code, Attempts: n, Message: e.red.string(msg)}}
	}
	msg, _ := x.params["message"].(string)
	if region, _ := x.params["leaving_region"].(string); region != "" && !x.rollback {
		if w := controlPlaneWarning(region, e.runtimeControlPlaneDeps(ctx, id, region)); w != "" {
			msg += "\n\n" + w
		}
	}
	timeout, err := durationParam(x.params["timeout"])
	if err != nil {
		return fail("InvalidParams", "timeout: "+err.Error(), 0)
	}
	e.mu.Lock()
	prior := st.v.Granted
	if x.rollback {
		prior = nil
		if rb := st.v.Rollback; rb != nil {
			prior = rb.Granted
		}
	}
	e.mu.Unlock()
	if prior != nil {
		// Granted before the run stopped: the answer stands.
		return attemptResult{oc: outcomeOK, outputs: approval{by: prior.By, via: prior.Via, at: prior.AnsweredAt}.outputs()}
	}
	var by, via string
	n := e.nextAttempt(x)
	req := e.attemptEvent(journal.ApprovalRequested, x, n)
	req.Message = msg
	if err := e.emit(req); err != nil {
		return attemptResult{oc: outcomeInterrupted}
	}

	a := e.opts.Approvals
	switch {
	case a.AutoApprove:
		by, via = e.approvers.by, "auto-approve"
	case a.Approved[id]:
		by, via = e.approvers.by, "pre-approved"
	case a.Approver != nil:
		actx, cancel := ctx, context.CancelFunc(func() {})
		if timeout > 0 {
			actx, cancel = context.WithTimeout(ctx, timeout)
		}
		e.approvers.mu.Lock()
		d, err := a.Approver.Approve(actx, ApprovalRequest{RunID: e.runID, StepID: id, Message: e.red.string(msg), Timeout: timeout, Rollback: x.rollback})
		e.approvers.mu.Unlock()
		expired := errors.Is(actx.Err(), context.DeadlineExceeded) && ctx.Err() == nil
		cancel()
		switch {
		case errors.Is(err, ErrApprovalDeferred):
			return attemptResult{oc: outcomePaused}
		case ctx.Err() != nil:
			return attemptResult{oc: outcomeInterrupted}
		case expired:
			return fail("ApprovalTimeout", fmt.Sprintf("no answer to the approval within %s", timeout), n)
		case err != nil:
			return fail("ApprovalError", "asking for approval: "+err.Error(), n)
		}
		by, via = d.By, "interactive"
		if by == "" {
			by = e.approvers.by
		}
		if !d.Approved {
			ev := e.attemptEvent(journal.ApprovalDenied, x, n)
			ev.By, ev.Via, ev.Message, ev.Approver = by, via, d.Reason, e.approverIdentity(ctx)
			_ = e.emit(ev)
			m := "approval denied by " + by
			if d.Reason != "" {
				m += ": " + d.Reason
			}
			return fail("ApprovalDenied", m, n)
		}
	default:
		return attemptResult{oc: outcomePaused}
	}
	identity := e.approverIdentity(ctx)
	granted := approval{by: by, via: via, at: time.Now().UTC()}
	ev := e.attemptEvent(journal.ApprovalGranted, x, n)
	ev.By, ev.Via, ev.Time, ev.Approver = by, via, granted.at, identity
	if err := e.emit(ev); err != nil {
		return attemptResult{oc: outcomeInterrupted}
	}
	return attemptResult{oc: outcomeOK, outputs: granted.outputs()}
}

// approverIdentity is who answers, from Approvals.Identity (nil without it).
func (e *Engine) approverIdentity(ctx context.Context) *journal.Identity {
	f := e.opts.Approvals.Identity
	if f == nil {
		return nil
	}
	return f(ctx)
}

// approval is a granted approval: the outputs of core.approve.
type approval struct {
	by, via string
	at      time.Time
}

func (a approval) outputs() map[string]any {
	return map[string]any{"approved_by": a.by, "approved_via": a.via, "approved_at": a.at.Format(time.RFC3339Nano)}
}

// runCore runs the built-ins other than approve, as attempts: they obey the
// step's timeout, and their errors are *spec.Error like a plugin's.
func (e *Engine) runCore(ctx context.Context, call Call, progress func(spec.Progress)) (map[string]any, error) {
	p := call.Params
	switch call.Action {
	case "sleep":
		d, err := durationParam(p["duration"])
		if err != nil {
			return nil, spec.FatalCode("InvalidParams", "duration: %v", err)
		}
		if progress != nil {
			progress(spec.Progress{Time: time.Now(), Message: "sleeping " + d.String()})
		}
		if !sleepCtx(ctx, d) {
			return nil, ctx.Err()
		}
		return map[string]any{}, nil
	case "assert":
		that, ok := p["that"].(bool)
		if !ok {
			return nil, spec.FatalCode("InvalidParams", "that: want a boolean, got %T", p["that"])
		}
		if !that {
			msg, _ := p["message"].(string)
			if msg == "" {
				msg = "assertion failed"
			}
			return nil, spec.FatalCode("AssertionFailed", "%s", msg)
		}
		return map[string]any{}, nil
	case "log":
		level, _ := p["level"].(string)
		switch level {
		case "":
			level = "info"
		case "debug", "info", "warn", "error":
		default:
			return nil, spec.FatalCode("InvalidParams", "level: want debug, info, warn or error, got %q", level)
		}
		msg, _ := p["message"].(string)
		st := e.state(call.StepID)
		ev := stepEvent(journal.Log, st)
		ev.Level, ev.Message, ev.Attempt, ev.Rollback = level, msg, call.Attempt, call.Rollback
		_ = e.emit(ev)
		return map[string]any{}, nil
	case "approve":
		return nil, spec.FatalCode("Internal", "core.approve cannot run as an attempt")
	}
	return nil, spec.FatalCode("UnknownAction", "unknown built-in core.%s", call.Action)
}

// durationParam reads a duration parameter: a Go duration string, or a
// number of seconds. Missing is zero.
func durationParam(v any) (time.Duration, error) {
	switch x := v.(type) {
	case nil:
		return 0, nil
	case string:
		if x == "" {
			return 0, nil
		}
		d, err := time.ParseDuration(x)
		if err != nil {
			return 0, err
		}
		if d < 0 {
			return 0, fmt.Errorf("negative duration %s", x)
		}
		return d, nil
	case float64:
		if x < 0 {
			return 0, fmt.Errorf("negative duration %v", x)
		}
		return time.Duration(x * float64(time.Second)), nil
	case time.Duration:
		return x, nil
	}
	return 0, fmt.Errorf("want a duration such as \"30s\", got %T", v)
}
