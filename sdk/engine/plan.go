package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// PlanDecision is whether a step would run.
type PlanDecision string

const (
	// PlanRun: the step would run (no `if`, or its `if` holds now).
	PlanRun PlanDecision = "run"
	// PlanSkip: its `if` (or its group's) is false with the known inputs.
	PlanSkip PlanDecision = "skip"
	// PlanConditional: its `if` reads steps that have not run, so whether
	// it runs is known only at run time ("would run if ...").
	PlanConditional PlanDecision = "conditional"
)

// PlanResult is what a run would do, step by step, in document order (a
// group before its children). Plan invokes only read-only actions (whose
// outputs later steps may need to show their intended changes); every other
// action is asked for its Plan, which changes nothing.
type PlanResult struct {
	RunID string     `json:"run_id"`
	Steps []PlanStep `json:"steps"`
	// Warnings are about the whole path: a core.approve given the region
	// being left (leaving_region) warns when later steps depend on a
	// control plane served from there.
	Warnings []string `json:"warnings,omitempty"`
}

// HasErrors reports whether any step could not be planned.
func (p *PlanResult) HasErrors() bool {
	for _, s := range p.Steps {
		if s.Err != "" {
			return true
		}
	}
	return false
}

// PlanStep is one step of a plan.
type PlanStep struct {
	ID    string `json:"id"`
	Name  string `json:"name,omitempty"`
	Group string `json:"group,omitempty"`
	// Uses is the action; empty for a group; the file for a step that
	// calls a runbook (Calls), whose steps follow it with their paths.
	Uses     string       `json:"uses,omitempty"`
	IsGroup  bool         `json:"is_group,omitempty"`
	Calls    bool         `json:"calls,omitempty"`
	Decision PlanDecision `json:"decision"`
	// Condition is the `if` that makes the step skipped or conditional
	// (its own or its group's).
	Condition string `json:"condition,omitempty"`
	// SkipReason explains a PlanSkip.
	SkipReason string `json:"skip_reason,omitempty"`
	// Params are the rendered `with` (secrets redacted); values that depend
	// on earlier steps' outputs are null and listed in Unknown as JSON
	// pointers.
	Params  map[string]any `json:"params,omitempty"`
	Unknown []string       `json:"unknown,omitempty"`
	// Plan is the action's answer (or, for a core built-in, the engine's
	// description of what it would do). Nil when not planned.
	Plan *spec.Plan `json:"plan,omitempty"`
	// NoPlanSupport: the action does not implement Plan; what it would
	// change is not known in advance.
	NoPlanSupport bool `json:"no_plan_support,omitempty"`
	// Rollback is the rollback action, if any.
	Rollback string `json:"rollback,omitempty"`
	// Read: the action is read-only and was run during the plan; Outputs
	// are its outputs (secrets redacted), which later steps' plans used.
	Read    bool           `json:"read,omitempty"`
	Outputs map[string]any `json:"outputs,omitempty"`
	// Err is why the step could not be planned (redacted).
	Err string `json:"error,omitempty"`
	// Tolerated is why a step whose failure the run tolerates
	// (continue_on_error) could not be planned now, and the bound on it at
	// run time; not an error of the plan.
	Tolerated string `json:"tolerated,omitempty"`
	// ControlPlanes are the single-region control planes the step's action
	// declares (ActionSpec.ControlPlanes), for steps that would or may run.
	ControlPlanes []spec.ControlPlane `json:"control_planes,omitempty"`
	// Conditions are checks of the step's plan that do not hold now but
	// concern what an earlier step of the plan changes: "will be checked
	// after <step>: ..." (planConditions), not warnings.
	Conditions []string `json:"conditions,omitempty"`
	// Finally: a finally step (run at the end of the run, whatever
	// happened); it is described, not read, in the plan.
	Finally bool `json:"finally,omitempty"`
	// Warnings: for an approval given leaving_region, which later steps
	// depend on a control plane there; for such a step, that it does.
	Warnings []string `json:"warnings,omitempty"`
}

// Plan walks the steps without running any: it evaluates `if` where its
// inputs are known, renders `with` (values that depend on steps not run
// are unknown), and asks actions that support it what they would change.
func (e *Engine) Plan(ctx context.Context) (*PlanResult, error) {
	if !e.used.CompareAndSwap(false, true) {
		return nil, errors.New("engine: an Engine runs once; create another")
	}
	inputs, err := e.resolveInputs(e.opts.Inputs)
	if err != nil {
		return nil, err
	}
	e.setInputs(inputs)
	e.runID = e.opts.RunID
	if e.runID == "" {
		e.runID = NewRunID(time.Now())
	}
	e.started = time.Now().UTC()
	res := &PlanResult{RunID: e.runID}
	top := &planScope{inputs: inputs, known: map[string]expr.StepValues{}}
	if err := e.planSteps(ctx, top, e.rb.Steps, "", "", PlanRun, "", "", res); err != nil {
		return nil, err
	}
	if err := e.planFinally(ctx, top, e.rb, "", PlanRun, "", "", res); err != nil {
		return nil, err
	}
	specs := map[string]*spec.ActionSpec{}
	for _, st := range e.order { // by path: the steps of called runbooks too
		specs[st.path] = st.step.Spec
	}
	planControlPlanes(res, specs)
	planConditions(res)
	return res, nil
}

// planConditions turns a warning of a step's plan into a condition of an
// earlier step when that step's plan changes a resource the warning names
// (its Resource appears in the warning's text): the check fails now because
// the earlier step has not run, and is expected to pass once it has (the
// split-brain guard of the services' start names the global cluster whose
// writer the switchover moves). A warning no earlier change explains stays a
// warning: it needs a human.
func planConditions(res *PlanResult) {
	for i := range res.Steps {
		ps := &res.Steps[i]
		if ps.Plan == nil || ps.Decision == PlanSkip {
			continue
		}
		kept := ps.Plan.Diagnostics[:0:0]
		for _, d := range ps.Plan.Diagnostics {
			if d.Severity == spec.SeverityWarning {
				if after := changedBefore(res.Steps[:i], d.Summary); after != "" {
					ps.Conditions = append(ps.Conditions, "will be checked after "+after+": "+d.Summary)
					continue
				}
			}
			kept = append(kept, d)
		}
		ps.Plan.Diagnostics = kept
	}
}

// changedBefore is the last of steps (that would or may run) whose plan
// changes a resource named in text; "" if none.
func changedBefore(steps []PlanStep, text string) string {
	for j := len(steps) - 1; j >= 0; j-- {
		s := steps[j]
		if s.Plan == nil || s.Decision == PlanSkip {
			continue
		}
		for _, c := range s.Plan.Changes {
			if c.Kind != spec.ChangeNoop && c.Resource != "" && strings.Contains(text, c.Resource) {
				return s.ID
			}
		}
	}
	return ""
}

// planScope is what a runbook's expressions read during a plan: its inputs
// (of a called runbook, those its call's `with` gives, some perhaps known
// only at run time) and the read-only steps run so far.
type planScope struct {
	// finally: the steps planned are finally steps (run at the end of the
	// run): described, never read now.
	finally bool
	inputs  map[string]any
	unknown map[string]bool // inputs known only at run time
	known   map[string]expr.StepValues
}

func (e *Engine) planEnv(sc *planScope) map[string]any {
	x := &expr.Scope{Inputs: sc.inputs, Steps: sc.known, RunID: e.runID, RunMode: "plan", RunStarted: e.started}
	return x.Map()
}

// unknown reports what, in a plan, is only known at run time: only
// read-only steps run, so what an expression reads from any other step is
// unknown, and so is an input of a called runbook bound to one.
func (sc *planScope) unknownIn(r expr.Refs) bool {
	if r.Outputs {
		return true
	}
	for _, id := range r.Steps {
		if _, ok := sc.known[id]; !ok {
			return true
		}
	}
	for _, in := range r.Inputs {
		if sc.unknown[in] {
			return true
		}
	}
	return false
}

// planSteps plans steps of the runbook of scope sc (whose path is prefix).
func (e *Engine) planSteps(ctx context.Context, sc *planScope, steps []*runbook.Step, prefix, group string, inherited PlanDecision, cond, reason string, res *PlanResult) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		path := journal.StepPath(prefix, s.ID)
		ps := PlanStep{ID: path, Name: s.Name, Group: group, Uses: s.Uses, IsGroup: s.IsGroup(), Calls: s.IsCall(), Decision: inherited, Condition: cond, SkipReason: reason}
		if s.Rollback != nil {
			ps.Rollback = s.Rollback.Uses
		}
		if inherited != PlanSkip && s.If != nil {
			switch {
			case sc.unknownIn(s.If.Refs()):
				ps.Decision, ps.Condition = PlanConditional, s.If.Source()
			default:
				ok, err := s.If.EvalBool(ctx, e.planEnv(sc))
				switch {
				case err != nil:
					ps.Err = e.red.string("if: " + err.Error())
				case !ok:
					ps.Decision, ps.Condition, ps.SkipReason = PlanSkip, s.If.Source(), "if: "+s.If.Source()+" is false"
				}
			}
		}
		if s.IsGroup() {
			res.Steps = append(res.Steps, ps)
			childReason := ps.SkipReason
			if ps.Decision == PlanSkip {
				childReason = "group " + s.ID + " is skipped"
			}
			if err := e.planSteps(ctx, sc, s.Parallel, prefix, path, ps.Decision, ps.Condition, childReason, res); err != nil {
				return err
			}
			continue
		}
		if s.IsCall() {
			inner := e.planCall(ctx, sc, s, &ps)
			res.Steps = append(res.Steps, ps)
			childReason := ps.SkipReason
			if ps.Decision == PlanSkip {
				childReason = "the call " + path + " is skipped"
			}
			if inner != nil {
				if err := e.planSteps(ctx, inner, s.Call.Runbook.Steps, path, path, ps.Decision, ps.Condition, childReason, res); err != nil {
					return err
				}
				if err := e.planFinally(ctx, inner, s.Call.Runbook, path, ps.Decision, ps.Condition, childReason, res); err != nil {
					return err
				}
			}
			continue
		}
		ps.Finally = sc.finally
		if ps.Decision != PlanSkip && ps.Err == "" {
			e.planAction(ctx, sc, s, &ps)
		}
		res.Steps = append(res.Steps, ps)
	}
	return nil
}

// planFinally plans rb's finally steps (in scope sc, whose path is prefix):
// they run at the end of the run, after any rollback, so the plan says what
// they will read without reading it now (what they read is the world the
// run leaves, not today's).
func (e *Engine) planFinally(ctx context.Context, sc *planScope, rb *runbook.Runbook, prefix string, inherited PlanDecision, cond, reason string, res *PlanResult) error {
	if len(rb.Finally) == 0 {
		return nil
	}
	sc.finally = true
	defer func() { sc.finally = false }()
	return e.planSteps(ctx, sc, rb.Finally, prefix, prefix, inherited, cond, reason, res)
}

// planCall renders the inputs a call gives the runbook it calls: the scope
// that runbook's steps are planned in (nil if they cannot be).
func (e *Engine) planCall(ctx context.Context, sc *planScope, s *runbook.Step, ps *PlanStep) *planScope {
	out, unknown, err := s.With.RenderPartial(ctx, e.planEnv(sc), sc.unknownIn)
	given, _ := out.(map[string]any)
	if err != nil {
		ps.Err = e.red.string("with: " + err.Error())
		return nil
	}
	inner := &planScope{unknown: map[string]bool{}, known: map[string]expr.StepValues{}}
	for _, p := range unknown {
		name, _, _ := strings.Cut(strings.TrimPrefix(p, "/"), "/")
		inner.unknown[name] = true
		delete(given, name)
	}
	callee := s.Call.Runbook
	inputs := map[string]any{}
	for _, in := range callee.Inputs {
		v, ok := given[in.Name]
		switch {
		case ok:
		case inner.unknown[in.Name]:
			v = nil
		case in.HasDefault:
			v = in.Default
		}
		inputs[in.Name] = v
		if in.Secret {
			e.red.addValue(v)
		}
	}
	inner.inputs = inputs
	ps.Params, ps.Unknown = e.red.mapValue(given), unknown
	return inner
}

func (e *Engine) planAction(ctx context.Context, sc *planScope, s *runbook.Step, ps *PlanStep) {
	out, unknown, err := s.With.RenderPartial(ctx, e.planEnv(sc), sc.unknownIn)
	if err != nil {
		ps.Err = e.red.string("with: " + err.Error())
		return
	}
	params := map[string]any{}
	if out != nil {
		m, ok := out.(map[string]any)
		if !ok {
			ps.Err = "with: not a mapping"
			return
		}
		params = m
	}
	if s.Spec != nil {
		e.red.addAt(s.Spec.Params, params)
	}
	ps.Params, ps.Unknown = e.red.mapValue(params), unknown
	if s.Plugin == CorePlugin {
		ps.Plan = e.planCore(s, params, unknown)
		return
	}
	if sc.finally {
		ps.Plan = &spec.Plan{Summary: "will read at the end of the run, after the steps and any rollback, whatever happened (finally): what it reads is then where things are"}
		return
	}
	if s.Spec != nil && s.Spec.ReadOnly && len(unknown) == 0 {
		e.planRead(ctx, sc, s, params, ps)
		return
	}
	if s.Spec == nil || !s.Spec.SupportsPlan {
		ps.NoPlanSupport = true
		return
	}
	// Bounded as an attempt of the step is: a region that does not answer
	// costs the plan no more than it would cost the run.
	pctx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		pctx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	defer cancel()
	p, err := e.opts.Invoker.Plan(pctx, PlanCall{Plugin: s.Plugin, Action: s.Action, RunID: e.runID, StepID: ps.ID, Params: params, Unknown: unknown})
	if err != nil {
		e.planFailed(ctx, s, ps, e.red.string(err.Error()))
		return
	}
	ps.Plan = e.redactPlan(p)
}

// planFailed records why a step could not be planned. For a step whose
// failure the run tolerates (continue_on_error: a stop of the region being
// left, which may not answer), that is expected, not a plan error: the plan
// says so, with the bound on each attempt.
func (e *Engine) planFailed(ctx context.Context, s *runbook.Step, ps *PlanStep, msg string) {
	if !s.ContinueOnError || ctx.Err() != nil {
		ps.Err = msg
		return
	}
	bound := s.Timeout.String()
	if s.Retry.Attempts > 1 {
		bound = fmt.Sprintf("%d attempts of %s", s.Retry.Attempts, s.Timeout)
	}
	ps.Tolerated = msg + ": tolerated at run time (continue_on_error; bounded by " + bound + ")"
}

func (e *Engine) redactPlan(p *spec.Plan) *spec.Plan {
	if p == nil {
		return nil
	}
	out := &spec.Plan{Summary: e.red.string(p.Summary)}
	for _, c := range p.Changes {
		c.Resource, c.Field = e.red.string(c.Resource), e.red.string(c.Field)
		c.Before, c.After = e.red.value(c.Before), e.red.value(c.After)
		out.Changes = append(out.Changes, c)
	}
	for _, d := range p.Diagnostics {
		d.Summary, d.Detail = e.red.string(d.Summary), e.red.string(d.Detail)
		out.Diagnostics = append(out.Diagnostics, d)
	}
	return out
}

// planCore describes what a built-in would do.
func (e *Engine) planCore(s *runbook.Step, params map[string]any, unknown []string) *spec.Plan {
	isUnknown := func(key string) bool {
		for _, u := range unknown {
			if u == "/"+key {
				return true
			}
		}
		return false
	}
	text := func(key string) string {
		if isUnknown(key) {
			return "(known at run time)"
		}
		v, _ := params[key].(string)
		return e.red.string(v)
	}
	p := &spec.Plan{}
	switch s.Action {
	case "approve":
		p.Summary = "would ask for approval: " + text("message")
		if isUnknown("leaving_region") {
			p.Summary += " (leaving_region known at run time: control-plane warnings then)"
		}
	case "sleep":
		p.Summary = "would wait " + text("duration")
	case "log":
		p.Summary = "would log: " + text("message")
	case "assert":
		switch that, ok := params["that"].(bool); {
		case isUnknown("that"):
			p.Summary = "would check an assertion known at run time"
		case !ok:
			p.Diagnostics = []spec.Diagnostic{spec.Errorf("/that", "not a boolean")}
		case that:
			p.Summary = "assertion holds"
		default:
			p.Summary = "assertion would fail: " + text("message")
			p.Diagnostics = []spec.Diagnostic{{Severity: spec.SeverityWarning, Summary: "assertion would fail: " + text("message"), Path: "/that"}}
		}
	default:
		p.Summary = fmt.Sprintf("unknown built-in core.%s", s.Action)
	}
	return p
}

// planRead runs a read-only action during the plan (one attempt, bounded by
// the step's timeout), so the steps after it can show what they would do
// with real values (an endpoint, a writer region) instead of "known at run
// time". It changes nothing, by the action's own declaration.
func (e *Engine) planRead(ctx context.Context, sc *planScope, s *runbook.Step, params map[string]any, ps *PlanStep) {
	actx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	defer cancel()
	if s.Spec.SupportsPlan {
		if p, err := e.opts.Invoker.Plan(actx, PlanCall{Plugin: s.Plugin, Action: s.Action, RunID: e.runID, StepID: ps.ID, Params: params}); err == nil {
			ps.Plan = e.redactPlan(p)
		}
	}
	started := time.Now()
	deadline, _ := actx.Deadline()
	out, err := e.opts.Invoker.Invoke(actx, Call{
		Plugin: s.Plugin, Action: s.Action, RunID: e.runID, StepID: ps.ID, Attempt: 1,
		IdempotencyKey: e.runID + "/" + ps.ID + "/plan", Params: params, Deadline: deadline,
	}, nil)
	if err != nil {
		e.planFailed(ctx, s, ps, e.red.string("reading (read-only action run during the plan): "+err.Error()))
		return
	}
	ps.Read = true
	ps.Outputs = e.red.mapValue(out)
	sc.known[s.ID] = expr.StepValues{Status: string(StepSucceeded), Outputs: out, StartedAt: started, FinishedAt: time.Now()}
}
