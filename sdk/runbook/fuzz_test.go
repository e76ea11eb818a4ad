package runbook

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
)

// addSeeds adds every valid example (and a few invalid ones) to the corpus.
func addSeeds(f *testing.F, globs ...string) {
	for _, g := range globs {
		files, _ := filepath.Glob(filepath.Join(corpus, g))
		for _, path := range files {
			src, err := os.ReadFile(path)
			if err != nil {
				f.Fatal(err)
			}
			f.Add(string(src))
		}
	}
}

// checkDiagnostics asserts what holds for any input: diagnostics are
// positioned inside the file and sorted, and a runbook is returned exactly
// when there is no error.
func checkDiagnostics(t *testing.T, name, src string, rb *Runbook, ds Diagnostics) {
	t.Helper()
	if (rb == nil) != ds.HasErrors() {
		t.Fatalf("runbook returned = %v with errors = %v: %v", rb != nil, ds.HasErrors(), ds)
	}
	text := newSource(name, []byte(src))
	for i, d := range ds {
		if strings.HasPrefix(d.Message, "internal error") {
			t.Fatalf("validation panicked: %v", d)
		}
		if d.Message == "" {
			t.Errorf("empty message at %v", d.Pos)
		}
		if d.Pos.File != name {
			t.Errorf("diagnostic in another file: %v", d)
		}
		if d.Pos.Line < 1 || d.Pos.Line > len(text.lines) || d.Pos.Col < 1 || d.Pos.Col > utf8.RuneCountInString(text.line(d.Pos.Line))+1 {
			t.Errorf("diagnostic outside the file: %v", d)
		}
		if i > 0 {
			p, q := ds[i-1].Pos, d.Pos
			if p.Line > q.Line || p.Line == q.Line && p.Col > q.Col {
				t.Errorf("diagnostics not sorted: %v before %v", ds[i-1], d)
			}
		}
	}
}

func FuzzParse(f *testing.F) {
	addSeeds(f, "valid/*.yaml", "invalid/expr_*.yaml", "invalid/with_*.yaml", "invalid/yaml_*.yaml")
	opts, _ := testOptions()
	f.Fuzz(func(t *testing.T, src string) {
		rb, ds := Parse("fuzz.yaml", []byte(src), opts)
		if !utf8.ValidString(src) {
			return // reported as a whole, at the first bad byte
		}
		checkDiagnostics(t, "fuzz.yaml", src, rb, ds)
		// Validation is deterministic.
		_, again := Parse("fuzz.yaml", []byte(src), opts)
		if ds.Error() != again.Error() {
			t.Fatalf("two parses differ:\n%v\n---\n%v", ds, again)
		}
	})
}

// FuzzTemplate puts an arbitrary string, in each YAML scalar style, where
// templates are compiled (a with value, an if, an output) and checks that
// validation positions its problems inside the file and that what it
// accepts can be rendered.
func FuzzTemplate(f *testing.F) {
	for _, s := range []string{"plain", "${{ inputs.region }}", "a ${{ steps.db.outputs.writer_region }} b", "${{", "$${{ x }}",
		"${{ inputs.region + 1 }}", "${{ }}", "line\n${{ inputs.n * 2 }}\n", "é ${{ 'ü' + inputs.region }}", "${{ steps.db.outputs }}",
		"${{ len(inputs.list) > 0 }}", "\"quoted\" ${{ inputs.zzz }}", "${{ inputs.region }} }} ${{"} {
		f.Add(s)
	}
	addSeeds(f, "valid/*.yaml")
	opts, _ := testOptions()
	styles := []yaml.Style{0, yaml.DoubleQuotedStyle, yaml.SingleQuotedStyle, yaml.LiteralStyle, yaml.FoldedStyle}
	f.Fuzz(func(t *testing.T, s string) {
		if !utf8.ValidString(s) || len(s) > 4096 {
			return
		}
		for _, style := range styles {
			node := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: s, Style: style}
			out, err := yaml.Marshal(node)
			if err != nil {
				continue
			}
			scalar := strings.TrimSuffix(string(out), "\n")
			indented := strings.ReplaceAll(scalar, "\n", "\n      ")
			src := "version: 1\ninputs:\n  region: { type: string, default: eu }\n  n: { type: number, default: 1 }\n  list: { type: list, default: [] }\n" +
				"plugins:\n  aws: { command: x }\nsteps:\n  - id: db\n    uses: aws.aurora_global_switchover\n    with: { global_cluster: gc }\n" +
				"  - id: t\n    uses: core.log\n    with:\n      message: " + indented + "\n" +
				"outputs:\n  o: " + strings.ReplaceAll(scalar, "\n", "\n    ") + "\n"
			rb, ds := Parse("fuzz.yaml", []byte(src), opts)
			checkDiagnostics(t, "fuzz.yaml", src, rb, ds)
			if rb == nil {
				continue
			}
			scope := &expr.Scope{Inputs: map[string]any{"region": "eu", "n": float64(1), "list": []any{}},
				Steps: map[string]expr.StepValues{"db": {Status: "succeeded", Outputs: map[string]any{"writer_region": "eu"}}}}
			// Rendering may fail (a runtime error in the expression) but
			// must not panic.
			_, _ = rb.Step("t").With.Render(context.Background(), scope.Map())
			_, _ = rb.Outputs[0].Value.Render(context.Background(), scope.Map())
		}
	})
}

// FuzzVars resolves an arbitrary --var argument and var file.
func FuzzVars(f *testing.F) {
	f.Add("primary=@config.json", "mode: planned\ncount: 2\n")
	f.Add("count=2.5", "primary: {a: 1}\n")
	f.Add("regions=[a, b]", "{\"primary\": {}}")
	f.Add("enabled=yes", "primary: [1,,]")
	f.Add("token=@@x", "")
	files, _ := filepath.Glob(filepath.Join(corpus, "vars", "*"))
	for _, path := range files {
		src, err := os.ReadFile(path)
		if err != nil {
			f.Fatal(err)
		}
		f.Add("primary={}", string(src))
	}
	rb, ds := Parse("rb.yaml", []byte(inputsRunbook), Options{})
	if rb == nil {
		f.Fatal(ds)
	}
	dir := f.TempDir()
	config, _ := os.ReadFile(filepath.Join(corpus, "vars", "config.json"))
	if err := os.WriteFile(filepath.Join(dir, "config.json"), config, 0o644); err != nil {
		f.Fatal(err)
	}
	f.Fuzz(func(t *testing.T, arg, file string) {
		varFile := filepath.Join(t.TempDir(), "vars.yaml")
		if err := os.WriteFile(varFile, []byte(file), 0o644); err != nil {
			t.Fatal(err)
		}
		if strings.Contains(arg, "=@") && !strings.Contains(arg, "=@@") {
			arg = strings.Replace(arg, "=@", "=@"+dir+string(filepath.Separator), 1)
		}
		values, ds := ResolveInputs(rb, InputSources{Vars: []string{arg}, VarFiles: []string{varFile}})
		for _, d := range ds {
			if strings.HasPrefix(d.Message, "internal error") {
				t.Fatalf("input resolution panicked: %v", d)
			}
		}
		if ds.HasErrors() {
			if values != nil {
				t.Fatal("values returned with errors")
			}
			return
		}
		// Every declared input has a value of its declared type.
		for _, in := range rb.Inputs {
			v, ok := values[in.Name]
			if !ok {
				t.Fatalf("input %s has no value", in.Name)
			}
			if msg := checkInputType(in.Type, v); msg != "" {
				t.Fatalf("input %s %s: %#v", in.Name, msg, v)
			}
			if len(in.Enum) > 0 && !inEnum(in.Enum, v) {
				t.Fatalf("input %s = %#v is not in its enum", in.Name, v)
			}
		}
	})
}
