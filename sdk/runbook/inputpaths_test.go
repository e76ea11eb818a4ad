package runbook

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// A file named .json is strict JSON, with the syntax error at its
// position; the same text in a .yaml file stays YAML.
func TestJSONFilesAreStrictJSON(t *testing.T) {
	t.Parallel()
	rb, ds := parse(t, "version: 1\ninputs:\n  primary: { type: map, required: true }\nsteps:\n  - { id: a, uses: core.log, with: { message: hi } }\n")
	if rb == nil {
		t.Fatal(ds)
	}
	bad := map[string]struct{ src, at, msg string }{
		"trailing comma":           {"{\n  \"a\": 1,\n}\n", "2:9", "a comma before } (JSON allows no trailing comma)"},
		"trailing comma in a list": {"{\"a\": [1, 2, ]}", "1:12", "a comma before ]"},
		"unquoted key":             {"{\n  a: 1\n}", "2:3", "invalid character 'a' looking for beginning of object key string"},
		"single quotes":            {"{'a': 1}", "1:2", "invalid character '\\'' looking for beginning of object key string"},
		"NaN":                      {"{\"a\": NaN}", "1:7", "invalid character 'N' looking for beginning of value"},
		"comment":                  {"{\n  // x\n  \"a\": 1\n}", "2:3", "invalid character '/'"},
		"two values":               {"{}\n{}", "2:1", "after top-level value"},
		"truncated":                {"{\"a\": [1,", "1:9", "unexpected end of JSON input"},
	}
	for name, tc := range bad {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			f := filepath.Join(dir, "config.json")
			if err := os.WriteFile(f, []byte(tc.src), 0o644); err != nil {
				t.Fatal(err)
			}
			want := f + ":" + tc.at + ": JSON syntax error: "
			for _, src := range []InputSources{{Vars: []string{"primary=@" + f}}, {VarFiles: []string{f}}} {
				_, ds := ResolveInputs(rb, src)
				var found []string
				for _, d := range ds {
					if strings.HasPrefix(d.Pos.File, dir) {
						found = append(found, d.String())
					}
				}
				if len(found) != 1 || !strings.HasPrefix(found[0], want) || !strings.Contains(found[0], tc.msg) {
					t.Errorf("%+v: diagnostics %q, want one starting %q with %q", src, messages(ds), want, tc.msg)
				}
			}
		})
	}
	// Valid JSON that YAML reads differently or not at all: the value is
	// what encoding/json makes of it (numbers float64, maps map[string]any).
	good := map[string]string{
		"tab indentation":    "{\n\t\"a\": {\n\t\t\"b\": [1, 2.5, -3e2]\n\t}\n}",
		"colon on its line":  "{\"a\"\n  : \"b\"}",
		"escapes":            `{"s": "tab\there \u00e9 \ud83d\ude00 \/ \"q\""}`,
		"big numbers":        `{"n": 9007199254740992, "m": 1e300, "z": -0, "s": 2.2250738585072014e-308}`,
		"literals":           `{"t": true, "f": false, "n": null, "e": {}, "l": []}`,
		"a byte order mark":  "\ufeff{\"a\": 1}",
		"keys YAML resolves": `{"y": "yes", "on": 1, "null": "~", "1": "x"}`,
	}
	for name, src := range good {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			f := filepath.Join(t.TempDir(), "config.json")
			if err := os.WriteFile(f, []byte(src), 0o644); err != nil {
				t.Fatal(err)
			}
			var want any
			if err := json.Unmarshal([]byte(strings.TrimPrefix(src, "\ufeff")), &want); err != nil {
				t.Fatal(err)
			}
			got, ds := ResolveInputs(rb, InputSources{Vars: []string{"primary=@" + f}})
			if ds.HasErrors() {
				t.Fatal(ds)
			}
			if diff := cmp.Diff(want, got["primary"]); diff != "" {
				t.Errorf("value (-encoding/json +got):\n%s", diff)
			}
		})
	}
	t.Run("yaml stays yaml", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "config.yaml")
		if err := os.WriteFile(f, []byte("{a: 1, 'b': [x,],}\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		got, ds := ResolveInputs(rb, InputSources{Vars: []string{"primary=@" + f}})
		if ds.HasErrors() {
			t.Fatal(ds)
		}
		if diff := cmp.Diff(map[string]any{"a": float64(1), "b": []any{"x"}}, got["primary"]); diff != "" {
			t.Error(diff)
		}
	})
	// Numbers a float64 cannot hold are refused, not rounded (numbers.go).
	t.Run("numbers out of range", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(f, []byte(`{"n": 12345678901234567890123, "o": 1e400, "u": 1e-400}`), 0o644); err != nil {
			t.Fatal(err)
		}
		_, ds := ResolveInputs(rb, InputSources{Vars: []string{"primary=@" + f}})
		want := []string{
			f + ":1:7: input primary: 12345678901234567890123 is an integer too large to be held exactly (the limit is 9007199254740992): quote it to keep it as text",
			f + ":1:37: input primary: 1e400 is too large for a number (at most about 1.8e308)",
			f + ":1:49: input primary: 1e-400 is too small to be held as a number (below about 2.2e-308): write 0 if zero is meant",
		}
		if diff := cmp.Diff(want, messages(ds)); diff != "" {
			t.Errorf("(-want +got):\n%s", diff)
		}
	})
	t.Run("duplicate keys", func(t *testing.T) {
		t.Parallel()
		f := filepath.Join(t.TempDir(), "config.json")
		if err := os.WriteFile(f, []byte("{\n  \"a\": 1,\n  \"a\": 2\n}"), 0o644); err != nil {
			t.Fatal(err)
		}
		_, ds := ResolveInputs(rb, InputSources{Vars: []string{"primary=@" + f}})
		if want := f + `:3:3: duplicate key "a" in input primary (first at line 2)`; len(ds) != 1 || ds[0].String() != want {
			t.Errorf("diagnostics %q, want %q", messages(ds), want)
		}
	})
}

const pathsRunbook = `version: 1
name: paths
inputs:
  primary: { type: map, required: true }
  lb: { type: map, default: { dns_name: a.example.com } }
  traffic: { type: string, default: route53 }
  opt: { type: map }
  vault: { type: map, secret: true, default: { token: t } }
plugins:
  aws: { command: runbook-plugin-aws }
steps:
  - id: scale
    uses: aws.ecs_service_scale
    with:
      cluster: ${{ inputs.primary.ecs.cluster }}
      service: server
      desired_count: ${{ inputs.primary.ecs.count }}
      region: '${{ inputs.primary["aws_region"] }}'
  - id: note
    uses: core.log
    with: { message: "to ${{ inputs.primary.aws_region }} via ${{ inputs.lb.dns_name }}, ${{ inputs.lb.weight ?? 1 }} ${{ inputs.lb.x?.y }}" }
  - id: dns
    if: inputs.traffic == "cloudflare"
    parallel:
      - id: cf
        if: inputs.opt.enabled
        uses: core.log
        with: { message: "${{ inputs.opt.zone }}" }
  - id: later
    if: steps.scale.status == "succeeded"
    uses: core.log
    with: { message: "${{ inputs.primary.disaster_recovery.bucket }}" }
  - id: secret
    uses: core.log
    with: { message: "${{ inputs.vault.token }}" }
outputs:
  region: ${{ inputs.primary.aws_region }}
`

func TestInputPathsAreRecorded(t *testing.T) {
	t.Parallel()
	rb, ds := parse(t, pathsRunbook)
	if rb == nil {
		t.Fatal(ds)
	}
	var got []string
	for _, p := range rb.InputPaths {
		s := fmt.Sprintf("%s %s %s guards=%d", p.Pos, p.Expr(), p.What, len(p.Guards))
		if p.Param != nil {
			s += fmt.Sprintf(" param=%s(%s)", p.Uses, p.Param.Type)
		}
		got = append(got, s)
	}
	want := []string{
		"rb.yaml:15:20 inputs.primary.ecs.cluster with.cluster guards=0 param=aws.ecs_service_scale(string)",
		"rb.yaml:17:26 inputs.primary.ecs.count with.desired_count guards=0 param=aws.ecs_service_scale(integer)",
		"rb.yaml:18:20 inputs.primary.aws_region with.region guards=0 param=aws.ecs_service_scale(string)",
		"rb.yaml:21:30 inputs.primary.aws_region with.message guards=0",
		"rb.yaml:21:67 inputs.lb.dns_name with.message guards=0",
		// inputs.lb.weight ?? 1 and inputs.lb.x?.y require nothing below lb.
		"rb.yaml:26:13 inputs.opt.enabled if guards=1",
		"rb.yaml:28:31 inputs.opt.zone with.message guards=2 param=core.log(string)",
		"rb.yaml:32:27 inputs.primary.disaster_recovery.bucket with.message guards=1 param=core.log(string)",
		"rb.yaml:35:27 inputs.vault.token with.message guards=0 param=core.log(string)",
		"rb.yaml:37:15 inputs.primary.aws_region outputs.region guards=0",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("input paths (-want +got):\n%s\n%s", diff, carets(pathsRunbook, pathDiags(rb)))
	}
}

// pathDiags shows recorded paths as diagnostics, for carets.
func pathDiags(rb *Runbook) Diagnostics {
	var ds Diagnostics
	for _, p := range rb.InputPaths {
		ds = append(ds, Diagnostic{Pos: p.Pos, Message: p.Expr()})
	}
	return ds
}

func TestResolveInputsChecksTheFieldsTheRunbookReads(t *testing.T) {
	t.Parallel()
	rb, ds := parse(t, pathsRunbook)
	if rb == nil {
		t.Fatal(ds)
	}
	dir := t.TempDir()
	file := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := `{"aws_region": "eu-west-1", "ecs": {"cluster": "c", "count": 2}, "disaster_recovery": {"bucket": "b"}}`
	tests := map[string]struct {
		src   InputSources
		diags []string
	}{
		"everything there": {
			src: InputSources{Vars: []string{"primary=" + good}},
		},
		"a field missing, in a JSON file": {
			src: InputSources{Vars: []string{"primary=@" + file("missing.json", "{\n  \"ecs\": {\"cluster\": \"c\", \"count\": 2},\n  \"disaster_recovery\": {\"bucket\": \"b\"}\n}\n")}},
			diags: []string{
				"missing.json:1:1: aws_region is missing; rb.yaml:18:20 passes inputs.primary.aws_region to with.region of aws.ecs_service_scale (and 2 more place(s))",
			},
		},
		"deep: at the deepest node there": {
			src:   InputSources{Vars: []string{"primary=@" + file("deep.json", "{\n  \"aws_region\": \"r\",\n  \"ecs\": {\"cluster\": \"c\", \"count\": 2},\n  \"disaster_recovery\": {\n    \"other\": 1\n  }\n}\n")}},
			diags: []string{"deep.json:4:24: disaster_recovery.bucket is missing; rb.yaml:32:27 passes inputs.primary.disaster_recovery.bucket to with.message of core.log"},
		},
		"null, not a mapping, wrong types, in a YAML var file": {
			src: InputSources{VarFiles: []string{file("vars.yaml", "primary:\n  aws_region: null\n  ecs:\n    cluster: 3\n    count: 2.5\n  disaster_recovery: [b]\n")}},
			diags: []string{
				"vars.yaml:2:15: aws_region is null; rb.yaml:18:20 passes inputs.primary.aws_region to with.region of aws.ecs_service_scale (and 2 more place(s))",
				"vars.yaml:4:14: ecs.cluster must be a string, not an integer; rb.yaml:15:20 passes inputs.primary.ecs.cluster to with.cluster of aws.ecs_service_scale",
				"vars.yaml:5:12: ecs.count must be an integer, not a number; rb.yaml:17:26 passes inputs.primary.ecs.count to with.desired_count of aws.ecs_service_scale",
				"vars.yaml:6:22: disaster_recovery is a list, not a mapping; rb.yaml:32:27 passes inputs.primary.disaster_recovery.bucket to with.message of core.log",
			},
		},
		"from the command line": {
			src:   InputSources{Vars: []string{`primary={"aws_region": "r", "ecs": {"cluster": "c", "count": -1}, "disaster_recovery": {"bucket": "b"}}`}},
			diags: []string{"--var primary: ecs.count must be at least 0; rb.yaml:17:26 passes inputs.primary.ecs.count to with.desired_count of aws.ecs_service_scale"},
		},
		"from the environment": {
			src:   InputSources{Env: []string{"RUNBOOK_VAR_primary=" + good, `RUNBOOK_VAR_lb={"weight": 2}`}},
			diags: []string{"RUNBOOK_VAR_lb: dns_name is missing; rb.yaml:21:67 reads inputs.lb.dns_name"},
		},
		"a step whose if reads only inputs and is false is not checked": {
			src: InputSources{Vars: []string{"primary=" + good, "traffic=route53"}},
		},
		"its group's if is true, its own is missing": {
			src:   InputSources{Vars: []string{"primary=" + good, "traffic=cloudflare"}},
			diags: []string{"rb.yaml:7:3: input opt was not given: enabled is missing; rb.yaml:26:13 reads inputs.opt.enabled"},
		},
		"both ifs true": {
			src:   InputSources{Vars: []string{"primary=" + good, "traffic=cloudflare", `opt={"enabled": true}`}},
			diags: []string{"--var opt: zone is missing; rb.yaml:28:31 passes inputs.opt.zone to with.message of core.log"},
		},
		"its own if false": {
			src: InputSources{Vars: []string{"primary=" + good, "traffic=cloudflare", `opt={"enabled": false}`}},
		},
		"an if that reads steps does not skip": {
			src:   InputSources{Vars: []string{`primary={"aws_region": "r", "ecs": {"cluster": "c", "count": 2}, "disaster_recovery": {}}`}},
			diags: []string{"--var primary: disaster_recovery.bucket is missing; rb.yaml:32:27 passes inputs.primary.disaster_recovery.bucket to with.message of core.log"},
		},
		"a default": {
			src:   InputSources{Vars: []string{"primary=" + good, "vault={}"}},
			diags: []string{"--var vault: token is missing; rb.yaml:35:27 passes inputs.vault.token to with.message of core.log"},
		},
		"partial (resume) checks nothing": {
			src: InputSources{Partial: true, Vars: []string{"primary={}"}},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			got, ds := ResolveInputs(rb, tc.src)
			msgs := messages(ds)
			for i, m := range msgs {
				msgs[i] = strings.TrimPrefix(m, dir+"/")
			}
			want := tc.diags
			if want == nil {
				want = []string{}
			}
			if diff := cmp.Diff(want, msgs); diff != "" {
				t.Errorf("diagnostics (-want +got):\n%s", diff)
			}
			if ds.HasErrors() != (got == nil) {
				t.Errorf("values %v with diagnostics %v", got, msgs)
			}
		})
	}
}

// A default that lacks a field is reported at the input's declaration.
func TestInputPathsOfADefault(t *testing.T) {
	t.Parallel()
	rb, ds := parse(t, strings.Replace(pathsRunbook, "default: { dns_name: a.example.com }", "default: { name: a.example.com }", 1))
	if rb == nil {
		t.Fatal(ds)
	}
	_, ds = ResolveInputs(rb, InputSources{Vars: []string{`primary={"aws_region": "r", "ecs": {"cluster": "c", "count": 2}, "disaster_recovery": {"bucket": "b"}}`}})
	want := []string{"rb.yaml:5:3: the default of input lb: dns_name is missing; rb.yaml:21:67 reads inputs.lb.dns_name"}
	if diff := cmp.Diff(want, messages(ds)); diff != "" {
		t.Error(diff)
	}
}

// A secret input's value never appears, even in a schema problem.
func TestInputPathsOfASecretShowNoValue(t *testing.T) {
	t.Parallel()
	src := `version: 1
inputs:
  creds: { type: map, secret: true, required: true }
plugins:
  dns: { command: runbook-plugin-dns }
steps:
  - id: dns
    uses: dns.route53_record
    with: { zone: z, name: n, values: [v], type: "${{ inputs.creds.kind }}" }
`
	rb, ds := parse(t, src)
	if rb == nil {
		t.Fatal(ds)
	}
	_, ds = ResolveInputs(rb, InputSources{Vars: []string{`creds={"kind": "hunter2"}`}})
	want := []string{"--var creds: kind does not match the parameter (secret, not shown); rb.yaml:9:55 passes inputs.creds.kind to with.type of dns.route53_record"}
	if diff := cmp.Diff(want, messages(ds)); diff != "" {
		t.Error(diff)
	}
}

// Catalog errors that already name the plugin are not prefixed again.
func TestPluginErrorsNameThePluginOnce(t *testing.T) {
	t.Parallel()
	opts, c := testOptions()
	c.errs = map[string]error{
		"aws":    errors.New("plugin aws: `runbook-plugin-aws describe` printed nothing"),
		"dns":    errors.New("plugin dns (/bin/x) speaks runbook plugin protocol v2"),
		"notify": errors.New("executable not found"),
	}
	src := "version: 1\nplugins:\n  aws: { command: a }\n  dns: { command: d }\n  notify: { command: n }\nsteps:\n  - { id: a, uses: core.log, with: { message: hi } }\n"
	_, ds := Parse("rb.yaml", []byte(src), opts)
	want := []string{
		"rb.yaml:3:3: plugin aws: `runbook-plugin-aws describe` printed nothing",
		"rb.yaml:4:3: plugin dns (/bin/x) speaks runbook plugin protocol v2",
		"rb.yaml:5:3: plugin notify: executable not found",
	}
	var got []string
	for _, d := range ds {
		if d.Severity == Error {
			got = append(got, d.String())
		}
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Error(diff)
	}
}
