package runbook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

const inputsRunbook = `version: 1
name: inputs
inputs:
  mode: { type: string, enum: [planned, unplanned], default: planned }
  count: { type: number, default: 1 }
  enabled: { type: bool, default: false }
  regions: { type: list, default: [eu-west-1] }
  primary: { type: map, required: true }
  token: { type: string, secret: true, default: "" }
  pin: { type: number, secret: true, default: 0 }
  version: { type: string, default: "1.0" }
  extra: { type: list }
steps:
  - { id: a, uses: core.log, with: { message: "${{ inputs.mode }}" } }
`

func inputsRB(t *testing.T) *Runbook {
	t.Helper()
	rb, ds := parse(t, inputsRunbook)
	if rb == nil {
		t.Fatal(ds)
	}
	return rb
}

var varsDir = filepath.Join(corpus, "vars")

func TestResolveInputs(t *testing.T) {
	t.Parallel()
	config := filepath.Join(varsDir, "config.json")
	prod := filepath.Join(varsDir, "prod.yaml")
	defaults := map[string]any{"mode": "planned", "count": float64(1), "enabled": false, "regions": []any{"eu-west-1"},
		"token": "", "pin": float64(0), "version": "1.0", "extra": []any{}}
	with := func(kv ...any) map[string]any {
		m := map[string]any{}
		for k, v := range defaults {
			m[k] = v
		}
		for i := 0; i < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	configValue := map[string]any{"aws_region": "eu-west-1", "dr_region": "eu-west-3", "replicas": float64(3),
		"features": []any{"sso", "vcs"}, "database": map[string]any{"cluster": "spacelift", "port": float64(5432)}}
	tests := map[string]struct {
		src   InputSources
		want  map[string]any
		diags []string
	}{
		"defaults and a map from @file": {
			src:  InputSources{Vars: []string{"primary=@" + config}},
			want: with("primary", configValue),
		},
		"map from inline JSON and YAML": {
			src:  InputSources{Vars: []string{`primary={"a": 1}`, `regions=[a, b]`}},
			want: with("primary", map[string]any{"a": float64(1)}, "regions", []any{"a", "b"}),
		},
		"coercion from text": {
			src:  InputSources{Vars: []string{"primary={}", "count=2.5", "enabled=yes", "mode=unplanned", "version=2"}},
			want: with("primary", map[string]any{}, "count", 2.5, "enabled", true, "mode", "unplanned", "version", "2"),
		},
		"bool spellings": {
			src:  InputSources{Vars: []string{"primary={}", "enabled=0"}, Env: []string{"RUNBOOK_VAR_enabled=TRUE"}},
			want: with("primary", map[string]any{}, "enabled", false),
		},
		"precedence default < var-file < env < --var": {
			src: InputSources{
				VarFiles: []string{prod},
				Env:      []string{"PATH=/bin", "RUNBOOK_VAR_count=7", "RUNBOOK_VAR_MODE=planned", "RUNBOOK_VAR_primary={\"from\": \"env\"}"},
				Vars:     []string{"count=9"},
			},
			want: with("mode", "planned", "count", float64(9), "enabled", true, "regions", []any{"eu-west-1", "eu-west-3"},
				"version", "1.10", "primary", map[string]any{"from": "env"}),
		},
		"later var files win": {
			src:  InputSources{VarFiles: []string{prod, writeTemp(t, "b.yaml", "count: 6\nprimary: {x: y}\n")}},
			want: with("mode", "unplanned", "count", float64(6), "enabled", true, "regions", []any{"eu-west-1", "eu-west-3"}, "version", "1.10", "primary", map[string]any{"x": "y"}),
		},
		"a string input from @file takes its text": {
			src:  InputSources{Vars: []string{"primary={}", "token=@" + filepath.Join(varsDir, "token.txt"), "version=@@1"}},
			want: with("primary", map[string]any{}, "token", "s3cr3t-t0ken", "version", "@1"),
		},
		"partial: only the values given, for resume": {
			src:  InputSources{Partial: true, Vars: []string{"count=4"}, Env: []string{"RUNBOOK_VAR_mode=unplanned"}},
			want: map[string]any{"count": float64(4), "mode": "unplanned"},
		},
		"partial still checks what is given": {
			src:   InputSources{Partial: true, Vars: []string{"count=four"}},
			diags: []string{`--var count: input count must be a number, not "four"`},
		},
		"missing required": {
			src:   InputSources{},
			diags: []string{`rb.yaml:8:3: input primary is required: give it with --var primary=..., in a --var-file, or in RUNBOOK_VAR_primary`},
		},
		"unknown names": {
			src: InputSources{Vars: []string{"primary={}", "mdoe=planned", "zzz=1"}, Env: []string{"RUNBOOK_VAR_regoins=[]"}},
			diags: []string{
				`--var mdoe: unknown input "mdoe" (did you mean "mode"?)`,
				`--var zzz: unknown input "zzz" (the runbook declares mode, count, enabled, regions, primary, token, pin, version, extra)`,
				`RUNBOOK_VAR_regoins: warning: unknown input "regoins" (did you mean "regions"?)`,
			},
		},
		"malformed --var": {
			src:   InputSources{Vars: []string{"primary={}", "mode"}},
			diags: []string{`--var mode: --var takes name=value (or name=@file), not "mode"`},
		},
		"type and enum errors from the command line": {
			src: InputSources{Vars: []string{"primary=[1]", "count=lots", "enabled=maybe", "mode=sideways", "regions={a: 1}", "pin=1234x"}},
			diags: []string{
				`--var count: input count must be a number, not "lots"`,
				`--var enabled: input enabled must be true or false (or yes/no, 1/0), not "maybe"`,
				`--var mode: input mode must be one of "planned", "unplanned", not "sideways"`,
				`--var pin: input pin must be a number, not (secret value)`,
				`--var primary: input primary must be a mapping, not a list`,
				`--var regions: input regions must be a list, not a mapping`,
			},
		},
		"var file mistakes are positioned": {
			src: InputSources{Vars: []string{"primary={}"}, VarFiles: []string{filepath.Join(varsDir, "mistakes.yaml")}},
			diags: []string{
				varsDir + `/mistakes.yaml:1:7: input mode must be one of "planned", "unplanned", not "sideways"`,
				varsDir + `/mistakes.yaml:2:8: input count must be a number, not "many"`,
				varsDir + `/mistakes.yaml:3:1: unknown input "regoins" (did you mean "regions"?)`,
				varsDir + `/mistakes.yaml:4:6: input pin must be a number, not (secret value)`,
				varsDir + `/mistakes.yaml:5:10: input enabled must be true or false (or yes/no, 1/0), not "maybe"`,
			},
		},
		"broken JSON file bound with @": {
			src:   InputSources{Vars: []string{"primary=@" + filepath.Join(varsDir, "broken.json")}},
			diags: []string{varsDir + `/broken.json:3:17: JSON syntax error: invalid character ',' looking for beginning of object key string`},
		},
		"broken YAML var file": {
			src:   InputSources{Vars: []string{"primary={}"}, VarFiles: []string{filepath.Join(varsDir, "broken.yaml")}},
			diags: []string{varsDir + `/broken.yaml:2:1: YAML syntax error: did not find expected ',' or ']'`},
		},
		"unreadable files": {
			src: InputSources{Vars: []string{"primary=@" + filepath.Join(varsDir, "nope.json")}, VarFiles: []string{filepath.Join(varsDir, "nope.yaml")}},
			diags: []string{
				`--var primary: ` + varsDir + `/nope.json: cannot read: no such file or directory`,
				varsDir + `/nope.yaml: var file: cannot read: no such file or directory`,
			},
		},
		"a var file that is not a mapping": {
			src:   InputSources{Vars: []string{"primary={}"}, VarFiles: []string{writeTemp(t, "list.yaml", "- a\n- b\n")}},
			diags: []string{`list.yaml:1:1: a var file must be a mapping, not a list`},
		},
		"conflicting environment spellings": {
			src:   InputSources{Vars: []string{"primary={}"}, Env: []string{"RUNBOOK_VAR_token=a", "RUNBOOK_VAR_TOKEN=b"}},
			diags: []string{`RUNBOOK_VAR_TOKEN: RUNBOOK_VAR_token and RUNBOOK_VAR_TOKEN both set input token, to different values (secret, not shown)`},
		},
	}
	rb := inputsRB(t)
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, ds := ResolveInputs(rb, tc.src)
			msgs := messages(ds)
			for i, m := range msgs {
				// Temporary files are shown by base name.
				if strings.HasPrefix(m, os.TempDir()) {
					msgs[i] = filepath.Base(strings.SplitN(m, ":", 2)[0]) + ":" + strings.SplitN(m, ":", 2)[1]
				}
			}
			want := tc.diags
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, msgs); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if ds.HasErrors() {
				if got != nil {
					t.Errorf("values returned with errors: %v", got)
				}
				return
			}
			if diff := cmp.Diff(tc.want, got); diff != "" {
				t.Errorf("values (-want +got):\n%s", diff)
			}
		})
	}
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	dir, err := os.MkdirTemp("", "runbook-vars")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	path := filepath.Join(dir, name)
	if err := os.WriteFile(path, []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return path
}

// TestSecretsNeverEchoed: whatever goes wrong with a secret input, its
// value is not in any diagnostic.
func TestSecretsNeverEchoed(t *testing.T) {
	rb, ds := parse(t, `version: 1
inputs:
  token: { type: string, secret: true, enum: [a-valid-token] }
  pin: { type: number, secret: true }
  keys: { type: list, secret: true }
  cfg: { type: map, secret: true }
steps:
  - { id: a, uses: core.log, with: { message: hi } }
`)
	if rb == nil {
		t.Fatal(ds)
	}
	const secret = "hunter2"
	file := writeTemp(t, "s.yaml", "token: hunter2\npin: hunter2\nkeys: hunter2\ncfg: {a: [hunter2\n")
	for _, src := range []InputSources{
		{Vars: []string{"token=" + secret, "pin=" + secret, "keys=" + secret, "cfg=" + secret, "keys=[" + secret, "cfg={" + secret}},
		{Env: []string{"RUNBOOK_VAR_token=" + secret, "RUNBOOK_VAR_TOKEN=" + secret + "2", "RUNBOOK_VAR_pin=" + secret}},
		{VarFiles: []string{file}},
		{VarFiles: []string{writeTemp(t, "t.yaml", "token: hunter2\npin: hunter2\nkeys: hunter2\ncfg: hunter2\n")}},
	} {
		_, ds := ResolveInputs(rb, src)
		if !ds.HasErrors() {
			t.Errorf("%+v: no error", src)
		}
		for _, d := range ds {
			if strings.Contains(d.Message, secret) {
				t.Errorf("secret echoed: %v", d)
			}
		}
	}
}

func TestRedactorHoldsTheSecretInputs(t *testing.T) {
	rb, ds := parse(t, `version: 1
inputs:
  token: { type: string, secret: true, default: "" }
  creds: { type: map, secret: true }
  pin: { type: number, secret: true }
  name: { type: string }
steps:
  - { id: a, uses: core.log, with: { message: hi } }
`)
	if rb == nil {
		t.Fatal(ds)
	}
	red := rb.Redactor(map[string]any{
		"token": "",
		"creds": map[string]any{"user": "admin", "keys": []any{"key1", "key2", float64(3)}, "nested": map[string]any{"k": "admin"}},
		"pin":   float64(4321),
		"name":  "public",
	})
	if got := red.String("admin key1 key2 4321 public"); got != "*** *** *** *** public" {
		t.Errorf("text: %q", got)
	}
	// 3 is too short to look for in text: it is masked as a whole value.
	if diff := cmp.Diff(map[string]any{"n": "***", "m": "3 apples"}, red.Value(map[string]any{"n": 3.0, "m": "3 apples"})); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
}
