package runbook

import (
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/parser"
	"github.com/expr-lang/expr/types"
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
	// env is the environment the last template was compiled against.
	env types.Map
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
func (l *loader) compileEnv(refs stepRefs) types.Map {
	if refs.whole {
		return l.env
	}
	env := make(types.Map, len(l.env))
	for k, v := range l.env {
		env[k] = v
	}
	all := l.stepsEnv()
	steps := make(types.Map, len(refs.ids))
	for id := range refs.ids {
		if t, ok := all[id]; ok {
			steps[id] = t
		}
	}
	env["steps"] = steps
	return env
}

// stepEntry is the expression type of steps.<id> for a step whose outputs
// have type t, shaped exactly as expr.Env builds it.
func stepEntry(t types.Type) types.Type {
	return expr.Env{Steps: map[string]types.Type{"s": t}}.Map()["steps"].(types.Map)["s"]
}

// checkSteps compiles every expression of every step in document order.
// The environment grows as it goes: a step sees the steps before it; the
// children of a parallel group see the steps before the group, not each
// other; a rollback sees its own step too.
func (l *loader) checkSteps() {
	l.env = expr.Env{Inputs: l.inputTypes, Steps: map[string]types.Type{}}.Map()
	for _, sn := range l.steps {
		if sn.parent == nil {
			l.checkStep(sn)
			l.reveal(sn)
		}
	}
}

func (l *loader) stepsEnv() types.Map { return l.env["steps"].(types.Map) }

// reveal makes a step (and a group's children) visible to later steps.
func (l *loader) reveal(sn *stepNode) {
	if sn.step.ID != "" && l.byID[sn.step.ID] == sn {
		l.stepsEnv()[sn.step.ID] = stepEntry(sn.outputs)
		l.visible[sn.step.ID] = true
	}
	for _, c := range sn.children {
		l.reveal(c)
	}
}

func (l *loader) hide(sn *stepNode) {
	delete(l.stepsEnv(), sn.step.ID)
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
	var params *schema.Schema
	if s.Spec != nil {
		params = s.Spec.Params
	}
	s.With = l.with(sn.f, sn.f["uses"], params, &exprCtx{what: "with", self: sn, uses: s.Uses}, s.Spec != nil)
	if sn.until != nil && s.Until != nil {
		l.env["outputs"] = sn.outputs
		s.Until.Condition = l.condition(sn.until, &exprCtx{what: "until", self: sn, outputs: true})
		delete(l.env, "outputs")
	}
	if rn := sn.rb; rn != nil {
		// The rollback runs after its step succeeded: it sees the step, and
		// the step's outputs as `outputs` too.
		revealed := s.ID != "" && l.byID[s.ID] == sn
		if revealed {
			l.stepsEnv()[s.ID] = stepEntry(sn.outputs)
			l.visible[s.ID] = true
		}
		attempted := rn.rb.Attempted
		if !attempted {
			l.env["outputs"] = sn.outputs
		}
		var params *schema.Schema
		if rn.rb.Spec != nil {
			params = rn.rb.Spec.Params
		}
		rn.rb.With = l.with(rn.f, entry{K: rn.key, V: rn.uses}, params, &exprCtx{what: "rollback.with", self: sn, outputs: !attempted, attempted: attempted, uses: rn.rb.Uses}, rn.rb.Spec != nil)
		delete(l.env, "outputs")
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
	l.add(l.valuePos(n, start+off), Error, "%s: %s", ctx.what, exprMessage(ee.Msg))
}

func exprMessage(msg string) string {
	if t, ok := strings.CutPrefix(msg, "expected bool, but got "); ok {
		return "must be a boolean expression (true or false); this one gives " + goTypeName(t)
	}
	return msg
}

// goTypeName names a Go type as expr-lang prints it in the runbook's terms.
func goTypeName(t string) string {
	switch {
	case t == "string":
		return "a string"
	case strings.HasPrefix(t, "int"), strings.HasPrefix(t, "uint"), strings.HasPrefix(t, "float"):
		return "a number"
	case strings.HasPrefix(t, "map["):
		return "a mapping"
	case strings.HasPrefix(t, "[]"):
		return "a list"
	case t == "<nil>" || t == "nil":
		return "nil"
	}
	return "a value of type " + t
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

// runeOffset converts a character offset in src to a byte offset.
func runeOffset(src string, runes int) int {
	off := 0
	for i := 0; i < runes && off < len(src); i++ {
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
	tree, err := parser.Parse(src)
	if err != nil {
		return refs, true // the compiler reports syntax errors with their position
	}
	ok := true
	stepsIdents, stepsMembers := 0, 0
	report := func(node ast.Node, format string, args ...any) {
		off := runeOffset(src, node.Location().From)
		l.add(l.valuePos(n, start+off), Error, "%s: %s", ctx.what, fmt.Sprintf(format, args...))
		ok = false
	}
	extended := map[ast.Node]bool{}
	var wholeOutputs []*ast.MemberNode
	ast.Find(tree.Node, func(node ast.Node) bool {
		switch x := node.(type) {
		case *ast.IdentifierNode:
			if x.Value == "steps" {
				stepsIdents++
			}
			if x.Value == "outputs" && ctx.attempted {
				report(x, noOutputsWhenAttempted)
			} else if x.Value == "outputs" && !ctx.outputs {
				report(x, "outputs (the current step's outputs) can only be read in until and in a rollback; use steps.<id>.outputs.<name>")
			}
		case *ast.MemberNode:
			base, props := chain(x)
			if base == nil {
				return false
			}
			switch base.Value {
			case "inputs":
				if len(props) == 1 {
					l.checkInputRef(props[0], ctx, report)
				}
			case "steps":
				switch len(props) {
				case 1:
					stepsMembers++
					refs.ids[props[0].(*ast.StringNode).Value] = true
					l.checkStepRef(props[0], ctx, report)
				case 2:
					if p := props[1].(*ast.StringNode); p.Value == "outputs" && ctx.attempted && ctx.self != nil && props[0].(*ast.StringNode).Value == ctx.self.step.ID {
						report(p, noOutputsWhenAttempted)
					} else if p.Value == "outputs" {
						wholeOutputs = append(wholeOutputs, x)
					} else if !contains([]string{"status", "started_at", "finished_at"}, p.Value) && l.visible[props[0].(*ast.StringNode).Value] {
						report(p, "steps.%s.%s does not exist: a step has outputs, status, started_at and finished_at", props[0].(*ast.StringNode).Value, p.Value)
					}
				case 3:
					id, field := props[0].(*ast.StringNode).Value, props[1].(*ast.StringNode).Value
					if field == "outputs" && ctx.attempted && ctx.self != nil && id == ctx.self.step.ID {
						// reported at steps.<id>.outputs
					} else if field == "outputs" && l.visible[id] {
						extended[x.Node] = true
						l.checkOutputRef(l.byID[id], "steps."+id+".outputs", props[2].(*ast.StringNode), ctx, report)
					}
				}
			case "outputs":
				if len(props) == 1 && ctx.outputs && ctx.self != nil {
					l.checkOutputRef(ctx.self, "outputs", props[0].(*ast.StringNode), ctx, report)
				}
			}
		}
		return false
	})
	for _, m := range wholeOutputs {
		id := m.Node.(*ast.MemberNode).Property.(*ast.StringNode).Value
		if sn := l.byID[id]; !extended[m] && sn != nil && sn.outSchema != nil && len(sn.outSchema.SecretPaths()) > 0 {
			ctx.secret = true
		}
	}
	refs.whole = stepsIdents > stepsMembers
	if ok {
		l.recordInputPaths(src, n, start, ctx)
	}
	return refs, ok
}

// chain flattens a member chain a.b.c into its identifier and the string
// properties after it (nil if the chain does not start with an identifier).
func chain(m *ast.MemberNode) (*ast.IdentifierNode, []ast.Node) {
	var props []ast.Node
	var n ast.Node = m
	for {
		switch x := n.(type) {
		case *ast.MemberNode:
			if _, ok := x.Property.(*ast.StringNode); !ok {
				return nil, nil
			}
			props = append(props, x.Property)
			n = x.Node
			continue
		case *ast.IdentifierNode:
			for i, j := 0, len(props)-1; i < j; i, j = i+1, j-1 {
				props[i], props[j] = props[j], props[i]
			}
			return x, props
		}
		return nil, nil
	}
}

type reportFunc func(node ast.Node, format string, args ...any)

func (l *loader) checkInputRef(prop ast.Node, ctx *exprCtx, report reportFunc) {
	name := prop.(*ast.StringNode).Value
	in := l.rb.Input(name)
	if in == nil {
		names := make([]string, len(l.rb.Inputs))
		for i, in := range l.rb.Inputs {
			names[i] = in.Name
		}
		if sug := schema.Suggest(name, names); sug != "" {
			report(prop, "unknown input %q (did you mean %q?)", name, sug)
		} else {
			report(prop, "unknown input %q: declare it under inputs:", name)
		}
		return
	}
	if in.Secret {
		ctx.secret = true
	}
}

func (l *loader) checkStepRef(prop ast.Node, ctx *exprCtx, report reportFunc) {
	id := prop.(*ast.StringNode).Value
	if l.visible[id] {
		return
	}
	target := l.byID[id]
	if target == nil {
		if sug := schema.Suggest(id, sortedKeys(l.byID)); sug != "" {
			report(prop, "unknown step %q (did you mean %q?)", id, sug)
		} else {
			report(prop, "unknown step %q", id)
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
func (l *loader) checkOutputRef(sn *stepNode, owner string, prop *ast.StringNode, ctx *exprCtx, report reportFunc) {
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
	p, ok := s.Property(prop.Value)
	if !ok {
		names := s.PropertyNames()
		msg := fmt.Sprintf("%s has no %q: %s does not declare that output", owner, prop.Value, sn.step.Uses)
		if sug := schema.Suggest(prop.Value, names); sug != "" {
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
	ctx.env = l.compileEnv(refs)
	t, errs := expr.CompileTemplate(n.Value, ctx.env)
	for _, e := range errs {
		l.add(l.valuePos(n, e.Offset), Error, "%s: %s", ctx.what, exprMessage(e.Msg))
	}
	return t, len(errs) == 0
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
