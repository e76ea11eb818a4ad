package cli

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strings"
	"testing"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// repoRoot is the module root (internal/cli is two levels down).
func repoRoot(t *testing.T) string {
	t.Helper()
	_, file, _, _ := runtime.Caller(0)
	return filepath.Join(filepath.Dir(file), "..", "..")
}

// demoPlugin has an action with every kind of parameter.
func demoPlugin() *spec.Description {
	one := 1.0
	minItems := 1
	params := &schema.Schema{Type: schema.Object, Closed: true, Required: []string{"cluster", "services"},
		Order: []string{"cluster", "services", "desired_count", "mode", "wait", "token", "tags", "target"},
		Properties: map[string]*schema.Schema{
			"cluster":       {Type: schema.String, Description: "ECS cluster."},
			"services":      {Type: schema.Array, Items: &schema.Schema{Type: schema.String}, MinItems: &minItems},
			"desired_count": {Type: schema.Integer, Minimum: &one, Default: 2.0},
			"mode":          {Type: schema.String, Enum: []any{"fast", "safe"}},
			"wait":          {Type: schema.String, Format: schema.FormatDuration},
			"token":         {Type: schema.String, WriteOnly: true},
			"tags":          {Type: schema.Object, Additional: &schema.Schema{Type: schema.String}},
			"target": {Type: schema.Object, Closed: true, Properties: map[string]*schema.Schema{
				"dns_name": {Type: schema.String},
			}},
		}}
	return &spec.Description{Name: "aws", Version: "1", ProtocolVersion: 1, Actions: []spec.ActionSpec{
		{Name: "ecs_services", Doc: "Scale ECS services.", Params: params, Outputs: &schema.Schema{Type: schema.Object}},
		{Name: "noop", Params: &schema.Schema{Type: schema.Object, Closed: true}},
	}}
}

// refs lists every "$ref" in v.
func refs(v any) []string {
	var out []string
	switch x := v.(type) {
	case map[string]any:
		for k, it := range x {
			if k == "$ref" {
				out = append(out, it.(string))
				continue
			}
			out = append(out, refs(it)...)
		}
	case []any:
		for _, it := range x {
			out = append(out, refs(it)...)
		}
	}
	return out
}

// Keywords of JSON Schema 2020-12 the generator may use; anything else
// would be an annotation a validator silently ignores, i.e. a mistake.
var keywords = map[string]bool{
	"$schema": true, "$id": true, "$ref": true, "$defs": true, "title": true, "description": true,
	"type": true, "enum": true, "const": true, "default": true, "format": true, "pattern": true,
	"properties": true, "patternProperties": true, "additionalProperties": true, "propertyNames": true,
	"required": true, "items": true, "minItems": true, "minimum": true, "maximum": true, "writeOnly": true,
	"anyOf": true, "allOf": true, "not": true, "if": true, "then": true, "else": true,
}

// checkKeywords walks the schema (not the property names) for unknown keywords.
func checkKeywords(t *testing.T, path string, v any) {
	t.Helper()
	m, ok := v.(map[string]any)
	if !ok {
		if _, isBool := v.(bool); !isBool {
			t.Errorf("%s: a schema must be an object or a boolean, got %T", path, v)
		}
		return
	}
	for k, it := range m {
		if !keywords[k] {
			t.Errorf("%s: unknown keyword %q", path, k)
			continue
		}
		switch k {
		case "properties", "patternProperties", "$defs":
			for name, sub := range it.(map[string]any) {
				checkKeywords(t, path+"/"+k+"/"+name, sub)
			}
		case "items", "additionalProperties", "propertyNames", "not", "if", "then", "else":
			checkKeywords(t, path+"/"+k, it)
		case "anyOf", "allOf":
			for i, sub := range it.([]any) {
				checkKeywords(t, path+"/"+k+"/"+string(rune('0'+i%10)), sub)
			}
		}
	}
}

func TestSchemaStructure(t *testing.T) {
	var s map[string]any
	if err := json.Unmarshal(schemaJSON([]*spec.Description{runbook.CoreCatalog(), demoPlugin()}), &s); err != nil {
		t.Fatal(err)
	}
	if s["$schema"] != "https://json-schema.org/draft/2020-12/schema" {
		t.Errorf("$schema = %v", s["$schema"])
	}
	checkKeywords(t, "#", s)
	defs := s["$defs"].(map[string]any)
	for _, r := range refs(s) {
		name, ok := strings.CutPrefix(r, "#/$defs/")
		if !ok || defs[strings.NewReplacer("~1", "/", "~0", "~").Replace(name)] == nil {
			t.Errorf("dangling $ref %s", r)
		}
	}
	// Each action's parameters are reachable from a step whose uses names it.
	w := defs["with:aws.ecs_services"].(map[string]any)
	if w["additionalProperties"] != false || w["description"] != "Parameters of aws.ecs_services: Scale ECS services." {
		t.Errorf("with schema: %v", w)
	}
	props := w["properties"].(map[string]any)
	count := props["desired_count"].(map[string]any)
	if count["default"] != 2.0 || len(count["anyOf"].([]any)) != 2 {
		t.Errorf("desired_count: %v", count)
	}
	found := false
	for _, rule := range defs["step"].(map[string]any)["allOf"].([]any) {
		r := rule.(map[string]any)
		cond, _ := r["if"].(map[string]any)
		if p, ok := cond["properties"].(map[string]any); ok && p["uses"].(map[string]any)["const"] == "aws.ecs_services" {
			found = r["then"].(map[string]any)["properties"].(map[string]any)["with"].(map[string]any)["$ref"] == "#/$defs/with:aws.ecs_services"
		}
	}
	if !found {
		t.Error("no if/then rule binding uses: aws.ecs_services to its parameters")
	}
	var uses []string
	for _, c := range defs["uses"].(map[string]any)["anyOf"].([]any) {
		if v, ok := c.(map[string]any)["const"].(string); ok {
			uses = append(uses, v)
		}
	}
	sort.Strings(uses)
	if got := strings.Join(uses, " "); got != "aws.ecs_services aws.noop core.approve core.assert core.log core.sleep" {
		t.Errorf("uses choices: %s", got)
	}
}

// jsonschemaPython is the project's Python environment, if it has the
// jsonschema package (make venv installs it).
func jsonschemaPython(t *testing.T) string {
	t.Helper()
	py := filepath.Join(repoRoot(t), ".venv", "bin", "python")
	if _, err := os.Stat(py); err != nil {
		t.Skip("no .venv (make venv): cannot validate with the jsonschema package")
	}
	if out, err := exec.Command(py, "-c", "import jsonschema").CombinedOutput(); err != nil {
		t.Fatalf(".venv has no jsonschema: %v\n%s", err, out)
	}
	return py
}

const validateScript = `
import json, sys
from jsonschema import Draft202012Validator
schema = json.load(open(sys.argv[1]))
Draft202012Validator.check_schema(schema)
v = Draft202012Validator(schema)
out = {}
for path in sys.argv[2:]:
    doc = json.load(open(path))
    out[path] = sorted("/" + "/".join(str(p) for p in e.absolute_path) + ": " + e.message for e in v.iter_errors(doc))
print(json.dumps(out))
`

// validate validates YAML documents against a schema with Python's
// jsonschema (the documents converted to JSON here), returning each
// document's errors.
func validate(t *testing.T, py string, schemaDoc []byte, docs map[string]string) map[string][]string {
	t.Helper()
	dir := t.TempDir()
	schemaPath := filepath.Join(dir, "schema.json")
	if err := os.WriteFile(schemaPath, schemaDoc, 0o644); err != nil {
		t.Fatal(err)
	}
	args := []string{"-c", validateScript, schemaPath}
	byPath := map[string]string{}
	for name, src := range docs {
		var v any
		if err := yaml.Unmarshal([]byte(src), &v); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		b, err := json.Marshal(v)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		p := filepath.Join(dir, strings.NewReplacer("/", "_").Replace(name)+".json")
		if err := os.WriteFile(p, b, 0o644); err != nil {
			t.Fatal(err)
		}
		args = append(args, p)
		byPath[p] = name
	}
	out, err := exec.Command(py, args...).Output()
	if err != nil {
		var stderr []byte
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = ee.Stderr
		}
		t.Fatalf("jsonschema: %v\n%s", err, stderr)
	}
	var res map[string][]string
	if err := json.Unmarshal(out, &res); err != nil {
		t.Fatalf("%v: %s", err, out)
	}
	named := map[string][]string{}
	for p, errs := range res {
		named[byPath[p]] = errs
	}
	return named
}

func TestSchemaValidatesRunbooks(t *testing.T) {
	py := jsonschemaPython(t)
	doc := schemaJSON([]*spec.Description{runbook.CoreCatalog(), demoPlugin()})
	docs := map[string]string{
		"good": `version: 1
name: demo
x-shared: &s { cluster: c1 }
inputs:
  replicas: { type: number, default: 2 }
  token: { type: string, secret: true }
plugins:
  aws: { command: runbook-plugin-aws, env: { A: b } }
  other: { command: ./bin/runbook-plugin-other }
defaults: { timeout: 10m, retry: { attempts: 3, delay: 2s, max_delay: 30s } }
on_failure: rollback
steps:
  - id: scale
    uses: aws.ecs_services
    with:
      <<: *s
      services: [server, "${{ inputs.token }}"]
      desired_count: ${{ inputs.replicas }}
      wait: 90s
      tags: { team: platform }
      target: { dns_name: "x.${{ inputs.token }}" }
    until: { condition: outputs.ok, interval: 5s }
    rollback: { uses: aws.ecs_services, with: { cluster: c1, services: [server], desired_count: 1 } }
    milestone: scaled
  - id: group
    max_parallel: 2
    if: inputs.replicas > 1
    parallel:
      - { id: a, uses: other.anything, with: { whatever: [1, 2] } }
      - { id: b, uses: core.sleep, with: { duration: 1s } }
  - id: ok
    uses: core.approve
    with: { message: "go?" }
outputs:
  out: ${{ steps.scale.outputs }}
`,
		"unknown top-level key":  "version: 1\nstepz: []\nsteps: [{id: a, uses: core.log, with: {message: hi}}]\n",
		"unknown step key":       "version: 1\nsteps: [{id: a, uses: core.log, with: {message: hi}, retries: 3}]\n",
		"unknown with parameter": "version: 1\nsteps: [{id: a, uses: aws.ecs_services, with: {cluster: c, services: [s], regoin: x}}]\n",
		"missing parameter":      "version: 1\nsteps: [{id: a, uses: aws.ecs_services, with: {cluster: c}}]\n",
		"wrong parameter type":   "version: 1\nsteps: [{id: a, uses: aws.ecs_services, with: {cluster: c, services: [s], desired_count: many}}]\n",
		"bad enum":               "version: 1\nsteps: [{id: a, uses: aws.ecs_services, with: {cluster: c, services: [s], mode: reckless}}]\n",
		"bad duration param":     "version: 1\nsteps: [{id: a, uses: aws.ecs_services, with: {cluster: c, services: [s], wait: 5}}]\n",
		"unknown action":         "version: 1\nsteps: [{id: a, uses: aws.ecs_servicez}]\n",
		"group with with":        "version: 1\nsteps: [{id: g, with: {a: 1}, parallel: [{id: a, uses: core.log, with: {message: hi}}]}]\n",
		"uses and parallel":      "version: 1\nsteps: [{id: g, uses: core.log, parallel: [{id: a, uses: core.log, with: {message: hi}}]}]\n",
		"neither":                "version: 1\nsteps: [{id: g}]\n",
		"max_parallel on action": "version: 1\nsteps: [{id: a, uses: core.log, max_parallel: 2, with: {message: hi}}]\n",
		"bad id":                 "version: 1\nsteps: [{id: Bad-Id, uses: core.log, with: {message: hi}}]\n",
		"bad timeout":            "version: 1\nsteps: [{id: a, uses: core.log, timeout: 5, with: {message: hi}}]\n",
		"version 2":              "version: 2\nsteps: [{id: a, uses: core.log, with: {message: hi}}]\n",
		"rollback unknown key":   "version: 1\nsteps: [{id: a, uses: core.log, with: {message: hi}, rollback: {uses: core.log, if: x}}]\n",
	}
	res := validate(t, py, doc, docs)
	if errs := res["good"]; len(errs) > 0 {
		t.Errorf("a valid runbook is refused:\n%s", strings.Join(errs, "\n"))
	}
	for name := range docs {
		if name != "good" && len(res[name]) == 0 {
			t.Errorf("%s: accepted", name)
		}
	}
	if errs := strings.Join(res["unknown top-level key"], "\n"); !strings.Contains(errs, "stepz") {
		t.Errorf("unknown key not named: %s", errs)
	}
	if errs := strings.Join(res["unknown with parameter"], "\n"); !strings.Contains(errs, "regoin") {
		t.Errorf("unknown parameter not named: %s", errs)
	}
}

// The repository's runbooks validate against the schema: the DR runbooks
// with the real plugins' parameters, the language's valid test runbooks
// (written against a test catalog) with no plugin known.
func TestSchemaAcceptsTheRepositoryRunbooks(t *testing.T) {
	py := jsonschemaPython(t)
	root := repoRoot(t)
	bin := t.TempDir()
	// Every plugin the DR runbooks declare.
	entries, err := os.ReadDir(filepath.Join(root, "plugins"))
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if !e.IsDir() {
			continue
		}
		p := e.Name()
		build := exec.Command("go", "build", "-o", filepath.Join(bin, "runbook-plugin-"+p), "./plugins/"+p)
		build.Dir = root
		if out, err := build.CombinedOutput(); err != nil {
			t.Fatalf("building plugin %s: %v\n%s", p, err, out)
		}
	}
	t.Setenv("RUNBOOK_PLUGIN_PATH", bin)
	dr, err := filepath.Glob(filepath.Join(root, "runbooks", "*.yaml"))
	if err != nil || len(dr) < 3 {
		t.Fatalf("runbooks: %v %v", dr, err)
	}
	io, _, out, errOut := TestStreams()
	if code := Run(context.Background(), io, append([]string{"schema"}, dr...)); code != 0 {
		t.Fatalf("schema: exit %d\n%s", code, errOut)
	}
	var s map[string]any
	if err := json.Unmarshal(out.Bytes(), &s); err != nil {
		t.Fatal(err)
	}
	defs := s["$defs"].(map[string]any)
	for _, want := range []string{"with:aws.ecs_services", "with:dns.route53_record"} {
		found := false
		for k := range defs {
			found = found || strings.HasPrefix(k, strings.SplitN(want, ".", 2)[0]+".")
		}
		if !found {
			t.Errorf("no parameters of %s's actions in the schema", strings.TrimPrefix(strings.SplitN(want, ".", 2)[0], "with:"))
		}
	}
	docs := map[string]string{}
	for _, p := range dr {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(p)] = string(b)
	}
	res := validate(t, py, out.Bytes(), docs)
	for name, errs := range res {
		if len(errs) > 0 {
			t.Errorf("%s refused:\n%s", name, strings.Join(errs, "\n"))
		}
	}

	valid, _ := filepath.Glob(filepath.Join(root, "testdata", "runbooks", "valid", "*.yaml"))
	if len(valid) == 0 {
		t.Fatal("no valid test runbooks found")
	}
	docs = map[string]string{}
	for _, p := range valid {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		docs[filepath.Base(p)] = string(b)
	}
	res = validate(t, py, schemaJSON([]*spec.Description{runbook.CoreCatalog()}), docs)
	for name, errs := range res {
		if len(errs) > 0 {
			t.Errorf("%s refused:\n%s", name, strings.Join(errs, "\n"))
		}
	}
}

func TestSchemaCommand(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	// An executable that is not a plugin: left out, with a warning and
	// exit 1, but the schema is still written.
	fake := filepath.Join(dir, "runbook-plugin-fake")
	if err := os.WriteFile(fake, []byte("#!/bin/sh\necho not json\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "s.json")
	io, _, _, errOut := TestStreams()
	code := Run(ctx, io, []string{"schema", "--plugin", "fake=" + fake, "-o", out})
	if code != ExitFailed || !strings.Contains(errOut.String(), "warning: plugin fake left out of the schema") {
		t.Errorf("exit %d\n%s", code, errOut)
	}
	b, err := os.ReadFile(out)
	if err != nil || !json.Valid(b) {
		t.Fatalf("schema file: %v", err)
	}
	for _, bad := range []string{"fake", "Fake=x", "=x", "fake="} {
		io, _, _, _ = TestStreams()
		if code := Run(ctx, io, []string{"schema", "--plugin", bad}); code != ExitUsage {
			t.Errorf("--plugin %q: exit %d", bad, code)
		}
	}
	io, _, _, _ = TestStreams()
	if code := Run(ctx, io, []string{"schema", filepath.Join(dir, "missing.yaml")}); code != ExitUsage {
		t.Errorf("missing file: exit %d", code)
	}
}
