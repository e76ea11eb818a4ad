package runbook

import (
	"context"
	"time"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
)

// MaxEarlyEvalTime bounds the time validation spends evaluating the
// expressions it can evaluate (see earlyEval), and again the time input
// resolution spends on those that read only inputs: a file full of slow
// expressions cannot make either take long. What is not evaluated then is
// still bounded when the run evaluates it.
const MaxEarlyEvalTime = 5 * time.Second

// inputExpr is an expression that reads only inputs, kept so that
// ResolveInputs evaluates it with the values given.
type inputExpr struct {
	prog *expr.Program
	pos  Pos
	what string
}

// earlyEvaluator evaluates expressions before the run, each program once,
// within MaxEarlyEvalTime in all.
type earlyEvaluator struct {
	ctx  context.Context
	left time.Duration
	done map[*expr.Program]bool
}

func newEarlyEvaluator(ctx context.Context) *earlyEvaluator {
	if ctx == nil {
		ctx = context.Background()
	}
	return &earlyEvaluator{ctx: ctx, left: MaxEarlyEvalTime, done: map[*expr.Program]bool{}}
}

// eval evaluates p against env; ran is false when p was evaluated before
// or the time is spent.
func (e *earlyEvaluator) eval(p *expr.Program, env map[string]any) (ran bool, err error) {
	if e.done[p] || e.left <= 0 || e.ctx.Err() != nil {
		return false, nil
	}
	e.done[p] = true
	start, left := time.Now(), e.left
	ctx, cancel := context.WithTimeout(e.ctx, left)
	_, err = p.Eval(ctx, env)
	cancel()
	took := time.Since(start)
	e.left -= took
	if err != nil && (took >= left || e.ctx.Err() != nil) {
		// Stopped because the time for all is spent, or validation was
		// interrupted: not this expression's fault.
		return false, nil
	}
	return true, err
}

// earlyEval evaluates, at validation, an expression whose value does not
// depend on the run: one that reads nothing (it gives the same result every
// time, so any error is reported), or only inputs that all have defaults
// (evaluated with them; only a limit it hits is reported, since the values
// given may differ). An expression that reads only inputs is also kept for
// ResolveInputs. pos is where the expression is written.
func (l *loader) earlyEval(p *expr.Program, pos Pos, what string) {
	if p == nil {
		return
	}
	refs := p.Refs()
	if !refs.OnlyInputs() {
		return
	}
	env := map[string]any{}
	if !refs.Constant() {
		l.rb.inputExprs = append(l.rb.inputExprs, inputExpr{prog: p, pos: pos, what: what})
		defaults := map[string]any{}
		for _, name := range refs.Inputs {
			in := l.input(name)
			if in == nil || !in.HasDefault {
				return
			}
			defaults[name] = in.Default
		}
		env["inputs"] = defaults
	}
	if ran, err := l.early.eval(p, env); ran && err != nil && (refs.Constant() || expr.IsLimit(err)) {
		l.add(pos, Error, "%s: %v", what, err)
	}
}

// earlyEvalTemplate evaluates the expressions of a template written in
// scalar n (see earlyEval).
func (l *loader) earlyEvalTemplate(t *expr.Template, n *yaml.Node, what string) {
	for _, part := range t.Parts() {
		l.earlyEval(part.Program, l.valuePos(n, part.Offset), what)
	}
}

// checkInputExprs evaluates the expressions that read only inputs with the
// values given, before anything runs: one stopped by a limit (a value too
// large, too much work) is an error at its position, where the run would
// otherwise fail at that step or spend its time there.
func (r *resolver) checkInputExprs() {
	early := newEarlyEvaluator(nil)
	env := map[string]any{"inputs": r.values}
	for _, ie := range r.rb.inputExprs {
		if ran, err := early.eval(ie.prog, env); ran && expr.IsLimit(err) {
			r.add(ie.pos, Error, "%s: %v", ie.what, err)
		}
	}
}

// interrupted reports whether validation's context has ended, saying so
// once: validation stops where it is.
func (l *loader) interrupted() bool {
	if l.early.ctx.Err() == nil {
		return false
	}
	if !l.stopped {
		l.stopped = true
		l.add(Pos{File: l.file}, Error, "validation interrupted")
	}
	return true
}
