package runbook

import (
	"context"
	"strconv"
	"strings"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/schema"
)

// valueCheck collects, while a value tree is built, what schema validation
// needs: the value as far as it is known at validation, the JSON pointers
// only known at run time, and the YAML nodes behind each pointer so that
// problems are reported at the exact key or value.
type valueCheck struct {
	unknown map[string]bool
	vals    map[string]*yaml.Node
	keys    map[string]*yaml.Node
}

// with builds a step's (or rollback's) `with` and checks it against the
// action's parameter schema. at is the entry problems with the whole of
// `with` are reported at when there is no `with`: the step's uses.
func (l *loader) with(f map[string]entry, at entry, params *schema.Schema, ctx *exprCtx, check bool) *expr.Value {
	e, has := f["with"]
	wc := &valueCheck{unknown: map[string]bool{}, vals: map[string]*yaml.Node{}, keys: map[string]*yaml.Node{}}
	var v *expr.Value
	var static any = map[string]any{}
	if has {
		if n := deref(e.V); n.Kind != yaml.MappingNode && !isNull(n) {
			l.errorf(e.V, "%s must be a mapping of parameters, not %s", ctx.what, describeNode(e.V))
			return nil
		}
		wc.keys[""], wc.vals[""] = e.K, e.V
		// Values that did not decode or compile are unknown to the schema
		// check, so the rest of `with` is still checked without cascades.
		v, static, _ = l.value(e.V, ctx, params, "", wc)
		if static == nil {
			static = map[string]any{}
		}
	} else {
		wc.keys[""], wc.vals[""] = at.V, at.V
	}
	if !check || params == nil {
		return v
	}
	for _, p := range schema.Validate(params, static, wc.unknown) {
		path, node := p.Path, wc.vals[p.Path]
		switch {
		case p.Property != "":
			path = parentPointer(p.Path)
			node = wc.keys[p.Path]
			if names := schemaAt(params, path).PropertyNames(); !strings.Contains(p.Message, "did you mean") && len(names) > 0 && len(names) <= 12 {
				p.Message += " (valid: " + strings.Join(names, ", ") + ")"
			}
		case strings.HasPrefix(p.Message, "missing required"):
			node = wc.keys[p.Path]
		}
		if node == nil {
			node = wc.vals[""]
		}
		l.errorf(node, "%s: %s", displayPath(ctx.what, path), p.Message)
	}
	l.warnSecretLiterals(params, static, wc, ctx)
	return v
}

// warnSecretLiterals warns about a secret parameter written in the runbook
// itself instead of coming from a secret input.
func (l *loader) warnSecretLiterals(params *schema.Schema, static any, wc *valueCheck, ctx *exprCtx) {
	m, _ := static.(map[string]any)
	for _, name := range params.PropertyNames() {
		ptr := "/" + schema.EscapePointer(name)
		if s, ok := m[name].(string); ok && s != "" && params.Properties[name].WriteOnly && !wc.unknown[ptr] {
			if n := wc.vals[ptr]; n != nil {
				l.warnf(n, "%s is secret: pass it in a secret input (inputs: { x: { type: string, secret: true } }) rather than writing it in the runbook", displayPath(ctx.what, ptr))
			}
		}
	}
}

// value converts a node to an expression value tree, compiling templates
// against the current environment. With wc set, it also returns the value
// as known at validation for schema checks against sch. ok is false when a
// template did not compile (already reported).
func (l *loader) value(n *yaml.Node, ctx *exprCtx, sch *schema.Schema, ptr string, wc *valueCheck) (*expr.Value, any, bool) {
	n = deref(n)
	if wc != nil {
		wc.vals[ptr] = n
	}
	switch n.Kind {
	case yaml.MappingNode:
		es, ok := l.mapping(n, displayPath(ctx.what, ptr))
		keys := make([]string, 0, len(es))
		fields := make([]*expr.Value, 0, len(es))
		static := make(map[string]any, len(es))
		for _, e := range es {
			if expr.HasTemplate(e.Key) {
				l.errorf(e.K, "%s: keys cannot use ${{ }}", displayPath(ctx.what, ptr))
				ok = false
				continue
			}
			p := ptr + "/" + schema.EscapePointer(e.Key)
			if wc != nil {
				wc.keys[p] = e.K
			}
			var sub *schema.Schema
			if sch != nil {
				sub, _ = sch.Property(e.Key)
			}
			v, s, vok := l.value(e.V, ctx, sub, p, wc)
			ok = ok && vok
			keys = append(keys, e.Key)
			fields = append(fields, v)
			static[e.Key] = s
		}
		return expr.Mapping(keys, fields), static, ok
	case yaml.SequenceNode:
		items := make([]*expr.Value, 0, len(n.Content))
		static := make([]any, 0, len(n.Content))
		ok := true
		for i, c := range n.Content {
			p := ptr + "/" + strconv.Itoa(i)
			if wc != nil {
				wc.keys[p] = c
			}
			var sub *schema.Schema
			if sch != nil {
				sub = sch.Items
			}
			v, s, vok := l.value(c, ctx, sub, p, wc)
			ok = ok && vok
			items = append(items, v)
			static = append(static, s)
		}
		return expr.List(items), static, ok
	case yaml.ScalarNode:
		if n.ShortTag() == "!!str" && expr.HasTemplate(n.Value) {
			return l.templateValue(n, ctx, sch, ptr, wc)
		}
		v, ok := l.scalar(n, displayPath(ctx.what, ptr))
		if !ok && wc != nil {
			wc.unknown[ptr] = true
		}
		return expr.Static(v), v, ok
	}
	l.errorf(n, "%s: unexpected %s", displayPath(ctx.what, ptr), describeNode(n))
	return nil, nil, false
}

func (l *loader) templateValue(n *yaml.Node, ctx *exprCtx, sch *schema.Schema, ptr string, wc *valueCheck) (*expr.Value, any, bool) {
	what := ctx.what
	ctx.what = displayPath(what, ptr)
	defer func() { ctx.what = what }()
	before := len(l.rb.InputPaths)
	t, ok := l.template(n, ctx)
	if ok && ctx.uses != "" {
		if _, exact := t.Exact(); exact {
			// ${{ inputs.x.y }} alone: the parameter receives the value
			// as it is, so its schema applies to it.
			l.paramPaths(l.rb.InputPaths[before:], sch, ctx.uses)
		}
	}
	if !ok {
		if wc != nil {
			wc.unknown[ptr] = true
		}
		return nil, nil, false
	}
	if t.IsLiteral() {
		// Only $${{ escapes: a plain string.
		s, _ := t.Render(context.Background(), nil)
		return expr.FromTemplate(t), s, true
	}
	if wc != nil {
		switch p, exact := t.Exact(); {
		case exact:
			// A value that is exactly ${{ e }} keeps e's type: when that is
			// known now and can never match the parameter, say so now.
			if typ := p.Type(); conflicts(sch, typ) {
				l.add(l.valuePos(n, strings.Index(n.Value, "${{")), Error, "%s: must be %s, but ${{ %s }} is %s",
					ctx.what, schemaArticle(sch), p.Source(), describeType(typ))
			}
			wc.unknown[ptr] = true
		case sch != nil && sch.Type != "" && sch.Type != schema.String:
			// Interpolation makes a string: schema validation reports it.
			return expr.FromTemplate(t), n.Value, true
		default:
			wc.unknown[ptr] = true
		}
	}
	return expr.FromTemplate(t), nil, true
}

func schemaArticle(s *schema.Schema) string {
	switch s.Type {
	case schema.Integer:
		return "an integer"
	case schema.Number:
		return "a number"
	case schema.Array:
		return "a list"
	case schema.Object:
		return "a mapping"
	case schema.Boolean:
		return "a boolean"
	}
	return "a string"
}

// displayPath shows a JSON pointer under a prefix: with.targets[0].name.
func displayPath(prefix, ptr string) string {
	var b strings.Builder
	b.WriteString(prefix)
	for _, seg := range schema.SplitPointer(ptr) {
		if _, err := strconv.Atoi(seg); err == nil {
			b.WriteString("[" + seg + "]")
			continue
		}
		b.WriteString(".")
		b.WriteString(seg)
	}
	return b.String()
}

// schemaAt returns the schema of the value at a JSON pointer under s.
func schemaAt(s *schema.Schema, ptr string) *schema.Schema {
	for _, seg := range schema.SplitPointer(ptr) {
		if s == nil {
			return nil
		}
		if s.Type == schema.Array {
			s = s.Items
			continue
		}
		s, _ = s.Property(seg)
	}
	return s
}

func parentPointer(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[:i]
	}
	return ""
}
