package runbook

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/schema"
)

// exprCtx is where an expression sits: what it may read and how to name it.
type exprCtx struct {
	// what names the place in messages: "if", "with.region", "outputs.writer".
	what string
	// self is the step the expression belongs to (nil for runbook outputs).
	self *stepNode
	// outputs: the current step's outputs are readable as `outputs` (in
	// until, and in the step's rollback).
	outputs bool
	// attempted: a rollback with `when: attempted`, which may run after its
	// step failed, without outputs.
	attempted bool
	// secret is set when an expression reads a secret input or a secret
	// output of a step.
	secret bool
	// uses is the action that receives `with` ("" elsewhere).
	uses string
}

const noOutputsWhenAttempted = "a rollback with when: attempted also runs after its step failed, when the step has no outputs: write it from inputs and earlier steps"

// stepRefs are the steps an expression reads. Compiling against only those
// (not every step before it) keeps validation linear in the runbook's size;
// whole is set when the expression uses `steps` other than as steps.<id>,
// which needs them all.
type stepRefs struct {
	ids   map[string]bool
	whole bool
}

func (r *stepRefs) add(o stepRefs) {
	if r.ids == nil {
		r.ids = map[string]bool{}
	}
	for id := range o.ids {
		r.ids[id] = true
	}
	r.whole = r.whole || o.whole
}

// compileEnv is the environment for an expression reading refs.
func (l *loader) compileEnv(refs stepRefs) expr.Env {
	if refs.whole {
		return l.env
	}
	env := l.env
	env.Steps = make(map[string]expr.Type, len(refs.ids))
	for id := range refs.ids {
		if t, ok := l.env.Steps[id]; ok {
			env.Steps[id] = t
		}
	}
	return env
}

// checkSteps compiles every expression of every step in document order.
// The environment grows as it goes: a step sees the steps before it; the
// children of a parallel group see the steps before the group, not each
// other; a rollback sees its own step too.
func (l *loader) checkSteps() {
	l.env = expr.Env{Inputs: l.inputTypes, Steps: map[string]expr.Type{}}
	for _, sn := range l.steps {
		if l.interrupted() {
			return
		}
		if sn.parent == nil {
			l.checkStep(sn)
			l.reveal(sn)
		}
	}
}

// reveal makes a step (and a group's children) visible to later steps.
func (l *loader) reveal(sn *stepNode) {
	if sn.step.ID != "" && l.byID[sn.step.ID] == sn {
		l.env.Steps[sn.step.ID] = sn.outputs
		l.visible[sn.step.ID] = true
	}
	for _, c := range sn.children {
		l.reveal(c)
	}
}

func (l *loader) hide(sn *stepNode) {
	delete(l.env.Steps, sn.step.ID)
	delete(l.visible, sn.step.ID)
}

func (l *loader) checkStep(sn *stepNode) {
	s := sn.step
	if e, ok := sn.f["if"]; ok {
		s.If = l.condition(e.V, &exprCtx{what: "if", self: sn})
	}
	if sn.isGroup() {
		for _, c := range sn.children {
			l.checkStep(c)
		}
		return
	}
	if s.Call != nil {
		l.checkCall(sn)
		return
	}
	var params *schema.Schema
	if s.Spec != nil {
		params = s.Spec.Params
	}
	s.With = l.with(sn.f, sn.f["uses"], params, &exprCtx{what: "with", self: sn, uses: s.Uses}, s.Spec != nil)
	if sn.until != nil && s.Until != nil {
		l.env.Outputs = &sn.outputs
		s.Until.Condition = l.condition(sn.until, &exprCtx{what: "until", self: sn, outputs: true})
		l.env.Outputs = nil
	}
	if rn := sn.rb; rn != nil {
		// The rollback runs after its step succeeded: it sees the step, and
		// the step's outputs as `outputs` too.
		revealed := s.ID != "" && l.byID[s.ID] == sn
		if revealed {
			l.env.Steps[s.ID] = sn.outputs
			l.visible[s.ID] = true
		}
		attempted := rn.rb.Attempted
		if !attempted {
			l.env.Outputs = &sn.outputs
		}
		var params *schema.Schema
		if rn.rb.Spec != nil {
			params = rn.rb.Spec.Params
		}
		rn.rb.With = l.with(rn.f, entry{K: rn.key, V: rn.uses}, params, &exprCtx{what: "rollback.with", self: sn, outputs: !attempted, attempted: attempted, uses: rn.rb.Uses}, rn.rb.Spec != nil)
		l.env.Outputs = nil
		if revealed {
			l.hide(sn)
		}
	}
}

// condition compiles a boolean expression: `if`, `until`. It is written
// bare (inputs.mode == "planned"); an exact ${{ }} around it is accepted.
func (l *loader) condition(n *yaml.Node, ctx *exprCtx) *expr.Program {
	n = deref(n)
	if n.Kind != yaml.ScalarNode {
		l.errorf(n, "%s must be an expression, such as inputs.mode == \"planned\", not %s", ctx.what, describeNode(n))
		return nil
	}
	src, start := n.Value, 0
	switch n.ShortTag() {
	case "!!bool":
		var b bool
		_ = n.Decode(&b)
		src = strconv.FormatBool(b)
	case "!!str":
		if expr.HasTemplate(src) {
			segs, err := expr.ParseTemplate(src)
			if err != nil {
				var te *expr.TemplateError
				errors.As(err, &te)
				l.add(l.valuePos(n, te.Offset), Error, "%s: %s", ctx.what, te.Msg)
				return nil
			}
			if len(segs) != 1 || !segs[0].IsExpr {
				l.errorf(n, "%s is an expression: write it without ${{ }}, such as %s: inputs.mode == \"planned\"", ctx.what, ctx.what)
				return nil
			}
			src, start = segs[0].Expr, segs[0].Offset
		}
	default:
		l.errorf(n, "%s must be a boolean expression, not %s", ctx.what, describeNode(n))
		return nil
	}
	if strings.TrimSpace(src) == "" {
		l.errorf(n, "%s is empty", ctx.what)
		return nil
	}
	refs, ok := l.checkRefs(src, n, start, ctx)
	if !ok {
		return nil
	}
	p, err := expr.Compile(src, l.compileEnv(refs), expr.Bool)
	if err != nil {
		l.exprError(n, start, src, err, ctx)
		return nil
	}
	l.earlyEval(p, l.valuePos(n, start), ctx.what)
	return p
}

// exprError reports a compile error of src, found at byte offset start of
// scalar n's value.
func (l *loader) exprError(n *yaml.Node, start int, src string, err error, ctx *exprCtx) {
	var ee *expr.Error
	if !errors.As(err, &ee) {
		l.errorf(n, "%s: %v", ctx.what, err)
		return
	}
	off := lineColOffset(src, ee.Line, ee.Col)
	l.add(l.valuePos(n, start+off), Error, "%s: %s", ctx.what, ee.Msg)
}

// lineColOffset converts a 1-based line and column (in characters) inside
// src to a byte offset.
func lineColOffset(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		i := strings.IndexByte(src[off:], '\n')
		if i < 0 {
			break
		}
		off += i + 1
	}
	for c := 1; c < col && off < len(src) && src[off] != '\n'; c++ {
		_, size := utf8.DecodeRuneInString(src[off:])
		off += size
	}
	return off
}

// checkRefs checks what an expression reads, with messages that say more
// than the compiler can: unknown inputs and steps with suggestions, steps
// that have not run yet at this point, output names a step does not
// declare, `outputs` where there is none. It reports false if it found a
// problem (the compile would only repeat it less clearly), and the steps
// the expression reads.
func (l *loader) checkRefs(src string, n *yaml.Node, start int, ctx *exprCtx) (stepRefs, bool) {
	refs := stepRefs{ids: map[string]bool{}}
	a, err := expr.Analyze(src)
	if err != nil {
		return refs, true // the compiler reports syntax errors with their position
	}
	ok := true
	stepsIdents, stepsMembers := 0, 0
	report := func(at expr.Name, format string, args ...any) {
		l.add(l.valuePos(n, start+at.Offset), Error, "%s: %s", ctx.what, fmt.Sprintf(format, args...))
		ok = false
	}
	var wholeOutputs []expr.Chain
	for _, c := range a.Chains {
		props := c.Keys
		if len(props) == 0 {
			if c.Root.Name == "steps" {
				stepsIdents++
			}
			if c.Root.Name == "outputs" && ctx.attempted {
				report(c.Root, noOutputsWhenAttempted)
			} else if c.Root.Name == "outputs" && !ctx.outputs {
				report(c.Root, "outputs (the current step's outputs) can only be read in until and in a rollback; use steps.<id>.outputs.<name>")
			}
			continue
		}
		switch c.Root.Name {
		case "inputs":
			if len(props) == 1 {
				l.checkInputRef(props[0], ctx, report)
			}
		case "steps":
			switch len(props) {
			case 1:
				stepsMembers++
				refs.ids[props[0].Name] = true
				l.checkStepRef(props[0], ctx, report)
			case 2:
				id, p := props[0].Name, props[1]
				if p.Name == "outputs" && ctx.attempted && ctx.self != nil && id == ctx.self.step.ID {
					report(p, noOutputsWhenAttempted)
				} else if p.Name == "outputs" {
					wholeOutputs = append(wholeOutputs, c)
				} else if !contains([]string{"status", "started_at", "finished_at", "rolled_back"}, p.Name) && l.visible[id] {
					report(p, "steps.%s.%s does not exist: a step has outputs, status, started_at, finished_at and rolled_back", id, p.Name)
				}
			case 3:
				id, field := props[0].Name, props[1].Name
				if field == "outputs" && ctx.attempted && ctx.self != nil && id == ctx.self.step.ID {
					// reported at steps.<id>.outputs
				} else if field == "outputs" && l.visible[id] {
					l.checkOutputRef(l.byID[id], "steps."+id+".outputs", props[2], ctx, report)
				}
			}
		case "outputs":
			if len(props) == 1 && ctx.outputs && ctx.self != nil {
				l.checkOutputRef(ctx.self, "outputs", props[0], ctx, report)
			}
		}
	}
	// steps.<id>.outputs read whole, not one output of it, carries every
	// secret output of the step.
	for _, c := range wholeOutputs {
		if sn := l.byID[c.Keys[0].Name]; !c.Extended && sn != nil && sn.outSchema != nil && len(sn.outSchema.SecretPaths()) > 0 {
			ctx.secret = true
		}
	}
	refs.whole = stepsIdents > stepsMembers
	if ok {
		l.recordInputPaths(a.Refs, n, start, ctx)
	}
	return refs, ok
}

type reportFunc func(at expr.Name, format string, args ...any)

func (l *loader) checkInputRef(prop expr.Name, ctx *exprCtx, report reportFunc) {
	name := prop.Name
	in := l.input(name)
	if in == nil {
		if sug := l.suggest(name, l.inputNames()); sug != "" {
			report(prop, "unknown input %q (did you mean %q?)", shownName(name), sug)
		} else {
			report(prop, "unknown input %q: declare it under inputs:", shownName(name))
		}
		return
	}
	if in.Secret {
		ctx.secret = true
	}
}

func (l *loader) checkStepRef(prop expr.Name, ctx *exprCtx, report reportFunc) {
	id := prop.Name
	if l.visible[id] {
		return
	}
	target := l.byID[id]
	if target == nil {
		if sug := l.suggest(id, l.stepIDs()); sug != "" {
			report(prop, "unknown step %q (did you mean %q?)", shownName(id), sug)
		} else {
			report(prop, "unknown step %q", shownName(id))
		}
		return
	}
	self := ctx.self
	switch {
	case self == nil:
		report(prop, "steps.%s is not available here", id)
	case target == self && ctx.what == "until":
		report(prop, "steps.%s is this step: in until, read its outputs as outputs.<name>", id)
	case target == self:
		report(prop, "steps.%s is this step: its outputs and status are not known before it runs", id)
	case isAncestor(target, self):
		report(prop, "steps.%s is the parallel group this step belongs to: it finishes after this step", id)
	case isAncestor(self, target):
		report(prop, "steps.%s is inside this group: it runs after the group's if is evaluated", id)
	default:
		if g := commonGroup(self, target); g != nil {
			report(prop, "steps.%s runs in parallel with this step (both are in group %s): it may not have finished", id, g.step.ID)
			return
		}
		report(prop, "steps.%s runs after this step", id)
	}
}

func isAncestor(a, b *stepNode) bool {
	for p := b.parent; p != nil; p = p.parent {
		if p == a {
			return true
		}
	}
	return false
}

func commonGroup(a, b *stepNode) *stepNode {
	for p := a.parent; p != nil; p = p.parent {
		if isAncestor(p, b) {
			return p
		}
	}
	return nil
}

// checkOutputRef checks <owner>.<name> against the step's declared outputs.
func (l *loader) checkOutputRef(sn *stepNode, owner string, prop expr.Name, ctx *exprCtx, report reportFunc) {
	if sn == nil {
		return
	}
	if sn.isGroup() {
		report(prop, "%s: step %s is a parallel group; it has no outputs", owner, sn.step.ID)
		return
	}
	s := sn.outSchema
	if s == nil || s.Type != schema.Object {
		return
	}
	p, ok := s.Property(prop.Name)
	if !ok {
		names := s.PropertyNames()
		msg := fmt.Sprintf("%s has no %q: %s does not declare that output", owner, shownName(prop.Name), sn.step.Uses)
		if sug := l.suggest(prop.Name, names); sug != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", sug)
		} else if len(names) == 0 {
			msg += " (it has no outputs)"
		} else if len(names) <= 12 {
			msg += " (it has " + strings.Join(names, ", ") + ")"
		}
		report(prop, "%s", msg)
		return
	}
	if p != nil && len(p.SecretPaths()) > 0 {
		ctx.secret = true
	}
}

// template compiles a string that may hold ${{ }}.
func (l *loader) template(n *yaml.Node, ctx *exprCtx) (*expr.Template, bool) {
	segs, err := expr.ParseTemplate(n.Value)
	if err != nil {
		var te *expr.TemplateError
		errors.As(err, &te)
		msg := te.Msg
		if strings.HasPrefix(msg, "unterminated") {
			msg = "unterminated ${{: missing }} (write $${{ for a literal ${{)"
		}
		l.add(l.valuePos(n, te.Offset), Error, "%s: %s", ctx.what, msg)
		return nil, false
	}
	ok := true
	var refs stepRefs
	for _, seg := range segs {
		if !seg.IsExpr {
			continue
		}
		r, sok := l.checkRefs(seg.Expr, n, seg.Offset, ctx)
		ok = ok && sok
		refs.add(r)
	}
	if !ok {
		return nil, false
	}
	t, errs := expr.CompileTemplate(n.Value, l.compileEnv(refs))
	for _, e := range errs {
		l.add(l.valuePos(n, e.Offset), Error, "%s: %s", ctx.what, e.Msg)
	}
	if len(errs) > 0 {
		return nil, false
	}
	l.earlyEvalTemplate(t, n, ctx.what)
	return t, true
}

// conflicts reports whether a value of Go type t can never match s's type.
func conflicts(s *schema.Schema, t reflect.Type) bool {
	if s == nil || s.Type == "" || t == nil {
		return false
	}
	switch t.Kind() {
	case reflect.String:
		return s.Type != schema.String
	case reflect.Bool:
		return s.Type != schema.Boolean
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64,
		reflect.Float32, reflect.Float64:
		return s.Type != schema.Number && s.Type != schema.Integer
	case reflect.Slice, reflect.Array:
		return s.Type != schema.Array
	case reflect.Map, reflect.Struct:
		return s.Type != schema.Object
	}
	return false
}

func describeType(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Slice, reflect.Array:
		return "a list"
	case reflect.Map, reflect.Struct:
		return "a mapping"
	}
	return "a number"
}
