package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/sdk/pluginhost"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

type schemaOptions struct {
	plugins []string
	out     string
}

func newSchemaCmd(io *IOStreams) *cobra.Command {
	opts := &schemaOptions{}
	cmd := &cobra.Command{
		Use:   "schema [FILE...]",
		Short: "Print the JSON Schema of the runbook language, with each plugin action's parameters",
		Long: `Print a JSON Schema (draft 2020-12) of runbook files, for editors: keys, types,
durations, ids, and for every action of the plugins found, its parameters
under 'with' (completion and checking of aws.ecs_services' parameters, say).
Values written as ${{ expressions }} are accepted wherever a value goes.

The plugins are those the runbook FILEs declare, and those named with
--plugin NAME=PATH; with neither, every runbook-plugin-* executable found in
$RUNBOOK_PLUGIN_PATH, ./bin and $PATH. Each is asked to describe itself; no
action runs. The built-in core.* actions are always included.

With yaml-language-server (VS Code's YAML extension, Neovim, Helix...), write
the schema to a file and put this line at the top of a runbook:

  # yaml-language-server: $schema=./runbook.schema.json

The schema checks what a schema can: expressions, step ordering and the
other checks of 'runbook validate' still need 'runbook validate'.`,
		Example: `  runbook schema runbooks/failover.yaml -o runbook.schema.json
  runbook schema --plugin aws=./bin/runbook-plugin-aws > runbook.schema.json`,
		RunE: func(cmd *cobra.Command, args []string) error {
			return runSchema(cmd.Context(), io, args, opts)
		},
	}
	cmd.Flags().StringArrayVar(&opts.plugins, "plugin", nil, "include this plugin: NAME=PATH of its executable (repeatable)")
	cmd.Flags().StringVarP(&opts.out, "out", "o", "", "write the schema to this file instead of standard output")
	cmd.ValidArgsFunction = completeRunbookFiles
	return cmd
}

func runSchema(ctx context.Context, io *IOStreams, files []string, opts *schemaOptions) error {
	type found struct {
		ref *runbook.PluginRef
		dir string
	}
	var want []found
	seen := map[string]found{} // plugin name -> first declaration
	where := map[string]string{}
	add := func(ref *runbook.PluginRef, dir, from string) {
		if ref.Name == pluginhost.CorePlugin {
			return
		}
		if prev, dup := seen[ref.Name]; dup {
			if prev.ref.Command != ref.Command || prev.dir != dir {
				fmt.Fprintf(io.ErrOut, "note: plugin %s is declared differently by %s and %s; the schema uses the first\n", ref.Name, where[ref.Name], from)
			}
			return
		}
		seen[ref.Name], where[ref.Name] = found{ref: ref, dir: dir}, from
		want = append(want, found{ref: ref, dir: dir})
	}
	for _, p := range opts.plugins {
		name, path, ok := strings.Cut(p, "=")
		if !ok || !validName(name) || path == "" {
			return usageError("--plugin %q: want NAME=PATH, NAME in [a-z][a-z0-9_]*", p)
		}
		abs, err := filepath.Abs(path)
		if err != nil {
			return usageError("--plugin %s: %v", p, err)
		}
		add(&runbook.PluginRef{Name: name, Command: abs}, "", "--plugin")
	}
	for _, f := range files {
		refs, dir, err := pluginsOf(f)
		if err != nil {
			return usageError("%v", err)
		}
		for _, r := range refs {
			add(r, dir, f)
		}
	}
	if len(files) == 0 && len(opts.plugins) == 0 {
		for _, name := range discoverPlugins() {
			add(&runbook.PluginRef{Name: name}, "", "discovery")
		}
	}

	descs := []*spec.Description{runbook.CoreCatalog()}
	failed := false
	for _, f := range want {
		r, err := pluginhost.Resolve(f.dir, f.ref)
		if err == nil && io.Locked {
			// Locked mode: only a plugin pinned by the lock file next to
			// the runbook declaring it is run (--plugin and discovered
			// plugins have none).
			var lock *pluginhost.LockFile
			if f.dir != "" {
				lock, err = pluginhost.ReadLock(f.dir)
			}
			if err == nil {
				lockDir, lockCmd := f.dir, commandLine("plugins", "lock", where[f.ref.Name])
				if lockDir == "" {
					lockDir, lockCmd = filepath.Dir(r.Path), ""
				}
				err = pluginhost.CheckPinned(lock, lockDir, r, lockCmd)
			}
		}
		if err == nil {
			var d *spec.Description
			if d, err = pluginhost.Describe(ctx, r); err == nil {
				d.Name = f.ref.Name // the runbook's name for it, as in `uses`
				descs = append(descs, d)
				continue
			}
		}
		failed = true
		fmt.Fprintf(io.ErrOut, "warning: plugin %s left out of the schema: %s\n", f.ref.Name, firstLine(err.Error()))
	}
	b := schemaJSON(descs)
	if opts.out == "" {
		if _, err := io.Out.Write(b); err != nil {
			return err
		}
	} else {
		if err := writeFileAtomic(opts.out, b); err != nil {
			return &ExitError{Code: ExitFailed, Err: err}
		}
		fmt.Fprintf(io.ErrOut, "wrote %s (plugins: %s)\n", opts.out, pluginNames(descs))
	}
	if failed {
		return silent(ExitFailed)
	}
	return nil
}

func pluginNames(descs []*spec.Description) string {
	var names []string
	for _, d := range descs {
		names = append(names, d.Name)
	}
	return strings.Join(names, ", ")
}

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

func validName(s string) bool { return nameRE.MatchString(s) }

// pluginsOf reads the plugins a runbook declares, whatever else is wrong
// with it (a runbook being edited is the point of a schema). No plugin is
// described here.
func pluginsOf(path string) ([]*runbook.PluginRef, string, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, "", err
	}
	if _, err := os.Stat(abs); err != nil {
		return nil, "", err
	}
	var refs []*runbook.PluginRef
	runbook.Load(path, runbook.Options{Catalog: func(r []*runbook.PluginRef) runbook.Catalog {
		refs = r
		return noCatalog{}
	}})
	return refs, filepath.Dir(abs), nil
}

type noCatalog struct{}

func (noCatalog) Plugin(name string) (*spec.Description, error) {
	return nil, fmt.Errorf("plugin %s not described", name)
}

// discoverPlugins lists the names of the runbook-plugin-* executables in
// the directories a bare plugin command is looked up in.
func discoverPlugins() []string {
	var dirs []string
	for _, d := range filepath.SplitList(os.Getenv(pluginhost.PluginPathEnv)) {
		if d != "" {
			dirs = append(dirs, d)
		}
	}
	dirs = append(dirs, "bin")
	for _, d := range filepath.SplitList(os.Getenv("PATH")) {
		if filepath.IsAbs(d) {
			dirs = append(dirs, d)
		}
	}
	seen := map[string]bool{}
	var names []string
	for _, d := range dirs {
		entries, err := os.ReadDir(d)
		if err != nil {
			continue
		}
		for _, e := range entries {
			name, ok := strings.CutPrefix(e.Name(), pluginhost.CommandPrefix)
			if !ok || !validName(name) || seen[name] || name == pluginhost.CorePlugin {
				continue
			}
			if fi, err := os.Stat(filepath.Join(d, e.Name())); err != nil || fi.IsDir() || fi.Mode().Perm()&0o111 == 0 {
				continue
			}
			seen[name] = true
			names = append(names, name)
		}
	}
	sort.Strings(names)
	return names
}

// SchemaID identifies the schema of runbook language version 1.
const SchemaID = "urn:runbookhq:runbook:schema:v1"

// durationPattern matches a Go duration string ("90s", "1h30m", "1.5s").
const durationPattern = `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`

type obj = map[string]any

// LanguageSchema is the JSON Schema (draft 2020-12) of a runbook file, with
// the parameters of the given plugins' actions.
func LanguageSchema(plugins []*spec.Description) obj {
	defs := obj{
		"name": obj{"type": "string", "pattern": `^[a-z][a-z0-9_]*$`,
			"description": "Lower case letters, digits and _, starting with a letter."},
		"duration": obj{"type": "string", "pattern": durationPattern,
			"description": `A Go duration: "90s", "15m", "1h30m". A bare number is refused.`},
		"expression": obj{"type": "string", "pattern": `\$\{\{`,
			"description": "A value computed when the step runs: ${{ expression }}."},
		"condition": obj{
			"description": `A boolean expression (expr-lang), e.g. inputs.mode == "planned"; true/false, or one ${{ ... }} around it.`,
			"type":        []any{"string", "boolean"},
		},
		"retry": obj{
			"type":                 "object",
			"description":          "Retry policy: attempts in all (1 = no retry), exponential backoff from delay, capped at max_delay, with full jitter.",
			"additionalProperties": false,
			"properties": obj{
				"attempts":  obj{"type": "integer", "minimum": 1, "maximum": runbook.MaxAttempts, "description": "Attempts in all, the first included (at most 100)."},
				"delay":     obj{"$ref": "#/$defs/duration", "description": "Wait before the second attempt (doubled each time; at least 100ms)."},
				"max_delay": obj{"$ref": "#/$defs/duration", "description": "Cap on the wait between attempts (at least 100ms)."},
				"jitter":    obj{"type": "boolean", "description": "Wait a random time up to the delay (default true)."},
			},
		},
		"until": obj{
			"description": "Re-run the action until this condition (on `outputs`) holds.",
			"anyOf": []any{
				obj{"$ref": "#/$defs/condition"},
				obj{
					"type":                 "object",
					"additionalProperties": false,
					"required":             []any{"condition"},
					"properties": obj{
						"condition": obj{"$ref": "#/$defs/condition"},
						"interval":  obj{"$ref": "#/$defs/duration", "description": "Wait between runs (default 5s, at least 100ms)."},
						"timeout":   obj{"$ref": "#/$defs/duration", "description": "Bound on the whole polling (default: the step's timeout)."},
					},
				},
			},
		},
		"input": obj{
			"type":                 "object",
			"additionalProperties": false,
			"required":             []any{"type"},
			"properties": obj{
				"type":        obj{"enum": []any{"string", "number", "bool", "list", "map"}},
				"default":     obj{"description": "The value when none is given; cannot use ${{ }}."},
				"enum":        obj{"type": "array", "description": "Allowed values."},
				"required":    obj{"type": "boolean", "description": "The run refuses to start without a value."},
				"secret":      obj{"type": "boolean", "description": "Redacted (***) in every event, journal, report and message."},
				"description": obj{"type": "string"},
			},
		},
		"plugin": obj{
			"type":                 "object",
			"additionalProperties": false,
			"required":             []any{"command"},
			"properties": obj{
				"command": obj{"type": "string", "description": "The plugin executable: a path relative to the runbook, or a name looked up in $RUNBOOK_PLUGIN_PATH, ./bin, $PATH."},
				"env":     obj{"type": "object", "additionalProperties": obj{"type": "string"}, "description": "Extra environment variables for the plugin process."},
			},
		},
	}

	known := map[string]bool{}
	var usesChoices []any
	var stepRules, rollbackRules []any
	for _, d := range plugins {
		known[d.Name] = true
		for _, a := range d.Actions {
			uses := d.Name + "." + a.Name
			def := "with:" + uses
			w := withSchema(a.Params)
			if a.Doc != "" {
				w["description"] = "Parameters of " + uses + ": " + a.Doc
			}
			defs[def] = w
			choice := obj{"const": uses}
			if a.Doc != "" {
				choice["description"] = a.Doc
			}
			usesChoices = append(usesChoices, choice)
			rule := obj{
				"if":   obj{"required": []any{"uses"}, "properties": obj{"uses": obj{"const": uses}}},
				"then": obj{"properties": obj{"with": obj{"$ref": "#/$defs/" + escapeRef(def)}}},
			}
			stepRules = append(stepRules, rule)
			rollbackRules = append(rollbackRules, rule)
		}
	}
	// Actions of plugins the schema does not know are accepted as they are;
	// an unknown action of a known plugin is not.
	var names []string
	for n := range known {
		names = append(names, regexp.QuoteMeta(n))
	}
	sort.Strings(names)
	other := obj{"type": "string", "pattern": `^[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`,
		"description": "<plugin>.<action> of a plugin this schema was not generated with."}
	if len(names) > 0 {
		other["pattern"] = `^(?!(` + strings.Join(names, "|") + `)\.)[a-z][a-z0-9_]*\.[a-z][a-z0-9_]*$`
	}
	usesChoices = append(usesChoices, other)
	defs["uses"] = obj{"description": "The action: <plugin>.<action>, or core.<builtin>.", "anyOf": usesChoices}

	defs["rollback"] = obj{
		"type":                 "object",
		"description":          "The compensation, run if a later step fails. Its with sees the step's outputs as outputs.",
		"additionalProperties": false,
		"required":             []any{"uses"},
		"properties": obj{
			"uses":    obj{"$ref": "#/$defs/uses"},
			"with":    obj{"type": "object", "description": "The rollback action's parameters."},
			"timeout": obj{"$ref": "#/$defs/duration"},
			"retry":   obj{"$ref": "#/$defs/retry"},
			"when": obj{"enum": []any{"completed", "attempted"}, "default": "completed",
				"description": "completed: compensate the step once it succeeded; attempted: also once it failed after an attempt started (the rollback then cannot read the step's outputs)."},
		},
		"allOf": rollbackRules,
	}
	defs["call"] = obj{"type": "string", "pattern": `^\.\.?/`,
		"description": "Another runbook file, relative to this one (./region-switch.yaml): the step runs its steps, with binding its inputs."}
	stepRules = append(stepRules,
		// A step that calls a runbook takes no action settings.
		obj{
			"if": obj{"required": []any{"uses"}, "properties": obj{"uses": obj{"$ref": "#/$defs/call"}}},
			"then": obj{"properties": obj{"rollback": false, "timeout": false, "retry": false,
				"until": false, "max_parallel": false}},
		},
		// A group carries no action settings; an action has no max_parallel.
		obj{
			"if": obj{"required": []any{"parallel"}},
			"then": obj{"properties": obj{"with": false, "rollback": false, "timeout": false, "retry": false,
				"until": false, "uses": false}},
			"else": obj{"required": []any{"uses"}, "properties": obj{"max_parallel": false}},
		},
	)
	defs["step"] = obj{
		"type":                 "object",
		"additionalProperties": false,
		"required":             []any{"id"},
		"properties": obj{
			"id":                obj{"$ref": "#/$defs/name", "description": "Unique across the whole runbook."},
			"name":              obj{"type": "string", "description": "Display name."},
			"uses":              obj{"anyOf": []any{obj{"$ref": "#/$defs/uses"}, obj{"$ref": "#/$defs/call"}}},
			"with":              obj{"type": "object", "description": "The action's parameters (the called runbook's inputs, for a call)."},
			"if":                obj{"$ref": "#/$defs/condition", "description": "Run the step only when true; otherwise it is skipped."},
			"timeout":           obj{"$ref": "#/$defs/duration", "description": "Bounds one attempt."},
			"retry":             obj{"$ref": "#/$defs/retry"},
			"until":             obj{"$ref": "#/$defs/until"},
			"continue_on_error": obj{"type": "boolean", "description": "A failure of this step does not stop the run."},
			"milestone":         obj{"type": "string", "description": "Names the moment this step succeeds (e.g. database writable); reports measure it from the run's start."},
			"rollback":          obj{"$ref": "#/$defs/rollback"},
			"parallel":          obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/$defs/step"}, "description": "Makes the step a group: its children run concurrently."},
			"max_parallel":      obj{"type": "integer", "minimum": 1, "description": "On a group: at most this many children at a time."},
		},
		"allOf": stepRules,
	}

	return obj{
		"$schema":     "https://json-schema.org/draft/2020-12/schema",
		"$id":         SchemaID,
		"title":       "runbook, language version 1",
		"description": "A declarative runbook: inputs, plugins and steps. Generated by `runbook schema` with the plugins " + pluginNames(plugins) + ".",
		"type":        "object",
		"required":    []any{"version", "steps"},
		"properties": obj{
			"version":     obj{"const": 1, "description": "The language version: always 1."},
			"name":        obj{"type": "string", "description": "Shown in progress, journals and reports (default: the file name)."},
			"description": obj{"type": "string"},
			"inputs": obj{"type": "object", "propertyNames": obj{"$ref": "#/$defs/name"},
				"additionalProperties": obj{"$ref": "#/$defs/input"}, "description": "Input declarations, by name."},
			"plugins": obj{"type": "object", "propertyNames": obj{"$ref": "#/$defs/name", "not": obj{"const": "core"}},
				"additionalProperties": obj{"$ref": "#/$defs/plugin"}, "description": "Plugin executables, by name (core is built in)."},
			"defaults": obj{"type": "object", "additionalProperties": false, "description": "timeout and retry for steps that set none.",
				"properties": obj{"timeout": obj{"$ref": "#/$defs/duration"}, "retry": obj{"$ref": "#/$defs/retry"}}},
			"on_failure": obj{"enum": []any{"rollback", "stop"}, "description": "rollback (default): compensate the completed steps; stop: nothing more runs."},
			"steps":      obj{"type": "array", "minItems": 1, "items": obj{"$ref": "#/$defs/step"}},
			"finally": obj{"type": "array", "items": obj{"$ref": "#/$defs/step"},
				"description": "Read-only steps run at the end of every run, after the steps and any rollback, whatever happened."},
			"outputs": obj{"type": "object", "propertyNames": obj{"$ref": "#/$defs/name"},
				"description": "Values computed when the run ends, usually ${{ }} expressions."},
		},
		"patternProperties":    obj{"^x-": obj{"description": "Ignored: a place for shared YAML anchors."}},
		"additionalProperties": false,
		"$defs":                defs,
	}
}

// escapeRef escapes a $defs key for use in a JSON pointer.
func escapeRef(s string) string {
	return strings.NewReplacer("~", "~0", "/", "~1").Replace(s)
}

// withSchema is an action's parameter schema as `with` accepts it: any
// value below the top may also be a ${{ }} expression.
func withSchema(s *schema.Schema) obj {
	out := paramSchema(s)
	if out["type"] == nil {
		out["type"] = "object"
	}
	return out
}

func paramSchema(s *schema.Schema) obj {
	out := obj{}
	if s == nil {
		return out
	}
	if s.Type != "" {
		out["type"] = s.Type
	}
	if s.Description != "" {
		out["description"] = s.Description
	}
	if len(s.Enum) > 0 {
		out["enum"] = s.Enum
	}
	if s.Default != nil {
		out["default"] = s.Default
	}
	if s.Format == schema.FormatDuration {
		out["pattern"] = durationPattern
	} else if s.Format != "" {
		out["format"] = s.Format
	}
	if s.Minimum != nil {
		out["minimum"] = *s.Minimum
	}
	if s.MinItems != nil {
		out["minItems"] = *s.MinItems
	}
	if s.WriteOnly {
		out["writeOnly"] = true
	}
	if len(s.Properties) > 0 {
		props := obj{}
		for _, n := range s.PropertyNames() {
			props[n] = orExpression(paramSchema(s.Properties[n]))
		}
		out["properties"] = props
	}
	if len(s.Required) > 0 {
		req := make([]any, len(s.Required))
		for i, r := range s.Required {
			req[i] = r
		}
		out["required"] = req
	}
	if s.Items != nil {
		out["items"] = orExpression(paramSchema(s.Items))
	}
	switch {
	case s.Additional != nil:
		out["additionalProperties"] = orExpression(paramSchema(s.Additional))
	case s.Closed:
		out["additionalProperties"] = false
	}
	return out
}

// orExpression accepts s or a ${{ }} expression, keeping s's description
// and default where editors show them.
func orExpression(s obj) obj {
	if len(s) == 0 {
		return s // accepts anything already
	}
	out := obj{"anyOf": []any{s, obj{"$ref": "#/$defs/expression"}}}
	for _, k := range []string{"description", "default"} {
		if v, ok := s[k]; ok {
			out[k] = v
		}
	}
	return out
}

// schemaJSON renders the schema as the command prints it.
func schemaJSON(plugins []*spec.Description) []byte {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false)
	_ = enc.Encode(LanguageSchema(plugins))
	return b.Bytes()
}
