package expr

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/expr-lang/expr/ast"
	"github.com/expr-lang/expr/builtin"
	"github.com/expr-lang/expr/conf"
	"github.com/expr-lang/expr/vm/runtime"
)

// Limits on one expression, so that a hostile or mistaken runbook (or a
// value it is given) cannot exhaust the memory or the time of the process
// that validates, plans or runs it. Each is reported as a *LimitError,
// never a crash or a hang.
//
// expr-lang bounds the size of the syntax tree (MaxNodes) and counts the
// lists, maps and ranges an evaluation builds against a memory budget (one
// unit per element, 1,000,000 units). What it does not bound is bounded
// here: the nesting of the source (its parser recurses once per bracket),
// values that grow faster than that budget sees (repeat, replace, join,
// toJSON, string concatenation, nested lists shared many times over), the
// number of times closures run (map, filter, all, reduce...), and the time
// an evaluation takes; and an evaluation can be cancelled.
const (
	// MaxNodes bounds the syntax tree of one expression.
	MaxNodes = 2000
	// MaxDepth bounds the nesting of ( [ { in the source of one
	// expression, checked before it is parsed.
	MaxDepth = 100
	// MaxValueBytes bounds any one value an expression builds or yields,
	// measured as the length of its JSON text: a string made by a function
	// or by +, a list or map rendered as text, and the expression's
	// result. It is the largest file runbook reads, so every input value
	// fits.
	MaxValueBytes = 4 << 20
	// MaxAllocBytes bounds what the functions of one evaluation build in
	// all (strings and lists, by their JSON length).
	MaxAllocBytes = 16 << 20
	// MaxSteps bounds the work of one evaluation: runs of a closure's body
	// (map, filter, all, reduce...) and elements compared by == and in.
	MaxSteps = 1_000_000
)

// EvalTimeout bounds the time of one evaluation; the caller's context
// (a step's timeout, an interrupted run) can end it sooner.
var EvalTimeout = 5 * time.Second

// LimitError is an evaluation (or compilation) stopped by one of the
// limits above, or by its context.
type LimitError struct {
	// Limit names what was exceeded: "nesting", "value size", "memory",
	// "steps", "time" or "interrupted".
	Limit string
	Msg   string
}

func (e *LimitError) Error() string { return e.Msg }

// IsLimit reports whether err is (or wraps) a *LimitError.
func IsLimit(err error) bool {
	var le *LimitError
	return errors.As(err, &le)
}

// checkDepth refuses source whose brackets nest deeper than MaxDepth, at
// the first bracket too deep: expr-lang's parser recurses once per level,
// and a few hundred thousand levels exhaust the stack (a crash, not an
// error). Brackets inside string literals and comments do not count.
func checkDepth(src string) error {
	depth, line, col := 0, 1, 0
	for i := 0; i < len(src); i++ {
		c := src[i]
		col++
		switch c {
		case '\n':
			line, col = line+1, 0
		case '"', '\'', '`':
			// Skip the literal; a backquoted one has no escapes.
			for j := i + 1; j < len(src); j++ {
				if src[j] == '\\' && c != '`' {
					j++
					continue
				}
				if src[j] == '\n' {
					line, col = line+1, -1
				}
				if src[j] == c {
					col += j - i
					i = j
					break
				}
			}
		case '/':
			if strings.HasPrefix(src[i:], "//") {
				if nl := strings.IndexByte(src[i:], '\n'); nl >= 0 {
					i += nl - 1
					continue
				}
				return nil
			}
			if strings.HasPrefix(src[i:], "/*") {
				end := strings.Index(src[i+2:], "*/")
				if end < 0 {
					return nil // the parser reports it
				}
				comment := src[i : i+2+end+2]
				line += strings.Count(comment, "\n")
				i += len(comment) - 1
			}
		case '(', '[', '{':
			depth++
			if depth > MaxDepth {
				return &Error{Line: line, Col: col, Msg: fmt.Sprintf("brackets nested more than %d deep", MaxDepth)}
			}
		case ')', ']', '}':
			depth--
		}
	}
	return nil
}

// evalState is what one evaluation has used, reached by the bounded
// functions through the environment (compiled programs are shared, so it
// cannot live in them).
type evalState struct {
	ctx      context.Context
	deadline time.Time
	// ctxDeadline: deadline is the context's (shorter than EvalTimeout).
	ctxDeadline bool
	steps       int
	bytes       int
}

// stateKey is the environment key of the evaluation's state: not a name
// an expression can write as an identifier.
const stateKey = "runbook:eval"

func newEvalState(ctx context.Context) *evalState {
	deadline, fromCtx := time.Now().Add(EvalTimeout), false
	if d, ok := ctx.Deadline(); ok && d.Before(deadline) {
		deadline, fromCtx = d, true
	}
	return &evalState{ctx: ctx, deadline: deadline, ctxDeadline: fromCtx}
}

// step counts n units of work; every 1024 it checks the context and the
// deadline.
func (s *evalState) step(n int) error {
	before := s.steps
	s.steps += n
	if s.steps > MaxSteps {
		return &LimitError{Limit: "steps", Msg: fmt.Sprintf("more than %d steps (closure runs and elements compared): the expression does too much work", MaxSteps)}
	}
	if before>>10 != s.steps>>10 {
		return s.check()
	}
	return nil
}

func (s *evalState) check() error {
	if err := s.ctx.Err(); err != nil {
		if errors.Is(err, context.DeadlineExceeded) {
			return &LimitError{Limit: "time", Msg: "stopped: the time allowed for it ran out"}
		}
		return &LimitError{Limit: "interrupted", Msg: "stopped: the run was interrupted while the expression was evaluated"}
	}
	if time.Now().After(s.deadline) {
		if s.ctxDeadline {
			// The caller's deadline passed before its context said so.
			return &LimitError{Limit: "time", Msg: "stopped: the time allowed for it ran out"}
		}
		return &LimitError{Limit: "time", Msg: fmt.Sprintf("stopped after %s: an expression may take at most that long", EvalTimeout)}
	}
	return nil
}

// alloc counts n bytes built by a function (the size of one value is
// checked before it is built).
func (s *evalState) alloc(n int) error {
	s.bytes += n
	if s.bytes > MaxAllocBytes {
		return &LimitError{Limit: "memory", Msg: fmt.Sprintf("the expression built more than %d MiB of values", MaxAllocBytes>>20)}
	}
	return s.step(1 + n>>12)
}

// tooLarge is the error for a value longer than MaxValueBytes as JSON text.
func tooLarge() *LimitError {
	return &LimitError{Limit: "value size", Msg: fmt.Sprintf("value too large: more than %d MiB as JSON", MaxValueBytes>>20)}
}

func stateOf(args []any) (*evalState, []any) {
	env, _ := args[len(args)-1].(map[string]any)
	s, _ := env[stateKey].(*evalState)
	if s == nil {
		s = newEvalState(context.Background())
	}
	return s, args[:len(args)-1]
}

// jsonSize returns the length of v's JSON text as toJSON writes it
// (indented; string escapes counted exactly, map keys as %v writes them
// too), stopping as soon as it passes limit: a list holding the same list
// many times over, levels deep, is measured in at most limit steps however
// large its text would be. ok is false when it passed the limit.
func jsonSize(v any, limit int) (n int, ok bool) {
	var num [32]byte
	var walk func(v any, depth int)
	walk = func(v any, depth int) {
		if n > limit {
			return
		}
		switch x := v.(type) {
		case nil:
			n += 4
		case bool:
			n += 5
		case string:
			n += jsonStringLen(x)
		case float64:
			n += len(strconv.AppendFloat(num[:0], x, 'g', -1, 64))
		case int:
			n += len(strconv.AppendInt(num[:0], int64(x), 10))
		case int64, float32, int32, uint, uint64:
			n += 24
		case []any:
			n += 2
			if len(x) > 0 {
				n += 1 + 2*depth // the closing bracket's line
			}
			for _, e := range x {
				n += 2*depth + 4 // ",\n" and the indentation of toJSON's output
				walk(e, depth+1)
				if n > limit {
					return
				}
			}
		case map[string]any:
			n += 6 // and "map[" of string()
			if len(x) > 0 {
				n += 1 + 2*depth
			}
			for k, e := range x {
				n += 2*depth + 6 + jsonStringLen(k)
				walk(e, depth+1)
				if n > limit {
					return
				}
			}
		default:
			rv := reflect.ValueOf(v)
			if k := rv.Kind(); (k == reflect.Slice || k == reflect.Array || k == reflect.Map) && rv.Len() > 0 {
				n += 1 + 2*depth
			}
			switch rv.Kind() {
			case reflect.Slice, reflect.Array:
				n += 2
				for i := 0; i < rv.Len() && n <= limit; i++ {
					n += 2*depth + 4
					walk(rv.Index(i).Interface(), depth+1)
				}
			case reflect.Map:
				n += 6
				it := rv.MapRange()
				for it.Next() && n <= limit {
					n += 2*depth + 6
					walk(it.Key().Interface(), depth+1)
					walk(it.Value().Interface(), depth+1)
				}
			case reflect.String:
				n += jsonStringLen(rv.String())
			default:
				n += 64 // a time, a duration
			}
		}
	}
	walk(v, 0)
	return n, n <= limit
}

// Size is the length of v's JSON text (an upper bound; see jsonSize); ok is
// false when it is longer than MaxValueBytes.
func Size(v any) (n int, ok bool) { return jsonSize(v, MaxValueBytes) }

// jsonStringLen is the length of s as a JSON string, quotes included, with
// encoding/json's escapes (HTML characters as \u003c).
func jsonStringLen(s string) int {
	n := 2
	for i := 0; i < len(s); {
		c := s[i]
		if c < utf8.RuneSelf {
			switch {
			case c == '"' || c == '\\' || c == '\n' || c == '\r' || c == '\t':
				n += 2
			case c < 0x20 || c == '<' || c == '>' || c == '&':
				n += 6
			default:
				n++
			}
			i++
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || r == '\u2028' || r == '\u2029' {
			n += 6
		} else {
			n += size
		}
		i += size
	}
	return n
}

// Bounded functions. A call of a built-in listed here is compiled as a
// call of its bounded version (see bound): each checks the size of what it
// would build before building it, counts it, and checks the time.

type boundedFunc func(s *evalState, args []any) (any, error)

var boundedBuiltins = map[string]boundedFunc{
	"repeat": func(s *evalState, args []any) (any, error) {
		str, _ := args[0].(string)
		n := runtime.ToInt(args[1])
		if n > 0 && len(str) > 0 && len(str) > MaxValueBytes/n {
			return nil, tooLarge()
		}
		return callBuiltin(s, "repeat", args)
	},
	"replace": func(s *evalState, args []any) (any, error) {
		str, _ := args[0].(string)
		old, _ := args[1].(string)
		repl, _ := args[2].(string)
		k := strings.Count(str, old)
		if len(args) == 4 {
			if lim := runtime.ToInt(args[3]); lim >= 0 && lim < k {
				k = lim
			}
		}
		if grow := len(repl) - len(old); grow > 0 && k > 0 && grow > (MaxValueBytes-len(str))/k {
			return nil, tooLarge()
		}
		return callBuiltin(s, "replace", args)
	},
	"join": func(s *evalState, args []any) (any, error) {
		if rv := reflect.ValueOf(args[0]); rv.Kind() == reflect.Slice && rv.Len() > 0 {
			sep := ""
			if len(args) > 1 {
				sep, _ = args[1].(string)
			}
			if len(sep) > MaxValueBytes/rv.Len() {
				return nil, tooLarge()
			}
			total := len(sep) * (rv.Len() - 1)
			for i := 0; i < rv.Len(); i++ {
				if str, ok := rv.Index(i).Interface().(string); ok {
					if total += len(str); total > MaxValueBytes {
						return nil, tooLarge()
					}
				}
			}
		}
		return callBuiltin(s, "join", args)
	},
	"toJSON":  measured("toJSON"),
	"string":  measured("string"),
	"flatten": measured("flatten"),
	"max":     measured("max"),
	"min":     measured("min"),
	"mean":    measured("mean"),
	"median":  measured("median"),
	"concat":  measured("concat"),
	"uniq":    measured("uniq"),
	"sort":    measured("sort"),
}

func init() {
	// Every other built-in that builds a value no larger than a constant
	// times its arguments is counted: in a loop, those add up.
	for _, name := range []string{"split", "splitAfter", "upper", "lower", "trim", "trimPrefix", "trimSuffix",
		"toBase64", "fromBase64", "fromJSON", "keys", "values", "toPairs", "fromPairs", "reverse", "take"} {
		boundedBuiltins[name] = func(s *evalState, args []any) (any, error) { return callBuiltin(s, name, args) }
	}
}

// measured is a built-in whose work and result can grow with the size of
// its arguments taken as text (a list holding the same list many times
// over): their size is measured first.
func measured(name string) boundedFunc {
	return func(s *evalState, args []any) (any, error) {
		n, ok := jsonSize(args, MaxValueBytes)
		if !ok {
			return nil, tooLarge()
		}
		if err := s.step(1 + n>>6); err != nil {
			return nil, err
		}
		return callBuiltin(s, name, args)
	}
}

// callBuiltin calls expr-lang's built-in and counts its result.
func callBuiltin(s *evalState, name string, args []any) (any, error) {
	f := builtinByName[name]
	var out any
	var err error
	switch {
	case f.Fast != nil:
		out = f.Fast(args[0])
	case f.Safe != nil:
		out, _, err = f.Safe(args...)
	default:
		out, err = f.Func(args...)
	}
	if err != nil {
		return nil, err
	}
	return out, s.alloc(shallowSize(out))
}

var builtinByName = func() map[string]*builtin.Function {
	m := map[string]*builtin.Function{}
	for _, f := range builtin.Builtins {
		m[f.Name] = f
	}
	return m
}()

// shallowSize is what a function's result costs: a string's bytes, 16
// bytes per element of a list or map (the elements themselves exist
// already or were counted when they were built).
func shallowSize(v any) int {
	switch x := v.(type) {
	case string:
		return len(x)
	case []any:
		return 16 * len(x)
	case map[string]any:
		return 32 * len(x)
	}
	rv := reflect.ValueOf(v)
	switch rv.Kind() {
	case reflect.Slice, reflect.Map, reflect.Array:
		return 16 * rv.Len()
	case reflect.String:
		return rv.Len()
	}
	return 0
}

// Operators and closures that need bounds (see bound).
var boundedOps = map[string]boundedFunc{
	// string + string, or operands known only at run time.
	"+": func(s *evalState, args []any) (any, error) {
		a, aok := args[0].(string)
		b, bok := args[1].(string)
		if aok && bok {
			if len(a) > MaxValueBytes-len(b) {
				return nil, tooLarge()
			}
			if err := s.alloc(len(a) + len(b)); err != nil {
				return nil, err
			}
			return a + b, nil
		}
		return runtime.Add(args[0], args[1]), nil
	},
	"==": func(s *evalState, args []any) (any, error) { return s.equal(args[0], args[1]) },
	"!=": func(s *evalState, args []any) (any, error) {
		eq, err := s.equal(args[0], args[1])
		return !eq, err
	},
	"in": func(s *evalState, args []any) (any, error) {
		needle, haystack := args[0], args[1]
		rv := reflect.ValueOf(haystack)
		if rv.Kind() != reflect.Slice && rv.Kind() != reflect.Array {
			return runtime.In(needle, haystack), nil
		}
		for i := 0; i < rv.Len(); i++ {
			eq, err := s.equal(rv.Index(i).Interface(), needle)
			if eq || err != nil {
				return eq, err
			}
		}
		return false, nil
	},
	// Runs before every run of a closure's body.
	"tick": func(s *evalState, args []any) (any, error) { return nil, s.step(1) },
}

// equal is expr-lang's ==, with every element compared counted: its own
// compares lists element by element without end, however often the same
// list is nested in itself.
func (s *evalState) equal(a, b any) (bool, error) {
	if err := s.step(1); err != nil {
		return false, err
	}
	switch x := a.(type) {
	case []any:
		y, ok := b.([]any)
		if !ok {
			break
		}
		if len(x) != len(y) {
			return false, nil
		}
		for i := range x {
			if eq, err := s.equal(x[i], y[i]); !eq || err != nil {
				return false, err
			}
		}
		return true, nil
	case map[string]any:
		y, ok := b.(map[string]any)
		if !ok {
			break
		}
		if len(x) != len(y) {
			return false, nil
		}
		for k, xv := range x {
			yv, ok := y[k]
			if !ok {
				return false, nil
			}
			if eq, err := s.equal(xv, yv); !eq || err != nil {
				return false, err
			}
		}
		return true, nil
	}
	return runtime.Equal(a, b), nil
}

// bound rewrites a checked (and optimized) syntax tree so that what
// expr-lang leaves unbounded is bounded: calls of the built-ins in
// boundedBuiltins, + on strings, == and != on values that can be lists or
// maps, `in` a list, and every closure body (preceded by a tick). Each
// becomes a call of a function registered in config that receives the
// environment as its last argument, to reach the evaluation's state. It
// reports whether it rewrote anything (the program then needs that state).
func bound(tree *ast.Node, config *conf.Config) bool {
	b := &bounder{config: config}
	ast.Walk(tree, b)
	return b.rewrote
}

type bounder struct {
	config  *conf.Config
	rewrote bool
}

func (b *bounder) call(name string, fn boundedFunc, typ reflect.Type, args ...ast.Node) ast.Node {
	fname := "runbook:" + name
	if _, ok := b.config.Functions[fname]; !ok {
		b.config.Functions[fname] = &builtin.Function{Name: fname, Func: func(args ...any) (any, error) {
			s, rest := stateOf(args)
			return fn(s, rest)
		}}
	}
	b.rewrote = true
	n := &ast.CallNode{Callee: &ast.IdentifierNode{Value: fname}, Arguments: append(args, &ast.IdentifierNode{Value: "$env"})}
	n.SetType(typ)
	return n
}

func (b *bounder) Visit(node *ast.Node) {
	switch n := (*node).(type) {
	case *ast.BuiltinNode:
		if fn, ok := boundedBuiltins[n.Name]; ok {
			ast.Patch(node, b.call(n.Name, fn, n.Type(), n.Arguments...))
		}
	case *ast.BinaryNode:
		var bounded bool
		switch n.Operator {
		case "+":
			bounded = maybeString(n.Left) && maybeString(n.Right)
		case "==", "!=":
			bounded = maybeContainer(n.Left) || maybeContainer(n.Right)
		case "in":
			bounded = maybeList(n.Right)
		}
		if bounded {
			ast.Patch(node, b.call(n.Operator, boundedOps[n.Operator], n.Type(), n.Left, n.Right))
		}
	case *ast.PredicateNode:
		body := n.Node
		seq := &ast.SequenceNode{Nodes: []ast.Node{b.call("tick", boundedOps["tick"], nilType), body}}
		seq.SetLocation(body.Location())
		seq.SetType(body.Type())
		n.Node = seq
	}
}

var nilType = reflect.TypeOf((*any)(nil)).Elem()

func kindOf(n ast.Node) reflect.Kind {
	t := n.Type()
	if t == nil {
		return reflect.Interface
	}
	return t.Kind()
}

func maybeString(n ast.Node) bool {
	k := kindOf(n)
	return k == reflect.String || k == reflect.Interface
}

func maybeList(n ast.Node) bool {
	k := kindOf(n)
	return k == reflect.Slice || k == reflect.Array || k == reflect.Interface
}

func maybeContainer(n ast.Node) bool {
	k := kindOf(n)
	return maybeList(n) || k == reflect.Map || k == reflect.Struct
}
