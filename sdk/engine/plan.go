package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/sdk/expr"
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
	// Uses is the action; empty for a group.
	Uses     string       `json:"uses,omitempty"`
	IsGroup  bool         `json:"is_group,omitempty"`
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
	e.inputs = inputs
	e.runID = e.opts.RunID
	if e.runID == "" {
		e.runID = NewRunID(time.Now())
	}
	e.started = time.Now().UTC()
	e.planKnown = map[string]expr.StepValues{}
	res := &PlanResult{RunID: e.runID}
	if err := e.planSteps(ctx, e.rb.Steps, "", PlanRun, "", "", res); err != nil {
		return nil, err
	}
	return res, nil
}

func (e *Engine) planScope() map[string]any {
	sc := &expr.Scope{Inputs: e.inputs, Steps: e.planKnown, RunID: e.runID, RunMode: "plan", RunStarted: e.started}
	return sc.Map()
}

// unknownInPlan: in a plan only read-only steps run, so what an expression
// reads from any other step is unknown.
func (e *Engine) unknownInPlan(r expr.Refs) bool {
	if r.Outputs {
		return true
	}
	for _, id := range r.Steps {
		if _, ok := e.planKnown[id]; !ok {
			return true
		}
	}
	return false
}

func (e *Engine) planSteps(ctx context.Context, steps []*runbook.Step, group string, inherited PlanDecision, cond, reason string, res *PlanResult) error {
	for _, s := range steps {
		if err := ctx.Err(); err != nil {
			return err
		}
		ps := PlanStep{ID: s.ID, Name: s.Name, Group: group, Uses: s.Uses, IsGroup: s.IsGroup(), Decision: inherited, Condition: cond, SkipReason: reason}
		if s.Rollback != nil {
			ps.Rollback = s.Rollback.Uses
		}
		if inherited != PlanSkip && s.If != nil {
			switch {
			case e.unknownInPlan(s.If.Refs()):
				ps.Decision, ps.Condition = PlanConditional, s.If.Source()
			default:
				ok, err := s.If.EvalBool(e.planScope())
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
			if err := e.planSteps(ctx, s.Parallel, s.ID, ps.Decision, ps.Condition, childReason, res); err != nil {
				return err
			}
			continue
		}
		if ps.Decision != PlanSkip && ps.Err == "" {
			e.planAction(ctx, s, &ps)
		}
		res.Steps = append(res.Steps, ps)
	}
	return nil
}

func (e *Engine) planAction(ctx context.Context, s *runbook.Step, ps *PlanStep) {
	out, unknown, err := s.With.RenderPartial(e.planScope(), e.unknownInPlan)
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
	if s.Spec != nil && s.Spec.ReadOnly && len(unknown) == 0 {
		e.planRead(ctx, s, params, ps)
		return
	}
	if s.Spec == nil || !s.Spec.SupportsPlan {
		ps.NoPlanSupport = true
		return
	}
	p, err := e.opts.Invoker.Plan(ctx, PlanCall{Plugin: s.Plugin, Action: s.Action, RunID: e.runID, StepID: s.ID, Params: params, Unknown: unknown})
	if err != nil {
		ps.Err = e.red.string(err.Error())
		return
	}
	ps.Plan = e.redactPlan(p)
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
func (e *Engine) planRead(ctx context.Context, s *runbook.Step, params map[string]any, ps *PlanStep) {
	if s.Spec.SupportsPlan {
		if p, err := e.opts.Invoker.Plan(ctx, PlanCall{Plugin: s.Plugin, Action: s.Action, RunID: e.runID, StepID: s.ID, Params: params}); err == nil {
			ps.Plan = e.redactPlan(p)
		}
	}
	actx, cancel := ctx, context.CancelFunc(func() {})
	if s.Timeout > 0 {
		actx, cancel = context.WithTimeout(ctx, s.Timeout)
	}
	defer cancel()
	started := time.Now()
	deadline, _ := actx.Deadline()
	out, err := e.opts.Invoker.Invoke(actx, Call{
		Plugin: s.Plugin, Action: s.Action, RunID: e.runID, StepID: s.ID, Attempt: 1,
		IdempotencyKey: e.runID + "/" + s.ID + "/plan", Params: params, Deadline: deadline,
	}, nil)
	if err != nil {
		ps.Err = e.red.string("reading (read-only action run during the plan): " + err.Error())
		return
	}
	ps.Read = true
	ps.Outputs = e.red.mapValue(out)
	e.planKnown[s.ID] = expr.StepValues{Status: string(StepSucceeded), Outputs: out, StartedAt: started, FinishedAt: time.Now()}
}
