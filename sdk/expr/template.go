package expr

import (
	"context"
	"encoding/json"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"
)

// Segment is a literal run or an expression of a template string.
type Segment struct {
	Lit string
	// Expr is the expression between ${{ and }}, trimmed; Offset is its
	// byte offset in the template string.
	Expr   string
	Offset int
	IsExpr bool
}

// TemplateError is a problem at a byte offset of a template string.
type TemplateError struct {
	// Offset is the byte offset in the template string where the problem is.
	Offset int
	// Line and Col are inside the expression (1-based), when Err is a
	// compile error of it; both 1 otherwise.
	Line, Col int
	Msg       string
}

func (e *TemplateError) Error() string { return e.Msg }

// HasTemplate reports whether s contains an expression.
func HasTemplate(s string) bool { return strings.Contains(s, "${{") }

// ParseTemplate splits s into literal and expression segments. `$${{` is a
// literal `${{`.
func ParseTemplate(s string) ([]Segment, error) {
	var segs []Segment
	var lit strings.Builder
	i := 0
	for i < len(s) {
		j := strings.Index(s[i:], "${{")
		if j < 0 {
			lit.WriteString(s[i:])
			break
		}
		j += i
		if j > 0 && s[j-1] == '$' {
			// $${{ -> literal ${{
			lit.WriteString(s[i : j-1])
			lit.WriteString("${{")
			i = j + 3
			continue
		}
		lit.WriteString(s[i:j])
		end := strings.Index(s[j+3:], "}}")
		if end < 0 {
			return nil, &TemplateError{Offset: j, Line: 1, Col: 1, Msg: "unterminated ${{: missing }}"}
		}
		raw := s[j+3 : j+3+end]
		trimmed := strings.TrimSpace(raw)
		if trimmed == "" {
			return nil, &TemplateError{Offset: j, Line: 1, Col: 1, Msg: "empty expression ${{ }}"}
		}
		if lit.Len() > 0 {
			segs = append(segs, Segment{Lit: lit.String()})
			lit.Reset()
		}
		lead := len(raw) - len(strings.TrimLeft(raw, " \t\n"))
		segs = append(segs, Segment{Expr: trimmed, Offset: j + 3 + lead, IsExpr: true})
		i = j + 3 + end + 2
	}
	if lit.Len() > 0 {
		segs = append(segs, Segment{Lit: lit.String()})
	}
	return segs, nil
}

// Template is a compiled template string.
type Template struct {
	raw   string
	segs  []Segment
	progs []*Program // parallel to segs; nil for literals
}

// CompileTemplate compiles every expression of s against env. All problems
// are returned, each with its offset in s.
func CompileTemplate(s string, env Env) (*Template, []*TemplateError) {
	segs, err := ParseTemplate(s)
	if err != nil {
		return nil, []*TemplateError{err.(*TemplateError)}
	}
	t := &Template{raw: s, segs: segs, progs: make([]*Program, len(segs))}
	var errs []*TemplateError
	for i, seg := range segs {
		if !seg.IsExpr {
			continue
		}
		p, err := Compile(seg.Expr, env, Any)
		if err != nil {
			e := err.(*Error)
			errs = append(errs, &TemplateError{Offset: seg.Offset + offsetOf(seg.Expr, e.Line, e.Col), Line: e.Line, Col: e.Col, Msg: e.Msg})
			continue
		}
		t.progs[i] = p
	}
	if len(errs) > 0 {
		return nil, errs
	}
	return t, nil
}

// offsetOf converts a 1-based line/col inside src to a byte offset.
func offsetOf(src string, line, col int) int {
	off := 0
	for l := 1; l < line; l++ {
		nl := strings.IndexByte(src[off:], '\n')
		if nl < 0 {
			break
		}
		off += nl + 1
	}
	off += col - 1
	if off > len(src) {
		off = len(src)
	}
	if off < 0 {
		off = 0
	}
	return off
}

// Raw is the template as written.
func (t *Template) Raw() string { return t.raw }

// Exact returns the program when the template is exactly one ${{ e }}: its
// value keeps e's type instead of becoming a string.
func (t *Template) Exact() (*Program, bool) {
	if len(t.segs) == 1 && t.segs[0].IsExpr {
		return t.progs[0], true
	}
	return nil, false
}

// Part is one expression of a template and its byte offset in the
// template string.
type Part struct {
	Program *Program
	Offset  int
}

// Parts returns the template's expressions.
func (t *Template) Parts() []Part {
	var out []Part
	for i, seg := range t.segs {
		if seg.IsExpr {
			out = append(out, Part{Program: t.progs[i], Offset: seg.Offset})
		}
	}
	return out
}

// IsLiteral reports whether the template has no expression at all.
func (t *Template) IsLiteral() bool {
	for _, s := range t.segs {
		if s.IsExpr {
			return false
		}
	}
	return true
}

// Refs is the union of what the template's expressions read.
func (t *Template) Refs() Refs {
	var r Refs
	for _, p := range t.progs {
		if p != nil {
			r = r.union(p.refs)
		}
	}
	return r
}

// Render evaluates the template. An exact template yields its expression's
// value; otherwise the parts are joined into a string.
func (t *Template) Render(ctx context.Context, env map[string]any) (any, error) {
	out, _, err := t.render(ctx, env)
	return out, err
}

// render is Render, also returning the size of the value as JSON text; the
// parts joined are bounded like one value.
func (t *Template) render(ctx context.Context, env map[string]any) (any, int, error) {
	if p, ok := t.Exact(); ok {
		return p.eval(ctx, env)
	}
	var b strings.Builder
	for i, seg := range t.segs {
		if !seg.IsExpr {
			b.WriteString(seg.Lit)
			continue
		}
		v, _, err := t.progs[i].eval(ctx, env)
		if err != nil {
			return nil, 0, err
		}
		b.WriteString(Stringify(v))
		if b.Len() > MaxValueBytes {
			le := tooLarge()
			return nil, 0, &EvalError{Msg: fmt.Sprintf("%s: %s", Quote(t.raw), le.Msg), limit: le}
		}
	}
	return b.String(), b.Len(), nil
}

// Stringify formats a value for string interpolation: numbers without a
// needless fraction, null as empty, lists and maps as JSON.
func Stringify(v any) string {
	switch x := v.(type) {
	case nil:
		return ""
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case int:
		return strconv.Itoa(x)
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func (r Refs) union(o Refs) Refs {
	env := unionStrings(r.Env, o.Env)
	sort.Strings(env)
	var paths []InputPath
	paths = append(append(paths, r.InputPaths...), o.InputPaths...)
	return Refs{Steps: unionStrings(r.Steps, o.Steps), Inputs: unionStrings(r.Inputs, o.Inputs), Outputs: r.Outputs || o.Outputs,
		Env: env, InputPaths: paths}
}

func unionStrings(a, b []string) []string {
	seen := map[string]bool{}
	var out []string
	for _, s := range append(append([]string(nil), a...), b...) {
		if !seen[s] {
			seen[s] = true
			out = append(out, s)
		}
	}
	return out
}

// Union merges two sets of references.
func (r Refs) Union(o Refs) Refs { return r.union(o) }
