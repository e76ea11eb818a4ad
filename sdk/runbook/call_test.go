package runbook

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// writeFiles writes runbooks into a fresh directory and returns it.
func writeFiles(t *testing.T, files map[string]string) string {
	t.Helper()
	dir := t.TempDir()
	for name, src := range files {
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}

const switchCallee = `version: 1
name: switch
inputs:
  from: { type: map, required: true }
  region: { type: string, required: true }
  count: { type: number, default: 1 }
  mode: { type: string, enum: [planned, unplanned], default: planned }
  token: { type: string, secret: true, default: "" }
plugins:
  aws: { command: runbook-plugin-aws }
steps:
  - id: db
    uses: aws.aurora_global_switchover
    if: inputs.mode == "planned"
    with:
      global_cluster: gc
      region: ${{ inputs.from.aws_region }}
  - id: note
    uses: core.log
    with: { message: "writer in ${{ steps.db.outputs.writer_region }}" }
outputs:
  writer: ${{ steps.db.outputs.writer_region }}
  secret_token: ${{ inputs.token }}
`

func TestCallLoadsTheCalleeAsPartOfTheProgram(t *testing.T) {
	dir := writeFiles(t, map[string]string{
		"lib/switch.yaml": switchCallee,
		"main.yaml": `version: 1
inputs:
  primary: { type: map, required: true }
  token: { type: string, secret: true, default: "" }
steps:
  - id: move
    uses: ./lib/switch.yaml
    with: { from: "${{ inputs.primary }}", region: eu-west-3, token: "${{ inputs.token }}" }
  - id: after
    uses: core.log
    with: { message: "now ${{ steps.move.outputs.writer }}" }
outputs:
  writer: ${{ steps.move.outputs.writer }}
  token: ${{ steps.move.outputs.secret_token }}
`})
	rb := mustLoad(t, filepath.Join(dir, "main.yaml"))
	move := rb.Step("move")
	if move.Call == nil || move.Call.Ref != "./lib/switch.yaml" || move.Call.Runbook.Name != "switch" || rb.StepAt("move.db") == nil || rb.StepAt("move.note").Uses != "core.log" {
		t.Fatalf("call: %+v", move)
	}
	if ps := rb.AllPlugins(); len(ps) != 1 || ps[0].Name != "aws" {
		t.Fatalf("plugins of the program: %+v", ps)
	}
	// A secret output of the callee stays secret through the call.
	for _, o := range rb.Outputs {
		if want := o.Name == "token"; o.Secret != want {
			t.Errorf("output %s secret %v", o.Name, o.Secret)
		}
	}
	// The callee's reads of its map input are checked against the caller's
	// input it is bound to, at the callee's position, guarded by its if.
	var found *InputPath
	for _, ip := range rb.InputPaths {
		if ip.Input == "primary" && strings.Join(ip.Keys, ".") == "aws_region" {
			found = ip
		}
	}
	if found == nil || !strings.HasSuffix(found.Pos.File, "switch.yaml") || found.Pos.Line != 17 || found.Expr() != "inputs.from.aws_region" || len(found.Guards) != 1 {
		t.Fatalf("input path carried over the call: %+v (all: %+v)", found, rb.InputPaths)
	}
	vals, ds := ResolveInputs(rb, InputSources{Vars: []string{`primary={other: 1}`}})
	if !ds.HasErrors() || !strings.Contains(ds.Error(), "aws_region is missing") || !strings.Contains(ds.Error(), "switch.yaml:17:19") {
		t.Fatalf("a config without the field the callee reads: %v %v", vals, ds)
	}
	// The hash covers the callee: changing it changes the program.
	before := rb.Hash
	if err := os.WriteFile(filepath.Join(dir, "lib/switch.yaml"), []byte(switchCallee+"\n# changed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if after := mustLoad(t, filepath.Join(dir, "main.yaml")).Hash; after == before {
		t.Fatal("changing the called runbook did not change the program's hash")
	}
}

func TestCallErrorsNameBothFiles(t *testing.T) {
	for _, c := range []struct {
		name  string
		files map[string]string
		want  []string
	}{
		{"unknown and missing inputs, wrong type", map[string]string{"switch.yaml": switchCallee, "main.yaml": `version: 1
steps:
  - id: move
    uses: ./switch.yaml
    with: { regoin: x, count: many }
`}, []string{`main.yaml:5:5: with: missing required property "from"`, `main.yaml:5:13: with: unknown property "regoin" (did you mean "region"?)`, `main.yaml:5:31: with.count: must be a number, not a string`}},
		{"an output the callee does not declare", map[string]string{"switch.yaml": switchCallee, "main.yaml": `version: 1
steps:
  - id: move
    uses: ./switch.yaml
    with: { from: {}, region: x }
  - id: after
    uses: core.log
    with: { message: "${{ steps.move.outputs.writr }}" }
`}, []string{`main.yaml:8:46: with.message: steps.move.outputs has no "writr": ./switch.yaml does not declare that output (did you mean "writer"?)`}},
		{"keys that do not apply to a call", map[string]string{"switch.yaml": switchCallee, "main.yaml": `version: 1
steps:
  - id: move
    uses: ./switch.yaml
    timeout: 5m
    with: { from: {}, region: x }
`}, []string{`main.yaml:5:5: step move calls a runbook: timeout does not apply to a call`}},
		{"a cycle", map[string]string{"a.yaml": "version: 1\nsteps:\n  - id: b\n    uses: ./b.yaml\n", "b.yaml": "version: 1\nsteps:\n  - id: a\n    uses: ./a.yaml\n", "main.yaml": "version: 1\nsteps:\n  - id: a\n    uses: ./a.yaml\n"},
			[]string{`b.yaml:4:11: step a: uses ./a.yaml makes a cycle (a.yaml -> b.yaml -> a.yaml)`}},
		{"an error inside the callee, at its position", map[string]string{"bad.yaml": "version: 1\nsteps:\n  - id: x\n    uses: core.log\n    with: { mesage: hi }\n", "main.yaml": "version: 1\nsteps:\n  - id: b\n    uses: ./bad.yaml\n"},
			[]string{`bad.yaml:5:13: with: unknown property "mesage" (did you mean "message"?)`}},
		{"one command per plugin name", map[string]string{"switch.yaml": switchCallee, "main.yaml": `version: 1
plugins:
  aws: { command: ./other-aws }
steps:
  - id: s
    uses: aws.aurora_global_status
    with: { global_cluster: g }
  - id: move
    uses: ./switch.yaml
    with: { from: {}, region: x }
`}, []string{`switch.yaml:10:3: plugin aws is declared at `, `with command "./other-aws"`}},
		{"a file that is not there", map[string]string{"main.yaml": "version: 1\nsteps:\n  - id: b\n    uses: ./missing.yaml\n"},
			[]string{`main.yaml:4:11: step b: uses ./missing.yaml: cannot read: no such file or directory`}},
	} {
		t.Run(c.name, func(t *testing.T) {
			dir := writeFiles(t, c.files)
			opts, _ := testOptions()
			rb, ds := Load(filepath.Join(dir, "main.yaml"), opts)
			got := strings.ReplaceAll(strings.Join(messages(ds), "\n"), dir+string(filepath.Separator), "")
			if rb != nil {
				t.Errorf("loaded despite errors")
			}
			for _, w := range c.want {
				if !strings.Contains(got, w) {
					t.Errorf("missing %q in:\n%s", w, got)
				}
			}
		})
	}
}
