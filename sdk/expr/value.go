package expr

import (
	"context"
	"fmt"
	"strconv"

	"github.com/runbookhq/runbook/sdk/schema"
)

// Value is a tree of static values and templates: a step's `with`, a
// rollback's `with`, a runbook output. Build it with Static, FromTemplate,
// Mapping and List (the language package does, from YAML nodes).
type Value struct {
	kind   valueKind
	static any
	tmpl   *Template
	keys   []string
	fields []*Value
	items  []*Value
}

type valueKind int

const (
	staticValue valueKind = iota
	templateValue
	mappingValue
	listValue
)

// Static is a value with no expression in it.
func Static(v any) *Value { return &Value{kind: staticValue, static: v} }

// FromTemplate is a value computed by a template.
func FromTemplate(t *Template) *Value { return &Value{kind: templateValue, tmpl: t} }

// Mapping is a mapping of values, keys in order.
func Mapping(keys []string, fields []*Value) *Value {
	return &Value{kind: mappingValue, keys: keys, fields: fields}
}

// List is a list of values.
func List(items []*Value) *Value { return &Value{kind: listValue, items: items} }

// Template returns the template of a template value.
func (v *Value) Template() (*Template, bool) {
	if v == nil || v.kind != templateValue {
		return nil, false
	}
	return v.tmpl, true
}

// Field returns a mapping's field.
func (v *Value) Field(key string) (*Value, bool) {
	if v == nil || v.kind != mappingValue {
		return nil, false
	}
	for i, k := range v.keys {
		if k == key {
			return v.fields[i], true
		}
	}
	return nil, false
}

// Keys returns a mapping's keys in order.
func (v *Value) Keys() []string {
	if v == nil {
		return nil
	}
	return v.keys
}

// Refs is the union of what every template in the tree reads.
func (v *Value) Refs() Refs {
	var r Refs
	v.walk(func(t *Template) { r = r.union(t.Refs()) })
	return r
}

// IsStatic reports whether the tree has no expression.
func (v *Value) IsStatic() bool {
	static := true
	v.walk(func(t *Template) {
		if !t.IsLiteral() {
			static = false
		}
	})
	return static
}

func (v *Value) walk(fn func(*Template)) {
	if v == nil {
		return
	}
	switch v.kind {
	case templateValue:
		fn(v.tmpl)
	case mappingValue:
		for _, f := range v.fields {
			f.walk(fn)
		}
	case listValue:
		for _, it := range v.items {
			it.walk(fn)
		}
	}
}

// Render evaluates every template and returns plain data
// (map[string]any, []any, string, float64, bool, nil). What its templates
// yield is bounded in all by MaxValueBytes (as JSON text).
func (v *Value) Render(ctx context.Context, env map[string]any) (any, error) {
	out, _, err := v.render(ctx, env, "", nil, new(int))
	return out, err
}

// RenderPartial evaluates what can be known now: a template for which
// unknown(refs) is true becomes null, and its JSON pointer is returned in
// unknownPaths. Plan uses it for values that depend on steps not yet run.
func (v *Value) RenderPartial(ctx context.Context, env map[string]any, unknown func(Refs) bool) (any, []string, error) {
	return v.render(ctx, env, "", unknown, new(int))
}

// render renders v at JSON pointer path; size is what the templates
// rendered so far have yielded.
func (v *Value) render(ctx context.Context, env map[string]any, path string, unknown func(Refs) bool, size *int) (any, []string, error) {
	if v == nil {
		return nil, nil, nil
	}
	switch v.kind {
	case staticValue:
		return v.static, nil, nil
	case templateValue:
		if unknown != nil && unknown(v.tmpl.Refs()) {
			return nil, []string{path}, nil
		}
		out, n, err := v.tmpl.render(ctx, env)
		if err == nil && n > MaxValueBytes-*size {
			le := tooLarge()
			err = &EvalError{Msg: "the values computed add up to more: " + le.Msg, limit: le}
		}
		if err != nil {
			return nil, nil, fmt.Errorf("%s: %w", displayPath(path), err)
		}
		*size += n
		return out, nil, nil
	case mappingValue:
		m := make(map[string]any, len(v.keys))
		var unk []string
		for i, k := range v.keys {
			fv, u, err := v.fields[i].render(ctx, env, path+"/"+schema.EscapePointer(k), unknown, size)
			if err != nil {
				return nil, nil, err
			}
			m[k] = fv
			unk = append(unk, u...)
		}
		return m, unk, nil
	case listValue:
		l := make([]any, len(v.items))
		var unk []string
		for i, it := range v.items {
			iv, u, err := it.render(ctx, env, path+"/"+strconv.Itoa(i), unknown, size)
			if err != nil {
				return nil, nil, err
			}
			l[i] = iv
			unk = append(unk, u...)
		}
		return l, unk, nil
	}
	return nil, nil, nil
}

func displayPath(p string) string {
	if p == "" {
		return "value"
	}
	return p
}
