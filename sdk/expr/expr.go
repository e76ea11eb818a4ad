// Package expr owns runbook expressions: it is the only package that
// imports expr-lang. Expressions are compiled once, at validation, against
// a typed environment (Env: so a typo in a step id or an input name is an
// error before anything runs), then evaluated many times against plain
// maps. Analyze says what an expression reads and where, for the language
// package's checks. It also implements `${{ }}` interpolation and trees of
// values that contain it (a step's `with`).
package expr

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"unicode/utf8"

	"github.com/expr-lang/expr"
	"github.com/expr-lang/expr/checker"
	"github.com/expr-lang/expr/compiler"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/file"
	"github.com/expr-lang/expr/optimizer"
	"github.com/expr-lang/expr/types"
	"github.com/expr-lang/expr/vm"

	"github.com/runbookhq/runbook/sdk/schema"
)

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
	// bounded: the program calls bounded functions (see bound), which
	// need the evaluation's state in the environment.
	bounded bool
}

// Compile compiles src against env. want Bool requires a boolean result.
func Compile(src string, env Env, want Kind) (*Program, error) {
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

func compile(src string, env Env, want Kind) (*Program, error) {
	a, tree, err := analyzeTree(src, true)
	if err != nil {
		return nil, err
	}
	// expr.Compile's steps, with the syntax tree bounded (see bound)
	// between the optimizer and the compiler.
	config := conf.CreateNew()
	for _, opt := range []expr.Option{expr.Env(env.typeMap()), expr.MaxNodes(MaxNodes), expr.Optimize(true)} {
		opt(config)
	}
	if want == Bool {
		expr.AsBool()(config)
	}
	if _, err := checker.Check(tree, config); err != nil {
		return nil, toError(err)
	}
	if err := optimizer.Optimize(&tree.Node, config); err != nil {
		var fe *file.Error
		if errors.As(err, &fe) {
			err = fe.Bind(tree.Source)
		}
		return nil, toError(err)
	}
	bounded := bound(&tree.Node, config)
	prog, err := compiler.Compile(tree, config)
	if err != nil {
		return nil, toError(err)
	}
	return &Program{src: src, prog: prog, refs: a.Refs, bounded: bounded}, nil
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

// Eval evaluates the program against env (a map with the shape of the Env
// it was compiled against). The evaluation is bounded (see MaxValueBytes,
// MaxSteps, EvalTimeout) and stops, with a *LimitError, when ctx ends.
func (p *Program) Eval(ctx context.Context, env map[string]any) (any, error) {
	out, _, err := p.eval(ctx, env)
	return out, err
}

// eval is Eval, also returning the size of the value as JSON text.
func (p *Program) eval(ctx context.Context, env map[string]any) (out any, size int, err error) {
	defer func() {
		if r := recover(); r != nil {
			out, size, err = nil, 0, p.evalError(fmt.Errorf("%v", r))
		}
	}()
	if p.bounded {
		// The environment of this evaluation: the caller's roots and the
		// state the bounded functions count against.
		own := make(map[string]any, len(env)+1)
		for k, v := range env {
			own[k] = v
		}
		own[stateKey] = newEvalState(ctx)
		env = own
	}
	out, err = expr.Run(p.prog, env)
	if err != nil {
		return nil, 0, p.evalError(err)
	}
	if s, ok := out.(string); ok && len(s) <= MaxValueBytes/6 {
		size = len(s)
	} else if n, ok := jsonSize(out, MaxValueBytes); ok {
		size = n
	} else {
		return nil, 0, p.evalError(tooLarge())
	}
	return normalize(out), size, nil
}

// EvalError is an evaluation that failed. It wraps the *LimitError when a
// limit stopped it.
type EvalError struct {
	Msg   string
	limit *LimitError
}

func (e *EvalError) Error() string { return e.Msg }

func (e *EvalError) Unwrap() error {
	if e.limit == nil {
		return nil
	}
	return e.limit
}

func (p *Program) evalError(err error) error {
	out := &EvalError{Msg: fmt.Sprintf("evaluating %s: %s", Quote(p.src), firstLine(err.Error()))}
	if !errors.As(err, &out.limit) && strings.Contains(err.Error(), "memory budget exceeded") {
		// expr-lang's own budget (lists, maps and ranges built).
		out.limit = &LimitError{Limit: "memory", Msg: "memory budget exceeded"}
	}
	return out
}

// Quote quotes an expression for a message, cut to its first 80
// characters: an error must not repeat a 4 MiB expression.
func Quote(src string) string {
	const max = 80
	if len(src) <= max {
		return strconv.Quote(src)
	}
	cut := max
	for cut > 0 && !utf8.RuneStart(src[cut]) {
		cut--
	}
	return strconv.Quote(src[:cut]) + "..."
}

// EvalBool evaluates a boolean program.
func (p *Program) EvalBool(ctx context.Context, env map[string]any) (bool, error) {
	v, err := p.Eval(ctx, env)
	if err != nil {
		return false, err
	}
	b, ok := v.(bool)
	if !ok {
		return false, fmt.Errorf("%s evaluated to %T, not a boolean", Quote(p.src), v)
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
		return &Error{Line: fe.Line, Col: fe.Column + 1, Msg: message(fe.Message)}
	}
	return &Error{Line: 1, Col: 1, Msg: message(firstLine(err.Error()))}
}

// message says a compile error in the runbook's terms where expr-lang's
// wording is Go's.
func message(msg string) string {
	if name, ok := strings.CutPrefix(msg, "unknown name "); ok {
		return "unknown name " + schema.QuoteName(name)
	}
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

func firstLine(s string) string {
	for i, c := range s {
		if c == '\n' {
			return s[:i]
		}
	}
	return s
}

// ValueType is the type of a Go value as runbook stores it, for tests and
// for building environments from sample values.
func ValueType(v any) Type {
	if v == nil {
		return Unknown
	}
	return Type{types.TypeOf(reflect.ValueOf(v).Interface())}
}
