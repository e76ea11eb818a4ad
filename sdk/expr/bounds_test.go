package expr

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// hostile are expressions that, unbounded, crash the process (out of
// memory, stack overflow) or hang it; each must stop with a *LimitError
// of its kind (or, for nesting, a compile error).
var hostile = map[string]struct {
	src   string
	limit string
}{
	"repeat of repeat (1 TB)":        {`repeat(repeat("a", 999999), 999999)`, "value size"},
	"replace amplifying":             {`replace(repeat("a", 999999), "a", repeat("b", 999999))`, "value size"},
	"join of one string many times":  {`let s = repeat("a", 900000); join(map(1..50000, s), ",")`, "value size"},
	"join with a huge separator":     {`join(map(1..1000, ""), repeat("x", 100000))`, "value size"},
	"string doubling in reduce":      {`len(reduce(1..40, #acc + #acc, "ab")) > 0`, "value size"},
	"string doubling with let":       {`let a = repeat("x", 500000); let b = a + a; let c = b + b; let d = c + c; let e = d + d; len(e + e) > 0`, "value size"},
	"list doubling with concat":      {`len(reduce(1..40, concat(#acc, #acc), [1])) > 0`, "value size"},
	"flatten of a shared list":       {`len(flatten(reduce(1..40, [#acc, #acc], 1))) > 0`, "value size"},
	"toJSON of a shared list":        {`toJSON(reduce(1..35, [#acc, #acc], 1))`, "value size"},
	"string() of a shared list":      {`string(reduce(1..35, [#acc, #acc], 1))`, "value size"},
	"max of a shared list":           {`max(reduce(1..35, [#acc, #acc], 1))`, "value size"},
	"median of a shared list":        {`median(reduce(1..35, [#acc, #acc], 1))`, "value size"},
	"equality of shared lists":       {`let a = reduce(1..35, [#acc, #acc], 1); let b = reduce(1..35, [#acc, #acc], 1); a == b`, "steps"},
	"in a shared list":               {`let a = reduce(1..35, [#acc, #acc], 1); a in [reduce(1..35, [#acc, #acc], 1)]`, "steps"},
	"result a shared list":           {`reduce(1..35, [#acc, #acc], 1)`, "value size"},
	"split in a loop":                {`let s = repeat("ab", 400000); len(map(1..100, split(s, ""))) > 0`, "memory"},
	"nested loops":                   {`all(1..999, all(inputs.list, all(inputs.list, true)))`, "steps"},
	"ranges":                         {`all(1..999, all(1..999, all(1..999, true)))`, "memory"},
	"string concatenation in a loop": {`let s = repeat("xxx", 1000000); len(map(1..100, s + "y")) > 0`, "memory"},
}

func hostileEnv() (Env, map[string]any) {
	list := make([]any, 1500)
	for i := range list {
		list[i] = float64(i)
	}
	return Env{Inputs: map[string]Type{"list": InputType("list")}}, map[string]any{"inputs": map[string]any{"list": list}}
}

func TestHostileExpressionsStop(t *testing.T) {
	env, values := hostileEnv()
	for name, tc := range hostile {
		t.Run(name, func(t *testing.T) {
			p, err := Compile(tc.src, env, Any)
			if err != nil {
				t.Fatalf("compile: %v", err)
			}
			_, err = p.Eval(context.Background(), values)
			var le *LimitError
			if !errors.As(err, &le) {
				t.Fatalf("err = %v, want a *LimitError", err)
			}
			if le.Limit != tc.limit {
				t.Errorf("stopped by %q (%v), want %q", le.Limit, err, tc.limit)
			}
			if !strings.HasPrefix(err.Error(), "evaluating ") {
				t.Errorf("message %q does not say what was evaluated", err)
			}
		})
	}
}

func TestNestingRefusedBeforeParsing(t *testing.T) {
	for name, src := range map[string]string{
		"parentheses": strings.Repeat("(", 300000) + "1" + strings.Repeat(")", 300000),
		"lists":       strings.Repeat("[", 300000) + strings.Repeat("]", 300000),
		"maps":        strings.Repeat("{a: ", 300000) + "1" + strings.Repeat("}", 300000),
		"calls":       strings.Repeat("len(", 300000) + "1" + strings.Repeat(")", 300000),
	} {
		t.Run(name, func(t *testing.T) {
			_, err := Compile(src, Env{}, Any)
			var ce *Error
			if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "nested more than 100 deep") {
				t.Fatalf("err = %v, want the nesting refused", err)
			}
			if ce.Line != 1 || ce.Col < 100 || ce.Col > 500 {
				t.Errorf("position %d:%d, want at the 101st bracket", ce.Line, ce.Col)
			}
		})
	}
	// Brackets inside strings and comments do not count, lines do.
	deep := strings.Repeat("(", MaxDepth)
	ok := `len("` + deep + `") + len('` + deep + "') /* " + deep + " */ + len(`" + deep + "`)"
	if _, err := Compile(ok, Env{}, Any); err != nil {
		t.Errorf("brackets in literals and comments counted: %v", err)
	}
	_, err := Compile("1 +\n"+strings.Repeat("(", MaxDepth+1)+"1"+strings.Repeat(")", MaxDepth+1), Env{}, Any)
	var ce *Error
	if !errors.As(err, &ce) || ce.Line != 2 || ce.Col != MaxDepth+1 {
		t.Errorf("err = %#v, want line 2 column %d", err, MaxDepth+1)
	}
}

func TestEvaluationStopsWhenItsContextEnds(t *testing.T) {
	env, values := hostileEnv()
	// About 2 * 10^9 comparisons of a 4 MB string: minutes unbounded.
	p, err := Compile(`let s = repeat("a", 1000000); all(1..900000, indexOf(s, "b") < 0)`, env, Bool)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	go func() { time.Sleep(50 * time.Millisecond); cancel() }()
	_, err = p.Eval(ctx, values)
	var le *LimitError
	if !errors.As(err, &le) || le.Limit != "interrupted" {
		t.Fatalf("err = %v, want interrupted", err)
	}

	deadline, cancel2 := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel2()
	_, err = p.Eval(deadline, values)
	if !errors.As(err, &le) || le.Limit != "time" {
		t.Fatalf("err = %v, want the time limit", err)
	}

	defer func(d time.Duration) { EvalTimeout = d }(EvalTimeout)
	EvalTimeout = 50 * time.Millisecond
	_, err = p.Eval(context.Background(), values)
	if !errors.As(err, &le) || le.Limit != "time" || !strings.Contains(err.Error(), "50ms") {
		t.Fatalf("err = %v, want the evaluation's own time limit", err)
	}
}

// The operators and built-ins compiled as bounded calls give what
// expr-lang's own give.
func TestBoundedOperationsKeepTheirResults(t *testing.T) {
	env := Env{Inputs: map[string]Type{"any": Unknown, "list": InputType("list"), "m": InputType("map"), "s": StringType}}
	values := map[string]any{"inputs": map[string]any{
		"any": "x", "list": []any{1.0, "b", []any{2.0}}, "m": map[string]any{"k": []any{1.0, 2.0}}, "s": "a<b",
	}}
	cases := map[string]any{
		`inputs.s + "!"`:                          "a<b!",
		`inputs.any + "y"`:                        "xy",
		`inputs.list == [1, "b", [2]]`:            true,
		`inputs.list != [1, "b", [3]]`:            true,
		`inputs.m == {k: [1, 2]}`:                 true,
		`[2] in inputs.list`:                      true,
		`"c" in inputs.list`:                      false,
		`"k" in inputs.m`:                         true,
		`"k" not in inputs.m`:                     false,
		`inputs.any in ["x"]`:                     true,
		`repeat(inputs.s, 2)`:                     "a<ba<b",
		`replace(inputs.s, "<", "&lt;")`:          "a&lt;b",
		`join(["a", inputs.s], "-")`:              "a-a<b",
		`toJSON(inputs.m)`:                        "{\n  \"k\": [\n    1,\n    2\n  ]\n}",
		`string(inputs.list)`:                     "[1 b [2]]",
		`flatten(inputs.list)`:                    []any{1.0, "b", 2.0},
		`max(inputs.m.k)`:                         2.0,
		`median([3, 1, 2])`:                       2.0,
		`concat([1], inputs.m.k)`:                 []any{1.0, 1.0, 2.0},
		`sort([3, 1, 2])`:                         []any{1.0, 2.0, 3.0},
		`uniq([1, 1, 2])`:                         []any{1.0, 2.0},
		`split("a,b", ",")`:                       []any{"a", "b"},
		`upper(inputs.s) + lower("X")`:            "A<Bx",
		`fromJSON(toJSON(inputs.m)).k[1]`:         2.0,
		`keys(inputs.m)`:                          []any{"k"},
		`reduce([1, 2, 3], #acc + #, 0)`:          6.0,
		`map(filter([1, 2, 3], # > 1), # * 2)`:    []any{4.0, 6.0},
		`all(inputs.m.k, # > 0)`:                  true,
		`count(inputs.list, # == "b")`:            1.0,
		`toBase64(inputs.s) + fromBase64("YQ==")`: "YTxi" + "a",
	}
	for src, want := range cases {
		p, err := Compile(src, env, Any)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		got, err := p.Eval(context.Background(), values)
		if err != nil {
			t.Errorf("%s: %v", src, err)
			continue
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s (-want +got):\n%s", src, diff)
		}
	}
}

func TestJSONSizeIsAnUpperBound(t *testing.T) {
	for _, v := range []any{
		nil, true, 1.5, "plain", "quote\" back\\ <tag> & \u2028 \x01 é \xff",
		[]any{1.0, "a", []any{}, map[string]any{"k<": []any{nil, false}}},
		map[string]any{"a": map[string]any{"b": map[string]any{"c": "d"}}},
	} {
		b, err := json.MarshalIndent(v, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		if n, ok := jsonSize(v, MaxValueBytes); !ok || n < len(b) {
			t.Errorf("jsonSize(%#v) = %d, %v; its JSON has %d bytes", v, n, ok, len(b))
		}
	}
	if _, ok := jsonSize([]any{strings.Repeat("x", 100)}, 50); ok {
		t.Error("a value over the limit fits")
	}
}

func TestMessagesQuoteLongExpressionsShort(t *testing.T) {
	src := `repeat("` + strings.Repeat("é", 200) + `", 999999)`
	p, err := Compile(src, Env{}, Any)
	if err != nil {
		t.Fatal(err)
	}
	_, err = p.Eval(context.Background(), nil)
	if err == nil || len(err.Error()) > 300 || !strings.Contains(err.Error(), `"...`) {
		t.Errorf("message %q (%d bytes) should quote a short prefix", err, len(err.Error()))
	}
}

func TestTemplatesAndValuesAreBoundedInAll(t *testing.T) {
	env := Env{Inputs: map[string]Type{"s": StringType}}
	values := map[string]any{"inputs": map[string]any{"s": strings.Repeat("x", 1<<20)}}
	tmpl, errs := CompileTemplate(strings.Repeat("${{ inputs.s }}", 5), env)
	if errs != nil {
		t.Fatal(errs[0])
	}
	if _, err := tmpl.Render(context.Background(), values); !IsLimit(err) {
		t.Errorf("5 MiB interpolated: err = %v, want a limit", err)
	}
	exact, errs := CompileTemplate("${{ inputs.s }}", env)
	if errs != nil {
		t.Fatal(errs[0])
	}
	var items []*Value
	for i := 0; i < 5; i++ {
		items = append(items, FromTemplate(exact))
	}
	_, err := List(items).Render(context.Background(), values)
	if !IsLimit(err) || !strings.HasPrefix(err.Error(), "/3: ") {
		t.Errorf("five 1 MiB values in one with: err = %v, want a limit at /3, the fourth", err)
	}
	if _, err := List(items[:3]).Render(context.Background(), values); err != nil {
		t.Errorf("three 1 MiB values: %v", err)
	}
}

func TestNodeLimit(t *testing.T) {
	src := "1" + strings.Repeat(" + 1", MaxNodes)
	_, err := Compile(src, Env{}, Any)
	var ce *Error
	if !errors.As(err, &ce) || !strings.Contains(ce.Msg, "more than 2000 nodes") || ce.Line != 1 || ce.Col < 2 {
		t.Fatalf("err = %#v, want the node limit with a position", err)
	}
	if _, err := Compile("1"+strings.Repeat(" + 1", MaxNodes/2-1), Env{}, Any); err != nil {
		t.Fatalf("within the limit: %v", err)
	}
}

// FuzzEval compiles and evaluates arbitrary expressions against inputs of
// every type: none may crash the process (out of memory, stack overflow:
// the fuzzer reports them), and what one yields is within MaxValueBytes.
func FuzzEval(f *testing.F) {
	for _, tc := range hostile {
		f.Add(tc.src)
	}
	for _, src := range []string{`inputs.list[0] + 1`, `toJSON(inputs.list)`, `map(inputs.list, # * 2)`, `"a" + "b"`,
		`inputs.list == inputs.list`, `1 in inputs.list`, `reduce(inputs.list, #acc + #, 0)`, `join(map(inputs.list, string(#)), ",")`} {
		f.Add(src)
	}
	env, values := hostileEnv()
	defer func(d time.Duration) { EvalTimeout = d }(EvalTimeout)
	EvalTimeout = time.Second
	f.Fuzz(func(t *testing.T, src string) {
		p, err := Compile(src, env, Any)
		if err != nil {
			return
		}
		out, err := p.Eval(context.Background(), values)
		if err != nil {
			return
		}
		if n, ok := Size(out); !ok {
			t.Fatalf("%q yielded %d bytes or more", src, n)
		}
	})
}
