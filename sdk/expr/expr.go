// Package expr wraps expr-lang for runbooks: expressions are compiled once,
// at validation, against a typed environment (so a typo in a step id or an
// input name is an error before anything runs), then evaluated many times
// against plain maps. It also implements `${{ }}` interpolation and trees of
// values that contain it (a step's `with`).
package expr

import (
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"
)

// MaxNodes bounds the size of one expression; evaluation is also bounded by
// expr-lang's memory budget, and the language has no unbounded loops.
const MaxNodes = 2000

// Kind is what an expression must produce.
type Kind int

const (
	// Any value.
	Any Kind = iota
	// Bool: `if`, `until` and core.assert conditions.
	Bool
)

// Error is a compile error with its position inside the expression source
// (1-based line and column), for mapping onto the YAML position.
type Error struct {
	Line, Col int
	Msg       string
}

func (e *Error) Error() string { return e.Msg }

// Program is one compiled expression. It is safe for concurrent use.
type Program struct {
	src  string
	prog *vm.Program
	refs Refs
}

// Refs are the names an expression reads, for ordering checks and for
// partial evaluation during plan.
type Refs struct {
	// Steps are the step ids read through steps.<id>.
	Steps []string
	// Inputs are the input names read through inputs.<name>.
	Inputs []string
	// Outputs is true when the expression reads the current step's outputs.
	Outputs bool
	// Env lists the roots of the environment the expression reads
	// (inputs, steps, run, outputs), sorted.
	Env []string
	// InputPaths are the fields read below inputs through member chains
	// with constant keys (inputs.primary.aws_region, inputs.x["key"]), each
	// cut to the part the expression needs to exist. Their offsets are in
	// the source of the expression that reads them.
	InputPaths []InputPath
}

// InputPath is a field read below an input: inputs.<Input>.<Keys...>.
//
// Keys is what must exist for the expression to evaluate without reading a
// null: a chain stops at its first key that is not a constant (inputs.x[k]
// reads inputs.x); `a?.b` lets a be null or missing, so a is not required;
// the last key of a chain on the left of `??`, or compared with nil, may be
// missing (that is what the expression tests).
type InputPath struct {
	Input string
	Keys  []string
	// Offset is the byte offset of the chain (its `inputs`) in the source.
	Offset int
	// Whole is set when the chain, with every key required, is the whole
	// expression: the expression's value is the value at that path.
	Whole bool
}

// OnlyInputs reports whether the expression reads nothing but inputs (or
// nothing at all), so that it can be evaluated as soon as inputs are known.
func (r Refs) OnlyInputs() bool {
	for _, e := range r.Env {
		if e != "inputs" {
			return false
		}
	}
	return true
}

// Compile compiles src against env (see Env). want Bool requires a boolean
// result.
func Compile(src string, env types.Map, want Kind) (*Program, error) {
	key := programKey(src, env, want)
	if p, ok := programCache.get(key); ok {
		return p, nil
	}
	p, err := compile(src, env, want)
	if err == nil {
		programCache.put(key, p)
	}
	return p, err
}

func compile(src string, env types.Map, want Kind) (*Program, error) {
	refs, err := collectRefs(src)
	if err != nil {
		return nil, err
	}
	opts := []expr.Option{expr.Env(env), expr.MaxNodes(MaxNodes), expr.Optimize(true)}
	if want == Bool {
		opts = append(opts, expr.AsBool())
	}
	prog, err := expr.Compile(src, opts...)
	if err != nil {
		return nil, toError(err)
	}
	return &Program{src: src, prog: prog, refs: refs}, nil
}

// Source is the expression as written.
func (p *Program) Source() string { return p.src }

// Refs returns what the expression reads.
func (p *Program) Refs() Refs { return p.refs }

// Type is the Go type the expression is known to produce at compile time,
// or nil when it is only known at run time (an interface such as any).
func (p *Program) Type() reflect.Type {
	n := p.prog.Node()
	if n == nil {
		return nil
	}
	t := n.Type()
	if t == nil || t.Kind() == reflect.Interface {
		return nil
	}
	return t
}

// Eval evaluates the program against env (a map with the shape of the
// types.Map it was compiled against).
func (p *Program) Eval(env map[string]any) (out any, err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("evaluating %q: %v", p.src, r)
		}
	}()
	out, err = expr.Run(p.prog, env)
	if err != nil {
		return nil, fmt.Errorf("evaluating %q: %s", p.src, firstLine(err.Error()))
	}
	return normalize(out), nil
}

// EvalBool evaluates a boolean program.
func (p *Program) EvalBool(env map[string]any) (bool, error) {
	v, err := p.Eval(env)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%q evaluated to %T, not a boolean", p.src, v)
	}
	return b, nil
}

// normalize turns what expr produces into runbook values, the JSON data
// model: every number a float64, every map a map[string]any (fromPairs
// builds map[any]any), every list a []any.
func normalize(v any) any {
	switch n := v.(type) {
	case nil, string, bool, float64:
		return v
	case int:
		return float64(n)
	case int64:
		return float64(n)
	case int32:
		return float64(n)
	case float32:
		return float64(n)
	case []any:
		for i := range n {
			n[i] = normalize(n[i])
		}
		return n
	case map[string]any:
		for k := range n {
			n[k] = normalize(n[k])
		}
		return n
	case map[any]any:
		out := make(map[string]any, len(n))
		for k, e := range n {
			out[Stringify(normalize(k))] = normalize(e)
		}
		return out
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Array:
		out := make([]any, rv.Len())
		for i := range out {
			out[i] = normalize(rv.Index(i).Interface())
		}
		return out
	case reflect.Map:
		out := make(map[string]any, rv.Len())
		it := rv.MapRange()
		for it.Next() {
			out[Stringify(normalize(it.Key().Interface()))] = normalize(it.Value().Interface())
		}
		return out
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return float64(rv.Int())
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return float64(rv.Uint())
	}
	return v
}

func toError(err error) error {
	var fe *file.Error
	if errors.As(err, &fe) {
		return &Error{Line: fe.Line, Col: fe.Column + 1, Msg: fe.Message}
	}
	return &Error{Line: 1, Col: 1, Msg: firstLine(err.Error())}
}

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// CollectRefs parses src and returns what it reads, without compiling it
// (a syntax error is returned as an *Error).
func CollectRefs(src string) (Refs, error) { return collectRefs(src) }

// collectRefs parses src and records steps.<id>, inputs.<name>, the
// environment roots, outputs and the paths read below inputs.
func collectRefs(src string) (Refs, error) {
	if r, ok := refsCache.get(src); ok {
		return r.refs, r.err
	}
	refs, err := parseRefs(src)
	refsCache.put(src, refsResult{refs, err})
	return refs, err
}

func parseRefs(src string) (Refs, error) {
	tree, err := parseTree(src)
	if err != nil {
		return Refs{}, err
	}
	v := &refVisitor{steps: map[string]bool{}, inputs: map[string]bool{}, env: map[string]bool{}}
	ast.Walk(&tree, v)
	var r Refs
	for s := range v.steps {
		r.Steps = append(r.Steps, s)
	}
	for s := range v.inputs {
		r.Inputs = append(r.Inputs, s)
	}
	for s := range v.env {
		r.Env = append(r.Env, s)
	}
	sort.Strings(r.Steps)
	sort.Strings(r.Inputs)
	sort.Strings(r.Env)
	r.Outputs = v.outputs
	r.InputPaths = inputPaths(tree, src)
	return r, nil
}

// envRoots are the names an expression can read from its environment (see
// Env.Map).
var envRoots = map[string]bool{"inputs": true, "steps": true, "run": true, "outputs": true}

type refVisitor struct {
	steps, inputs map[string]bool
	env           map[string]bool
	outputs       bool
}

func (v *refVisitor) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.MemberNode:
		id, ok := n.Node.(*ast.IdentifierNode)
		if !ok {
			return
		}
		name, ok := n.Property.(*ast.StringNode)
		if !ok {
			return
		}
		switch id.Value {
		case "steps":
			v.steps[name.Value] = true
		case "inputs":
			v.inputs[name.Value] = true
		}
	case *ast.IdentifierNode:
		if n.Value == "outputs" {
			v.outputs = true
		}
		if envRoots[n.Value] {
			v.env[n.Value] = true
		}
	}
}

// ValueType is the expr type of a Go value as runbook stores it, for tests
// and for building environments from sample values.
func ValueType(v any) types.Type {
	if v == nil {
		return types.Any
	}
	return types.TypeOf(reflect.ValueOf(v).Interface())
}
