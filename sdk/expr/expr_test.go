package expr

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/schema"
)

func testEnv() Env {
	outputs := &schema.Schema{Type: schema.Object, Closed: true, Properties: map[string]*schema.Schema{
		"writer_region": {Type: schema.String},
		"counts":        {Type: schema.Object, Additional: &schema.Schema{Type: schema.Integer}},
		"lag_ms":        {Type: schema.Number},
	}}
	return Env{
		Inputs: map[string]Type{"dr_region": InputType("string"), "mode": InputType("string"), "n": InputType("number"), "primary": InputType("map")},
		Steps:  map[string]Type{"db": SchemaType(outputs)},
	}
}

func testScope() *Scope {
	return &Scope{
		Inputs: map[string]any{"dr_region": "eu-west-3", "mode": "planned", "n": 2.0, "primary": map[string]any{"aws_region": "eu-west-1"}},
		Steps: map[string]StepValues{"db": {Status: "succeeded", Outputs: map[string]any{
			"writer_region": "eu-west-3", "counts": map[string]any{"server": 2.0}, "lag_ms": 12.5}}},
		RunID: "r1", RunMode: "apply",
	}
}

func TestCompileErrors(t *testing.T) {
	env := testEnv()
	cases := map[string]struct {
		src  string
		kind Kind
		want string
	}{
		"unknown input":       {"inputs.dr_regoin == 'x'", Bool, "dr_regoin"},
		"unknown step":        {"steps.dns.status", Any, "dns"},
		"unknown output":      {"steps.db.outputs.writer", Any, "writer"},
		"not bool":            {"inputs.dr_region", Bool, "bool"},
		"syntax":              {"inputs.mode ==", Any, "unexpected"},
		"outputs not visible": {"outputs.x", Any, "outputs"},
		"type mismatch":       {"inputs.n + 'a'", Any, "mismatched"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			_, err := Compile(tc.src, env, tc.kind)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("err = %v, want it to mention %q", err, tc.want)
			}
			if e, ok := err.(*Error); !ok || e.Line < 1 || e.Col < 1 {
				t.Fatalf("err %#v has no position", err)
			}
		})
	}
}

func TestEvalAndRefs(t *testing.T) {
	env := testEnv()
	p, err := Compile(`inputs.mode == "planned" && steps.db.outputs.writer_region == inputs.dr_region && steps.db.outputs.counts.server > 1`, env, Bool)
	if err != nil {
		t.Fatal(err)
	}
	ok, err := p.EvalBool(context.Background(), testScope().Map())
	if err != nil || !ok {
		t.Fatalf("got %v, %v", ok, err)
	}
	if diff := cmp.Diff(Refs{Steps: []string{"db"}, Inputs: []string{"dr_region", "mode"}, Env: []string{"inputs", "steps"}}, p.Refs()); diff != "" {
		t.Fatal(diff)
	}
	// Open maps (installer configs) accept any key.
	if _, err := Compile("inputs.primary.aws_region", env, Any); err != nil {
		t.Fatal(err)
	}
}

func TestTemplates(t *testing.T) {
	env := testEnv()
	scope := testScope().Map()
	cases := map[string]any{
		"${{ inputs.n }}":                              2.0,
		"${{ steps.db.outputs.counts }}":               map[string]any{"server": 2.0},
		"to ${{ inputs.dr_region }} (${{ inputs.n }})": "to eu-west-3 (2)",
		"lag ${{ steps.db.outputs.lag_ms }}ms":         "lag 12.5ms",
		"plain":                                        "plain",
		"$${{ not an expression }}":                    "${{ not an expression }}",
	}
	for src, want := range cases {
		tm, errs := CompileTemplate(src, env)
		if errs != nil {
			t.Fatalf("%s: %v", src, errs[0])
		}
		got, err := tm.Render(context.Background(), scope)
		if err != nil {
			t.Fatalf("%s: %v", src, err)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("%s: %s", src, diff)
		}
	}
}

func TestTemplateErrorOffsets(t *testing.T) {
	env := testEnv()
	src := "to ${{ inputs.nope }} and ${{ steps.db.outputs.writer_region }"
	_, errs := CompileTemplate(src, env)
	if len(errs) != 1 || !strings.Contains(errs[0].Msg, "unterminated") || errs[0].Offset != strings.Index(src, "${{ steps") {
		t.Fatalf("errs = %+v", errs)
	}
	src = "to ${{ inputs.nope }}"
	_, errs = CompileTemplate(src, env)
	if len(errs) != 1 || errs[0].Offset < strings.Index(src, "inputs") {
		t.Fatalf("errs = %+v", errs[0])
	}
}

func TestValuePartial(t *testing.T) {
	env := testEnv()
	tm, _ := CompileTemplate("${{ steps.db.outputs.writer_region }}", env)
	in, _ := CompileTemplate("${{ inputs.dr_region }}", env)
	v := Mapping([]string{"region", "target", "list"}, []*Value{
		FromTemplate(in), FromTemplate(tm), List([]*Value{Static("a"), FromTemplate(tm)}),
	})
	got, unknown, err := v.RenderPartial(context.Background(), testScope().Map(), func(r Refs) bool { return len(r.Steps) > 0 })
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"region": "eu-west-3", "target": nil, "list": []any{"a", nil}}, got); diff != "" {
		t.Fatal(diff)
	}
	if diff := cmp.Diff([]string{"/target", "/list/1"}, unknown); diff != "" {
		t.Fatal(diff)
	}
	if v.IsStatic() {
		t.Fatal("IsStatic = true")
	}
}

func TestRecoveryTimeArithmetic(t *testing.T) {
	env := testEnv()
	p, err := Compile(`string(date(steps.db.finished_at) - date(run.started_at))`, env, Any)
	if err != nil {
		t.Fatal(err)
	}
	s := testScope()
	s.RunStarted = time.Date(2026, 1, 1, 3, 0, 0, 0, time.UTC)
	st := s.Steps["db"]
	st.FinishedAt = s.RunStarted.Add(83 * time.Second)
	s.Steps["db"] = st
	got, err := p.Eval(context.Background(), s.Map())
	if err != nil || got != "1m23s" {
		t.Fatalf("got %v, %v", got, err)
	}
}

func TestResultsAreJSONValues(t *testing.T) {
	env := testEnv()
	p, err := Compile(`fromPairs(map(keys(steps.db.outputs.counts), [#, 0]))`, env, Any)
	if err != nil {
		t.Fatal(err)
	}
	got, err := p.Eval(context.Background(), testScope().Map())
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"server": 0.0}, got); diff != "" {
		t.Fatal(diff)
	}
	p, err = Compile(`[1, 2, len("abc")]`, env, Any)
	if err != nil {
		t.Fatal(err)
	}
	got, _ = p.Eval(context.Background(), testScope().Map())
	if diff := cmp.Diff([]any{1.0, 2.0, 3.0}, got); diff != "" {
		t.Fatal(diff)
	}
}

func TestInputPaths(t *testing.T) {
	type path struct {
		Input  string
		Keys   string
		Offset int
		Whole  bool
	}
	cases := map[string]struct {
		src  string
		want []path
	}{
		"whole chain":               {`inputs.primary.aws_region`, []path{{"primary", "aws_region", 0, true}}},
		"deep":                      {`inputs.primary.disaster_recovery.s3_bucket_replication`, []path{{"primary", "disaster_recovery.s3_bucket_replication", 0, true}}},
		"constant index":            {`inputs.x["a key"].b`, []path{{"x", "a key.b", 0, true}}},
		"input alone":               {`inputs.mode == "planned"`, nil},
		"inside an operator":        {`"eu-" + inputs.primary.aws_region`, []path{{"primary", "aws_region", 8, false}}},
		"two, in order":             {`inputs.a.b == inputs.c.d.e`, []path{{"a", "b", 0, false}, {"c", "d.e", 14, false}}},
		"non-constant key":          {`inputs.a.b[steps.s.outputs.k]`, []path{{"a", "b", 0, false}}},
		"list index":                {`inputs.a.items[0].name`, []path{{"a", "items", 0, false}}},
		"coalesce":                  {`inputs.lb.evaluate_target_health ?? true`, nil},
		"coalesce deep":             {`inputs.a.b.c ?? 1`, []path{{"a", "b", 0, false}}},
		"coalesce of a conditional": {`(inputs.m == "p" ? inputs.a.x : inputs.b.y.z) ?? true`, []path{{"b", "y", 32, false}}},
		"coalesce chain":            {`inputs.a.x ?? inputs.b.y ?? 1`, nil},
		"condition not tolerant":    {`(inputs.a.x ? 1 : 2) ?? 3`, []path{{"a", "x", 1, false}}},
		"optional":                  {`inputs.a.b?.c`, nil},
		"optional deep":             {`inputs.a.b.c?.d.e`, []path{{"a", "b", 0, false}}},
		"compared with nil":         {`inputs.a.b.c != nil`, []path{{"a", "b", 0, false}}},
		"nil first":                 {`nil == inputs.a.b`, nil},
		"not inputs":                {`steps.db.outputs.writer_region`, nil},
		"after unicode":             {`"é" + inputs.a.b`, []path{{"a", "b", 7, false}}},
		"in a closure":              {`map(inputs.a.list, .x)`, []path{{"a", "list", 4, false}}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			a, err := Analyze(tc.src)
			if err != nil {
				t.Fatal(err)
			}
			var got []path
			for _, p := range a.Refs.InputPaths {
				got = append(got, path{p.Input, strings.Join(p.Keys, "."), p.Offset, p.Whole})
				if !strings.HasPrefix(tc.src[p.Offset:], "inputs") {
					t.Errorf("offset %d of %q is not at inputs", p.Offset, tc.src)
				}
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("paths of %q (-want +got):\n%s", tc.src, diff)
			}
		})
	}
}

func TestRefsEnv(t *testing.T) {
	cases := map[string]bool{
		`inputs.mode == "planned"`: true,
		`true`:                     true,
		`inputs.mode == "planned" && steps.a.status == "failed"`: false,
		`run.mode == "apply"`: false,
		`len(outputs) > 0`:    false,
	}
	for src, only := range cases {
		a, err := Analyze(src)
		if err != nil {
			t.Fatal(err)
		}
		if r := a.Refs; r.OnlyInputs() != only {
			t.Errorf("%q: OnlyInputs = %v (env %v)", src, r.OnlyInputs(), r.Env)
		}
	}
}
