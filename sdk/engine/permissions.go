package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// ActionCall is an action a run with the given inputs may call: a step's,
// or a step's rollback. `runbook permissions` builds the policies a run
// needs from these.
type ActionCall struct {
	Step string `json:"step"`
	Uses string `json:"uses"`
	// Rollback: the call is the step's rollback.
	Rollback bool `json:"rollback,omitempty"`
	// Condition is the `if` (the step's or its group's) that the inputs do
	// not decide: the step is included, since it may run.
	Condition string `json:"condition,omitempty"`
	// Params are the rendered `with`; values that depend on steps (known
	// only at run time) are null and listed in Unknown as JSON pointers.
	Params  map[string]any `json:"-"`
	Unknown []string       `json:"-"`
	// Spec is the action's description (nil for a built-in).
	Spec *spec.ActionSpec `json:"-"`
}

// ActionCalls lists, in document order, the actions a run with the
// engine's inputs may call, without calling anything: each step whose `if`
// (or whose group's or call's) is not false with the inputs alone (an `if`
// that reads steps is undecided, and the step included), and its rollback.
// The steps of called runbooks are listed by path, their inputs rendered
// from the call's `with` as a plan renders them.
func (e *Engine) ActionCalls() ([]ActionCall, error) {
	if !e.used.CompareAndSwap(false, true) {
		return nil, errors.New("engine: an Engine runs once; create another")
	}
	inputs, err := e.resolveInputs(e.opts.Inputs)
	if err != nil {
		return nil, err
	}
	e.setInputs(inputs)
	e.runID, e.started = "permissions", time.Now().UTC()
	top := &planScope{inputs: inputs, known: map[string]expr.StepValues{}}
	var out []ActionCall
	err = e.callsOf(top, e.rb.AllSteps(), "", "", &out)
	return out, err
}

func (e *Engine) callsOf(sc *planScope, steps []*runbook.Step, prefix, cond string, out *[]ActionCall) error {
	for _, s := range steps {
		path := journal.StepPath(prefix, s.ID)
		c := cond
		if s.If != nil {
			if sc.unknownIn(s.If.Refs()) {
				c = s.If.Source()
			} else {
				ok, err := s.If.EvalBool(context.Background(), e.planEnv(sc))
				if err != nil {
					return fmt.Errorf("step %s: if: %s", path, e.red.string(err.Error()))
				}
				if !ok {
					continue
				}
			}
		}
		switch {
		case s.IsGroup():
			if err := e.callsOf(sc, s.Parallel, prefix, c, out); err != nil {
				return err
			}
			continue
		case s.IsCall():
			var ps PlanStep
			inner := e.planCall(context.Background(), sc, s, &ps)
			if inner == nil {
				return fmt.Errorf("step %s: %s", path, ps.Err)
			}
			if err := e.callsOf(inner, s.Call.Runbook.AllSteps(), path, c, out); err != nil {
				return err
			}
			continue
		}
		call, err := e.actionCall(sc, path, s.Uses, s.Spec, s.With, c)
		if err != nil {
			return err
		}
		*out = append(*out, call)
		if rb := s.Rollback; rb != nil {
			call, err := e.actionCall(sc, path, rb.Uses, rb.Spec, rb.With, c)
			if err != nil {
				return err
			}
			call.Rollback = true
			*out = append(*out, call)
		}
	}
	return nil
}

func (e *Engine) actionCall(sc *planScope, step, uses string, sp *spec.ActionSpec, with *expr.Value, cond string) (ActionCall, error) {
	out, unknown, err := with.RenderPartial(context.Background(), e.planEnv(sc), sc.unknownIn)
	if err != nil {
		return ActionCall{}, fmt.Errorf("step %s: with: %s", step, e.red.string(err.Error()))
	}
	params, _ := out.(map[string]any)
	if params == nil {
		params = map[string]any{}
	}
	return ActionCall{Step: step, Uses: uses, Condition: cond, Params: params, Unknown: unknown, Spec: sp}, nil
}
