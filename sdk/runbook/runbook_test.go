package runbook

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/expr"
)

func mustLoad(t *testing.T, path string) *Runbook {
	t.Helper()
	opts, _ := testOptions()
	rb, ds := Load(path, opts)
	if rb == nil || len(ds) > 0 {
		t.Fatalf("Load(%s):\n%v", path, ds)
	}
	return rb
}

func parse(t *testing.T, src string) (*Runbook, Diagnostics) {
	t.Helper()
	opts, _ := testOptions()
	return Parse("rb.yaml", []byte(src), opts)
}

// messages renders diagnostics one per line, as the CLI prints them.
func messages(ds Diagnostics) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.String())
	}
	return out
}

// carets shows each diagnostic under its source line, for failure messages.
func carets(src string, ds Diagnostics) string {
	lines := strings.Split(src, "\n")
	var b strings.Builder
	for _, d := range ds {
		if d.Pos.Line >= 1 && d.Pos.Line <= len(lines) {
			fmt.Fprintf(&b, "%s\n%s^ %s\n", lines[d.Pos.Line-1], strings.Repeat(" ", max(d.Pos.Col-1, 0)), d.Message)
		}
	}
	return b.String()
}

func TestLoadModel(t *testing.T) {
	path := filepath.Join(corpus, "valid", "failover.yaml")
	rb := mustLoad(t, path)
	src, _ := os.ReadFile(path)
	sum := sha256.Sum256(src)
	if rb.Hash != hex.EncodeToString(sum[:]) || rb.Path != path || string(rb.Source) != string(src) {
		t.Errorf("Hash/Path/Source not filled: %q %q", rb.Hash, rb.Path)
	}

	type stepSummary struct {
		ID, Uses, Plugin, Action string
		Timeout                  time.Duration
		Retry                    Retry
		If, Until                string
		UntilInterval, UntilFor  time.Duration
		Rollback                 string
		RollbackTimeout          time.Duration
		RollbackRetry            Retry
		MaxParallel              int
		Children                 int
		HasSpec, Continue        bool
	}
	var got []stepSummary
	milestones := map[string]string{}
	rb.Walk(func(s *Step) {
		if s.Milestone != "" {
			milestones[s.ID] = s.Milestone
		}
		ss := stepSummary{ID: s.ID, Uses: s.Uses, Plugin: s.Plugin, Action: s.Action, Timeout: s.Timeout, Retry: s.Retry,
			MaxParallel: s.MaxParallel, Children: len(s.Parallel), HasSpec: s.Spec != nil, Continue: s.ContinueOnError}
		if s.If != nil {
			ss.If = s.If.Source()
		}
		if s.Until != nil {
			ss.Until, ss.UntilInterval, ss.UntilFor = s.Until.Condition.Source(), s.Until.Interval, s.Until.Timeout
		}
		if r := s.Rollback; r != nil {
			ss.Rollback, ss.RollbackTimeout, ss.RollbackRetry = r.Uses, r.Timeout, r.Retry
			if r.Spec == nil || r.Plugin != "aws" || r.Action != "aurora_global_switchover" {
				t.Errorf("rollback of %s not resolved: %+v", s.ID, r)
			}
		}
		got = append(got, ss)
	})
	def := Retry{Attempts: 3, Delay: 2 * time.Second, MaxDelay: 30 * time.Second, Jitter: true}
	dbRetry := Retry{Attempts: 5, Delay: 5 * time.Second, MaxDelay: 30 * time.Second, Jitter: true}
	want := []stepSummary{
		{ID: "db", Uses: "aws.aurora_global_switchover", Plugin: "aws", Action: "aurora_global_switchover", Timeout: 15 * time.Minute,
			Retry: dbRetry, If: `inputs.mode == "planned"`, Until: "outputs.writer_region == inputs.dr_region",
			UntilInterval: 5 * time.Second, UntilFor: 15 * time.Minute, Rollback: "aws.aurora_global_switchover",
			RollbackTimeout: 15 * time.Minute, RollbackRetry: dbRetry, HasSpec: true},
		{ID: "confirm", Uses: "core.approve", Plugin: "core", Action: "approve", Timeout: 10 * time.Minute, Retry: def, HasSpec: true},
		{ID: "traffic", MaxParallel: 2, Children: 2},
		{ID: "dns_server", Uses: "dns.route53_record", Plugin: "dns", Action: "route53_record", Timeout: 10 * time.Minute, Retry: def, HasSpec: true},
		{ID: "dns_log", Uses: "core.log", Plugin: "core", Action: "log", Timeout: 10 * time.Minute, Retry: def, HasSpec: true},
		{ID: "scale", Uses: "aws.ecs_service_scale", Plugin: "aws", Action: "ecs_service_scale", Timeout: 10 * time.Minute, Retry: def,
			Until:         `outputs.running_count == outputs.previous_desired_count || steps.dns_server.status == "succeeded"`,
			UntilInterval: 10 * time.Second, UntilFor: 20 * time.Minute, HasSpec: true},
		{ID: "check", Uses: "core.assert", Plugin: "core", Action: "assert", Timeout: 10 * time.Minute, Retry: def, HasSpec: true},
		{ID: "notify", Uses: "notify.slack", Plugin: "notify", Action: "slack", Timeout: 10 * time.Minute, Retry: def,
			If: `inputs.slack_webhook != ""`, HasSpec: true, Continue: true},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("steps (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(map[string]string{"db": "database writable", "traffic": "traffic switched"}, milestones); diff != "" {
		t.Errorf("milestones (-want +got):\n%s", diff)
	}
	if diff := cmp.Diff(Defaults{Timeout: 10 * time.Minute, Retry: def}, rb.Defaults); diff != "" {
		t.Errorf("defaults (-want +got):\n%s", diff)
	}
	type pluginSummary struct {
		Name, Command string
		Env           map[string]string
		Line          int
	}
	var plugins []pluginSummary
	for _, p := range rb.Plugins {
		plugins = append(plugins, pluginSummary{p.Name, p.Command, p.Env, p.Pos.Line})
	}
	wantPlugins := []pluginSummary{
		{"aws", "runbook-plugin-aws", nil, 11},
		{"dns", "runbook-plugin-dns", nil, 12},
		{"notify", "runbook-plugin-notify", map[string]string{"LOG_FORMAT": "json"}, 13},
	}
	if diff := cmp.Diff(wantPlugins, plugins); diff != "" {
		t.Errorf("plugins (-want +got):\n%s", diff)
	}
	var outputs []string
	for _, o := range rb.Outputs {
		outputs = append(outputs, fmt.Sprintf("%s secret=%v", o.Name, o.Secret))
	}
	if diff := cmp.Diff([]string{"writer secret=false", "hook secret=true"}, outputs); diff != "" {
		t.Errorf("outputs (-want +got):\n%s", diff)
	}
	mode := rb.Input("mode")
	if mode == nil || mode.Type != TypeString || !mode.HasDefault || mode.Default != "planned" ||
		!cmp.Equal(mode.Enum, []any{"planned", "unplanned"}) || mode.Pos.Line != 7 {
		t.Errorf("input mode = %+v", mode)
	}
	if in := rb.Input("desired"); in.Default != float64(3) {
		t.Errorf("number default = %#v, want float64(3)", in.Default)
	}
	if rb.OnFailure != OnFailureRollback || rb.Version != 1 || rb.Name != "spacelift-failover" {
		t.Errorf("runbook header: %+v", rb)
	}
}

// TestCompiledExpressionsEvaluate checks that what validation compiled
// runs against the engine's runtime scope (expr.Scope), types included.
func TestCompiledExpressionsEvaluate(t *testing.T) {
	rb := mustLoad(t, filepath.Join(corpus, "valid", "failover.yaml"))
	scope := &expr.Scope{
		Inputs: map[string]any{"mode": "planned", "dr_region": "eu-west-3", "desired": float64(3), "slack_webhook": "https://hook",
			"primary": map[string]any{"aws_region": "eu-west-1"}},
		Steps: map[string]expr.StepValues{
			"db": {Status: "succeeded", Outputs: map[string]any{"writer_region": "eu-west-3", "writer_cluster_arn": "arn:w",
				"previous_writer_cluster_arn": "arn:p"}},
			"dns_server": {Status: "succeeded"},
			"scale":      {Status: "succeeded", Outputs: map[string]any{"running_count": float64(3)}},
		},
	}
	env := scope.Map()
	if ok, err := rb.Step("db").If.EvalBool(context.Background(), env); err != nil || !ok {
		t.Errorf("db if = %v, %v", ok, err)
	}
	with, err := rb.Step("db").With.Render(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(map[string]any{"region": "eu-west-1", "global_cluster": "gc"}, with); diff != "" {
		t.Errorf("db with (-want +got):\n%s", diff)
	}
	// until and rollback read the step's own outputs as `outputs`.
	own := &expr.Scope{Inputs: scope.Inputs, Outputs: map[string]any{"writer_region": "eu-west-3", "previous_writer_cluster_arn": "arn:p"}}
	if ok, err := rb.Step("db").Until.Condition.EvalBool(context.Background(), own.Map()); err != nil || !ok {
		t.Errorf("db until = %v, %v", ok, err)
	}
	rbWith, err := rb.Step("db").Rollback.With.Render(context.Background(), own.Map())
	if err != nil || rbWith.(map[string]any)["target_cluster_arn"] != "arn:p" {
		t.Errorf("rollback with = %v, %v", rbWith, err)
	}
	scaleWith, err := rb.Step("scale").With.Render(context.Background(), env)
	if err != nil || scaleWith.(map[string]any)["desired_count"] != float64(3) {
		t.Errorf("exact ${{ }} keeps the number type: %#v, %v", scaleWith, err)
	}
	check, err := rb.Step("check").With.Render(context.Background(), env)
	if err != nil || check.(map[string]any)["that"] != true {
		t.Errorf("assert that = %#v, %v", check, err)
	}
	text, err := rb.Step("notify").With.Render(context.Background(), env)
	if err != nil || text.(map[string]any)["text"] != "Failover done: writer in eu-west-3\n" {
		t.Errorf("block scalar template = %#v, %v", text, err)
	}
}

func TestParseDiagnostics(t *testing.T) {
	t.Parallel()
	head := "version: 1\nname: t\n"
	tests := map[string]struct {
		src  string
		want []string
	}{
		"step ids are unique across groups": {
			src:  head + "steps:\n  - id: a\n    parallel:\n      - { id: b, uses: core.log, with: { message: x } }\n  - { id: b, uses: core.log, with: { message: y } }\n",
			want: []string{`rb.yaml:7:11: duplicate step id "b" (first at line 6)`},
		},
		"a rollback sees its own step": {
			src:  head + "steps:\n  - id: a\n    uses: core.log\n    with: { message: x }\n    rollback:\n      uses: core.log\n      with: { message: \"${{ steps.a.status }} ${{ steps.b.status }}\" }\n  - { id: b, uses: core.log, with: { message: y } }\n",
			want: []string{`rb.yaml:9:57: rollback.with.message: steps.b runs after this step`},
		},
		"a parallel child sees the steps before its group": {
			src: head + "steps:\n  - { id: a, uses: core.log, with: { message: x } }\n  - id: g\n    parallel:\n      - { id: b, uses: core.log, if: steps.a.status == \"succeeded\", with: { message: y } }\n  - { id: c, uses: core.log, if: steps.b.status == \"succeeded\" && steps.g.status == \"succeeded\", with: { message: z } }\n",
		},
		"nested groups": {
			src:  head + "steps:\n  - id: g\n    parallel:\n      - id: h\n        parallel:\n          - { id: a, uses: core.log, with: { message: x } }\n      - { id: b, uses: core.log, if: steps.a.status == \"ok\", with: { message: y } }\n",
			want: []string{`rb.yaml:9:44: if: steps.a runs in parallel with this step (both are in group g): it may not have finished`},
		},
		"if accepts a YAML boolean and an exact ${{ }}": {
			src: head + "inputs:\n  on: { type: bool, default: true }\nsteps:\n  - { id: a, uses: core.log, if: false, with: { message: x } }\n  - { id: b, uses: core.log, if: \"${{ inputs.on }}\", with: { message: x } }\n",
		},
		"outputs in until are typed by the action": {
			src:  head + "plugins:\n  aws: { command: x }\nsteps:\n  - id: s\n    uses: aws.ecs_service_scale\n    with: { cluster: c, service: s, desired_count: 1 }\n    until: outputs.running_count == \"3\"\n",
			want: []string{`rb.yaml:9:34: until: invalid operation: == (mismatched types float64 and string)`},
		},
		"until on core.approve": {
			src:  head + "steps:\n  - id: a\n    uses: core.approve\n    with: { message: \"ok?\" }\n    until: outputs.approved_by != \"\"\n",
			want: []string{`rb.yaml:7:5: step a: until cannot be used with core.approve`},
		},
		"secret step outputs make a secret runbook output": {
			src: head + "plugins:\n  aws: { command: x }\nsteps:\n  - { id: tok, uses: aws.get_token }\noutputs:\n  token: ${{ steps.tok.outputs.token }}\n  expiry: ${{ steps.tok.outputs.expiry }}\n  all: ${{ steps.tok.outputs }}\n",
		},
		"a with key cannot be a template": {
			src:  head + "steps:\n  - { id: a, uses: core.log, with: { message: x, \"${{ inputs.k }}\": y } }\n",
			want: []string{`rb.yaml:4:50: with: keys cannot use ${{ }}`},
		},
		"merge keys and anchors": {
			src: head + "x-common: &common { message: shared, level: warn }\nsteps:\n  - id: a\n    uses: core.log\n    with: { <<: *common, level: error }\n  - { id: b, uses: core.log, with: *common }\n",
		},
		"only x- keys are ignored at the top": {
			src:  head + "xcommon: 1\nsteps:\n  - { id: a, uses: core.log, with: { message: x } }\n",
			want: []string{`rb.yaml:3:1: unknown key "xcommon" in the runbook (valid keys: version, name, description, inputs, plugins, defaults, on_failure, steps, finally, outputs)`},
		},
		"template literal escape": {
			src: head + "steps:\n  - { id: a, uses: core.log, with: { message: \"literal $${{ not an expression }}\" } }\n",
		},
		"retry fields": {
			src: head + "steps:\n  - id: a\n    uses: core.log\n    retry: { attempts: 0, delay: 1m, jitter: maybe, backoff: 2 }\n    with: { message: x }\n",
			want: []string{
				`rb.yaml:6:24: step a: retry: attempts must be at least 1 (1 means no retry)`,
				`rb.yaml:6:46: step a: retry: jitter must be true or false, not a string`,
				`rb.yaml:6:53: unknown key "backoff" in step a: retry (valid keys: attempts, delay, max_delay, jitter)`,
			},
		},
		"zero timeout": {
			src:  head + "steps:\n  - { id: a, uses: core.log, timeout: 0s, with: { message: x } }\n",
			want: []string{`rb.yaml:4:39: step a: timeout must be greater than zero`},
		},
		"name must be a string": {
			src:  "version: 1\nname: 12\nsteps:\n  - { id: a, uses: core.log, with: { message: x } }\n",
			want: []string{`rb.yaml:2:7: name must be a string, not an integer (12) (quote it: "12")`},
		},
		"steps must be a list": {
			src:  head + "steps: { a: 1 }\n",
			want: []string{`rb.yaml:3:8: steps must be a list of steps (each starting with - id: ...), not a mapping`},
		},
		"missing steps": {
			src:  head,
			want: []string{`rb.yaml:1:1: steps is missing: a runbook needs at least one step`},
		},
		"finally steps only read": {
			src: head + "steps:\n  - id: a\n    uses: core.log\n    with: { message: hi }\nfinally:\n  - id: f\n    uses: core.log\n    with: { message: \"a ${{ steps.a.status }}\" }\n  - id: g\n    uses: core.approve\n    milestone: m\n    with: { message: x }\n    rollback: { uses: core.log, with: { message: y } }\n",
			want: []string{
				`rb.yaml:12:11: finally step g: core.approve is not read-only; finally steps run after a failure and its rollbacks and may only read`,
				`rb.yaml:13:5: finally step g: a finally step marks no milestone (it runs after the run's outcome is decided)`,
				`rb.yaml:15:5: finally step g: a finally step only reads, so it has no rollback`,
			},
		},
		"exact template of a list for a list param": {
			src:  head + "inputs:\n  vals: { type: list, default: [a] }\n  n: { type: number, default: 1 }\nplugins:\n  dns: { command: x }\nsteps:\n  - id: r\n    uses: dns.route53_record\n    with: { zone: z, name: n, values: \"${{ inputs.vals }}\", ttl: \"${{ inputs.n * 60 }}\", type: \"${{ inputs.vals }}\" }\n",
			want: []string{`rb.yaml:11:97: with.type: must be a string, but ${{ inputs.vals }} is a list`},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			rb, ds := parse(t, tc.src)
			want := tc.want
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, messages(ds)); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s\n%s", diff, carets(tc.src, ds))
			}
			if (rb == nil) != ds.HasErrors() {
				t.Errorf("runbook returned = %v with errors = %v", rb != nil, ds.HasErrors())
			}
		})
	}
}

func TestSecretOutputs(t *testing.T) {
	rb, ds := parse(t, "version: 1\nplugins:\n  aws: { command: x }\nsteps:\n  - { id: tok, uses: aws.get_token }\noutputs:\n  token: ${{ steps.tok.outputs.token }}\n  expiry: ${{ steps.tok.outputs.expiry }}\n  all: ${{ steps.tok.outputs }}\n")
	if rb == nil {
		t.Fatal(ds)
	}
	got := map[string]bool{}
	for _, o := range rb.Outputs {
		got[o.Name] = o.Secret
	}
	if diff := cmp.Diff(map[string]bool{"token": true, "expiry": false, "all": true}, got); diff != "" {
		t.Errorf("secret outputs (-want +got):\n%s", diff)
	}
	if rb.Name != "rb" {
		t.Errorf("name defaults to the file name: %q", rb.Name)
	}
}

// TestIndependentMistakes: N unrelated mistakes give N diagnostics, each
// at its own line, sorted.
func TestIndependentMistakes(t *testing.T) {
	src := `version: 1
name: many
inputs:
  mode: { type: strin, default: planned }
  count: { type: number, default: many }
plugins:
  aws: { command: runbook-plugin-aws }
on_failure: retry
steps:
  - id: Bad-Id
    uses: core.log
    with: { message: hi }
  - id: scale
    uses: aws.ecs_service_scale
    timeout: 10
    with: { cluster: c, service: s, desired_count: 2, regoin: x }
  - id: check
    uses: core.assert
    if: steps.later.status == "succeeded"
    with: { that: "${{ steps.scale.outputs.runing_count > 0 }}" }
  - id: later
    uses: core.sleep
    retry: { attempts: 3, delai: 1s }
    with: { duration: forever }
`
	_, ds := parse(t, src)
	wantLines := []int{4, 5, 8, 10, 15, 16, 19, 20, 23, 24}
	var lines []int
	for _, d := range ds {
		lines = append(lines, d.Pos.Line)
		if d.Severity != Error {
			t.Errorf("not an error: %v", d)
		}
	}
	if diff := cmp.Diff(wantLines, lines); diff != "" {
		t.Errorf("one diagnostic per mistake, in order (-want +got lines):\n%s\n%v", diff, ds)
	}
}

func TestNoCatalog(t *testing.T) {
	src := "version: 1\nplugins:\n  aws: { command: x }\ninputs:\n  n: { type: numbr }\nsteps:\n  - { id: a, uses: aws.ecs_service_scale, with: { anything: 1 } }\n  - { id: b, uses: core.log, with: { message: \"${{ steps.a.outputs.whatever }}\" } }\n"
	rb, ds := Parse("rb.yaml", []byte(src), Options{})
	want := []string{
		`rb.yaml:5:14: input n: unknown type "numbr" (use string, number, bool, list or map; did you mean "number"?)`,
		`rb.yaml:7:20: step a: cannot check aws.ecs_service_scale: no plugin catalog (the plugins are unknown)`,
	}
	if rb != nil {
		t.Error("a runbook was returned with errors")
	}
	if diff := cmp.Diff(want, messages(ds)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
	// Built-ins need no catalog.
	if rb, ds := Parse("rb.yaml", []byte("version: 1\nsteps:\n  - { id: a, uses: core.log, with: { message: hi } }\n"), Options{}); rb == nil {
		t.Errorf("core actions without a catalog: %v", ds)
	}
}

func TestCatalogCalledOnceWithDeclaredPlugins(t *testing.T) {
	c := newFakeCatalog()
	c.errs = map[string]error{"dns": fmt.Errorf("checksum mismatch for runbook-plugin-dns (runbook.lock)")}
	var calls [][]string
	opts := Options{Catalog: func(refs []*PluginRef) Catalog {
		var names []string
		for _, r := range refs {
			names = append(names, r.Name+"="+r.Command)
		}
		calls = append(calls, names)
		return c
	}}
	src := "version: 1\nsteps:\n  - { id: a, uses: dns.route53_record, with: { bogus: 1 } }\n  - { id: b, uses: aws.ecs_service_scale, with: { cluster: c, service: s, desired_count: 1 } }\nplugins:\n  aws: { command: ./bin/aws }\n  dns: { command: runbook-plugin-dns }\n"
	rb, ds := Parse("rb.yaml", []byte(src), opts)
	if diff := cmp.Diff([][]string{{"aws=./bin/aws", "dns=runbook-plugin-dns"}}, calls); diff != "" {
		t.Errorf("catalog calls (-want +got):\n%s", diff)
	}
	// The failing plugin is reported once, at its declaration; its uses
	// are not checked further.
	want := []string{`rb.yaml:7:3: plugin dns: checksum mismatch for runbook-plugin-dns (runbook.lock)`}
	if diff := cmp.Diff(want, messages(ds)); diff != "" || rb != nil {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestLimits(t *testing.T) {
	t.Parallel()
	t.Run("alias bomb", func(t *testing.T) {
		// Nine levels of nine aliases: 9^9 nodes once expanded.
		var b strings.Builder
		b.WriteString("version: 1\nsteps:\n  - { id: a, uses: core.log, with: { message: hi } }\nlol0: &l0 [x, x, x, x, x, x, x, x, x]\n")
		for i := 1; i <= 9; i++ {
			fmt.Fprintf(&b, "lol%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
		}
		_, ds := parse(t, b.String())
		if len(ds) != 1 || !strings.Contains(ds[0].Message, "aliases are expanded") {
			t.Fatalf("want one alias-expansion diagnostic, got %v", ds)
		}
	})
	t.Run("alias bomb inside with", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("version: 1\nsteps:\n  - id: a\n    uses: core.log\n    with:\n      message: hi\n      l0: &l0 [x, x, x, x, x, x, x, x, x, x]\n")
		for i := 1; i <= 8; i++ {
			fmt.Fprintf(&b, "      l%d: &l%d [*l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d, *l%d]\n", i, i, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1, i-1)
		}
		_, ds := parse(t, b.String())
		if len(ds) != 1 || !strings.Contains(ds[0].Message, "aliases are expanded") {
			t.Fatalf("want one alias-expansion diagnostic, got %v", ds)
		}
	})
	t.Run("deep nesting", func(t *testing.T) {
		src := "version: 1\nsteps:\n  - id: a\n    uses: core.log\n    with: { message: hi, x: " + strings.Repeat("{a: ", 500) + "1" + strings.Repeat("}", 500) + " }\n"
		_, ds := parse(t, src)
		if len(ds) != 1 || ds[0].Message != "nesting is deeper than 64 levels" || ds[0].Pos.Line != 5 {
			t.Fatalf("got %v", ds)
		}
	})
	t.Run("deeper than yaml.v3 allows", func(t *testing.T) {
		src := "version: 1\nx: " + strings.Repeat("[", 20000) + strings.Repeat("]", 20000) + "\n"
		_, ds := parse(t, src)
		if len(ds) != 1 || !strings.Contains(ds[0].Message, "exceeded max depth") {
			t.Fatalf("got %v", ds)
		}
	})
	t.Run("too many steps", func(t *testing.T) {
		var b strings.Builder
		b.WriteString("version: 1\nsteps:\n")
		for i := 0; i <= MaxSteps; i++ {
			fmt.Fprintf(&b, "  - { id: s%d, uses: core.log, with: { message: hi } }\n", i)
		}
		_, ds := parse(t, b.String())
		want := []string{fmt.Sprintf("rb.yaml:%d:5: too many steps: a runbook has at most %d (parallel children included)", MaxSteps+3, MaxSteps)}
		if diff := cmp.Diff(want, messages(ds)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("file size", func(t *testing.T) {
		src := "version: 1\n# " + strings.Repeat("x", MaxSourceBytes) + "\n"
		_, ds := parse(t, src)
		if len(ds) != 1 || !strings.Contains(ds[0].Message, "larger than 4 MiB") {
			t.Fatalf("got %v", ds)
		}
		path := filepath.Join(t.TempDir(), "big.yaml")
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
		if _, ds := Load(path, Options{}); len(ds) != 1 || !strings.Contains(ds[0].Message, "larger than 4 MiB") {
			t.Fatalf("Load: %v", ds)
		}
	})
	t.Run("too many lines", func(t *testing.T) {
		src := "version: 1\nx: [" + strings.Repeat("1,", MaxLines) + "1]\n"
		_, ds := parse(t, src)
		if len(ds) != 1 || !strings.Contains(ds[0].Message, "more than 500000 lines and list items") {
			t.Fatalf("got %v", ds)
		}
	})
	t.Run("not UTF-8", func(t *testing.T) {
		_, ds := parse(t, "version: 1\nname: \xff\n")
		if diff := cmp.Diff([]string{"rb.yaml:2:7: the file is not valid UTF-8"}, messages(ds)); diff != "" {
			t.Error(diff)
		}
	})
}

func TestLoadMissingFile(t *testing.T) {
	_, ds := Load(filepath.Join(t.TempDir(), "nope.yaml"), Options{})
	if len(ds) != 1 || !strings.Contains(ds[0].String(), "nope.yaml: cannot read: no such file or directory") {
		t.Fatalf("got %v", ds)
	}
}

// TestLanguageDocExample keeps the example at the top of the language
// reference valid.
func TestLanguageDocExample(t *testing.T) {
	doc, err := os.ReadFile("../../docs/language.md")
	if err != nil {
		t.Fatal(err)
	}
	_, rest, ok := strings.Cut(string(doc), "```yaml\n")
	example, _, ok2 := strings.Cut(rest, "```")
	if !ok || !ok2 {
		t.Fatal("no YAML example in docs/language.md")
	}
	rb, ds := parse(t, example)
	if rb == nil || len(ds) > 0 {
		t.Fatalf("the documented example does not validate:\n%v", ds)
	}
}

// TestAnchorsAndMergeKeys: merged parameters are the step's own, with
// explicit keys winning over merged ones.
func TestAnchorsAndMergeKeys(t *testing.T) {
	rb := mustLoad(t, filepath.Join(corpus, "valid", "anchors.yaml"))
	env := (&expr.Scope{Inputs: map[string]any{"cluster": "spacelift", "counts": map[string]any{"server": float64(3), "drain": float64(2)}}}).Map()
	drain, err := rb.Step("drain").With.Render(context.Background(), env)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"cluster": "spacelift", "service": "drain", "desired_count": float64(2), "region": "eu-west-3"}
	if diff := cmp.Diff(want, drain); diff != "" {
		t.Errorf("drain with (-want +got):\n%s", diff)
	}
	if r := rb.Step("drain").Retry; r != (Retry{Attempts: 4, Delay: 3 * time.Second, MaxDelay: 30 * time.Second, Jitter: false}) {
		t.Errorf("aliased retry = %+v", r)
	}
	own := (&expr.Scope{Inputs: map[string]any{"cluster": "spacelift", "counts": map[string]any{"server": float64(3)}},
		Outputs: map[string]any{"previous_desired_count": float64(1)}}).Map()
	back, err := rb.Step("server").Rollback.With.Render(context.Background(), own)
	if err != nil {
		t.Fatal(err)
	}
	want = map[string]any{"cluster": "spacelift", "service": "server", "desired_count": float64(1), "region": "eu-west-3"}
	if diff := cmp.Diff(want, back); diff != "" {
		t.Errorf("rollback with (-want +got):\n%s", diff)
	}
}
