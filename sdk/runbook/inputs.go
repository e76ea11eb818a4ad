package runbook

import (
	"fmt"
	"strings"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/schema"
)

// EnvPrefix starts the environment variables that set inputs:
// RUNBOOK_VAR_dr_region (or RUNBOOK_VAR_DR_REGION).
const EnvPrefix = "RUNBOOK_VAR_"

// InputSources are where input values come from, lowest precedence first:
// declared defaults, then VarFiles in order, then Env, then Vars.
type InputSources struct {
	// Vars are --var arguments: "name=value", "name=@path" (the value is
	// read from a JSON or YAML file; for a string input, the file's text),
	// or "name=@@text" for a value that starts with @.
	Vars []string
	// VarFiles are --var-file paths: a YAML or JSON mapping of inputs.
	VarFiles []string
	// Env is the environment, as os.Environ returns it; only
	// RUNBOOK_VAR_<name> variables are read.
	Env []string
	// Partial returns only the values given (no defaults, no zero values,
	// no "required" check): what `runbook resume` passes on, since a
	// resumed run keeps the inputs it was started with.
	Partial bool
}

// ResolveInputs computes the value of every declared input. Values have the
// declared type (string, float64, bool, []any, map[string]any): an input
// that is neither given nor defaulted, and not required, is its type's zero
// value. Every problem is reported, positioned at its source (a var file's
// line and column, "--var name", "RUNBOOK_VAR_name"); the values of secret
// inputs never appear in a diagnostic. The map is nil if any is an error.
func ResolveInputs(rb *Runbook, src InputSources) (values map[string]any, ds Diagnostics) {
	defer func() {
		if p := recover(); p != nil {
			values = nil
			ds = append(ds, Diagnostic{Pos: Pos{File: rb.Path}, Severity: Error,
				Message: fmt.Sprintf("internal error while resolving inputs (a bug in runbook, please report it): %v", p)})
		}
	}()
	r := &resolver{rb: rb, index: inputIndex{rb: rb}, sug: schema.NewSuggester(), values: map[string]any{}, set: map[string]bool{}, origins: map[string]origin{}}
	for _, in := range rb.Inputs {
		if in.HasDefault && !src.Partial {
			r.values[in.Name] = deepCopy(in.Default)
			r.origins[in.Name] = origin{at: in.Pos, what: "the default of input " + in.Name}
		}
	}
	for _, path := range src.VarFiles {
		r.varFile(path)
	}
	r.env(src.Env)
	for _, arg := range src.Vars {
		r.cliVar(arg)
	}
	for _, in := range rb.Inputs {
		if _, ok := r.values[in.Name]; ok || r.set[in.Name] || src.Partial {
			continue // set, or given with a value already reported
		}
		if in.Required {
			r.add(in.Pos, Error, "input %s is required: give it with --var %s=..., in a --var-file, or in %s%s", in.Name, in.Name, EnvPrefix, in.Name)
			continue
		}
		r.values[in.Name] = zeroValue(in.Type)
		r.origins[in.Name] = origin{at: in.Pos, what: fmt.Sprintf("input %s was not given", in.Name)}
	}
	if !src.Partial {
		r.checkInputPaths()
		if !r.diags.HasErrors() {
			r.checkInputExprs()
		}
	}
	r.diags.Sort()
	if r.diags.HasErrors() {
		return nil, r.diags
	}
	return r.values, r.diags
}

type resolver struct {
	rb     *Runbook
	index  inputIndex
	sug    *schema.Suggester
	values map[string]any
	set    map[string]bool // inputs some source gave (validly or not)
	// origins say where each value in values came from.
	origins map[string]origin
	diags   Diagnostics
}

func (r *resolver) add(p Pos, sev Severity, format string, args ...any) {
	r.diags = append(r.diags, Diagnostic{Pos: p, Severity: sev, Message: capMessage(fmt.Sprintf(format, args...))})
}

// lookup finds a declared input, reporting an unknown name at p.
func (r *resolver) lookup(name string, p Pos, sev Severity) *Input {
	if in := r.index.get(name); in != nil {
		return in
	}
	names := r.index.all()
	switch sug := r.sug.Suggest(name, names); {
	case sug != "":
		r.add(p, sev, "unknown input %q (did you mean %q?)", shownName(name), sug)
	case len(names) == 0:
		r.add(p, sev, "unknown input %q: the runbook declares no inputs", shownName(name))
	default:
		r.add(p, sev, "unknown input %q (the runbook declares %s)", shownName(name), strings.Join(names, ", "))
	}
	return nil
}

func (r *resolver) varFile(path string) {
	src, err := readCapped(path, MaxSourceBytes)
	if err != nil {
		r.add(Pos{File: path}, Error, "var file: %v", err)
		return
	}
	d := &decoder{source: newSource(path, src)}
	defer func() { r.diags = append(r.diags, d.diags...) }()
	root, ok := d.parseDocument()
	if !ok || root == nil || isNull(root) {
		return // an empty var file sets nothing
	}
	es, ok := d.mapping(root, "a var file")
	if !ok {
		return
	}
	for _, e := range es {
		in := r.lookup(e.Key, d.pos(e.K), Error)
		if in == nil {
			continue
		}
		r.set[in.Name] = true
		if v, ok := r.fromNode(d, in, e.V); ok {
			r.values[in.Name] = v
			r.origins[in.Name] = origin{src: d.source, node: e.V}
		}
	}
}

func (r *resolver) env(environ []string) {
	type envVal struct{ name, key, value string }
	byInput := map[string]envVal{}
	for _, kv := range environ {
		key, value, ok := strings.Cut(kv, "=")
		if !ok || !strings.HasPrefix(key, EnvPrefix) || len(key) == len(EnvPrefix) {
			continue
		}
		name := key[len(EnvPrefix):]
		in := r.index.get(name)
		if in == nil {
			in = r.index.get(strings.ToLower(name))
		}
		if in == nil {
			r.lookup(strings.ToLower(name), Pos{File: key}, Warning)
			continue
		}
		if prev, dup := byInput[in.Name]; dup && prev.value != value {
			if !in.Secret {
				r.add(Pos{File: key}, Error, "%s and %s both set input %s, to different values", prev.key, key, in.Name)
			} else {
				r.add(Pos{File: key}, Error, "%s and %s both set input %s, to different values (secret, not shown)", prev.key, key, in.Name)
			}
			continue
		}
		byInput[in.Name] = envVal{name: in.Name, key: key, value: value}
	}
	for _, name := range sortedKeys(byInput) {
		ev := byInput[name]
		in := r.index.get(name)
		r.set[name] = true
		if v, ok := r.fromText(in, ev.value, Pos{File: ev.key}); ok {
			r.values[name] = v
			r.origins[name] = origin{at: Pos{File: ev.key}}
		}
	}
}

func (r *resolver) cliVar(arg string) {
	name, value, ok := strings.Cut(arg, "=")
	if !ok || name == "" {
		r.add(Pos{File: "--var " + arg}, Error, "--var takes name=value (or name=@file), not %q", arg)
		return
	}
	at := Pos{File: "--var " + name}
	in := r.lookup(name, at, Error)
	if in == nil {
		return
	}
	r.set[name] = true
	switch {
	case strings.HasPrefix(value, "@@"):
		value = value[1:]
	case strings.HasPrefix(value, "@"):
		if v, o, ok := r.fromFile(in, value[1:], at); ok {
			r.values[name] = v
			r.origins[name] = o
		}
		return
	}
	if v, ok := r.fromText(in, value, at); ok {
		r.values[name] = v
		r.origins[name] = origin{at: at}
	}
}

// fromFile reads a value from a file named with name=@path: a string
// input takes the file's text (without a final line break); other types
// parse it as JSON (a file named .json) or YAML.
func (r *resolver) fromFile(in *Input, path string, at Pos) (any, origin, bool) {
	if path == "" {
		r.add(at, Error, "--var %s=@ needs a file name after @ (write @@ for a value starting with @)", in.Name)
		return nil, origin{}, false
	}
	src, err := readCapped(path, MaxSourceBytes)
	if err != nil {
		r.add(at, Error, "%s: %v", path, err)
		return nil, origin{}, false
	}
	if in.Type == TypeString {
		s := strings.TrimSuffix(strings.TrimSuffix(string(src), "\n"), "\r")
		v, ok := r.checkEnum(in, s, at)
		return v, origin{at: at}, ok
	}
	d := &decoder{source: newSource(path, src)}
	defer func() { r.diags = append(r.diags, d.diags...) }()
	root, ok := d.parseDocument()
	if !ok {
		return nil, origin{}, false
	}
	if root == nil {
		d.add(Pos{File: path, Line: 1, Col: 1}, Error, "the file is empty (for --var %s)", in.Name)
		return nil, origin{}, false
	}
	v, ok := r.fromNode(d, in, root)
	return v, origin{src: d.source, node: root}, ok
}

// fromNode coerces a YAML value (from a var file, or a file given with @)
// to the input's type.
func (r *resolver) fromNode(d *decoder, in *Input, n *yaml.Node) (any, bool) {
	at := d.pos(n)
	n = deref(n)
	if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
		switch in.Type {
		case TypeString:
			// A YAML scalar is the text it is written as: version: 1.10 is "1.10".
			return r.checkEnum(in, n.Value, at)
		case TypeNumber, TypeBool:
			return r.fromText(in, n.Value, at)
		}
	}
	before := len(d.diags)
	v, ok := d.plain(n, "input "+in.Name)
	if !ok {
		if in.Secret {
			// The decoder's messages may quote the value.
			for i := before; i < len(d.diags); i++ {
				d.diags[i].Message = fmt.Sprintf("input %s: not a valid value (secret, not shown)", in.Name)
			}
		}
		return nil, false
	}
	if msg := checkInputType(in.Type, v); msg != "" {
		r.add(at, Error, "input %s %s", in.Name, msg)
		return nil, false
	}
	return r.checkEnum(in, v, at)
}

// fromText coerces text (a --var value, an environment variable) to the
// input's type.
func (r *resolver) fromText(in *Input, text string, at Pos) (any, bool) {
	shown := func() string { return shortValue(text, in.Secret) }
	switch in.Type {
	case TypeString:
		return r.checkEnum(in, text, at)
	case TypeNumber:
		f, problem := parseNumber(strings.TrimSpace(text))
		switch {
		case problem == "":
			return r.checkEnum(in, f, at)
		case in.Secret || strings.HasSuffix(problem, "is not a number"):
			// A word, or a value the message must not quote.
			r.add(at, Error, "input %s must be a number, not %s", in.Name, shown())
		default:
			r.add(at, Error, "input %s must be a number: %s", in.Name, problem)
		}
		return nil, false
	case TypeBool:
		switch strings.ToLower(strings.TrimSpace(text)) {
		case "true", "yes", "1":
			return r.checkEnum(in, true, at)
		case "false", "no", "0":
			return r.checkEnum(in, false, at)
		}
		r.add(at, Error, "input %s must be true or false (or yes/no, 1/0), not %s", in.Name, shown())
		return nil, false
	}
	// list and map: JSON or YAML text, such as '["a","b"]' or '{a: 1}'.
	d := &decoder{source: newSource(at.File, []byte(text))}
	root, ok := d.parseDocument()
	if !ok || root == nil {
		msg := "input %s must be %s written in JSON or YAML, such as %s"
		example := `'["a", "b"]'`
		if in.Type == TypeMap {
			example = `'{"key": "value"}', or @file.json`
		}
		if !ok && !in.Secret && len(d.diags) > 0 {
			msg += " (" + d.diags[0].Message + ")"
		}
		r.add(at, Error, msg, in.Name, typeArticle(in.Type), example)
		return nil, false
	}
	v, ok := d.plain(root, "input "+in.Name)
	if !ok {
		if in.Secret || len(d.diags) == 0 {
			r.add(at, Error, "input %s: not a valid value", in.Name)
		} else {
			r.add(at, Error, "%s", d.diags[0].Message)
		}
		return nil, false
	}
	if msg := checkInputType(in.Type, v); msg != "" {
		r.add(at, Error, "input %s %s", in.Name, msg)
		return nil, false
	}
	return v, true
}

func (r *resolver) checkEnum(in *Input, v any, at Pos) (any, bool) {
	if len(in.Enum) > 0 && !inEnum(in.Enum, v) {
		r.add(at, Error, "input %s must be one of %s, not %s", in.Name, enumString(in.Enum), shortValue(v, in.Secret))
		return nil, false
	}
	return v, true
}

func zeroValue(t InputType) any {
	switch t {
	case TypeNumber:
		return float64(0)
	case TypeBool:
		return false
	case TypeList:
		return []any{}
	case TypeMap:
		return map[string]any{}
	}
	return ""
}

func deepCopy(v any) any {
	switch x := v.(type) {
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[k] = deepCopy(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = deepCopy(e)
		}
		return out
	}
	return v
}

// Redactor returns a redactor holding the values of the inputs declared
// secret, every scalar inside them (sdk/redact says how each kind is
// found): the one redactor of a run, to share between the plugin host and
// the engine.
func (r *Runbook) Redactor(inputs map[string]any) *redact.Redactor {
	red := redact.New()
	for _, in := range r.Inputs {
		if in.Secret {
			red.AddValue(inputs[in.Name])
		}
	}
	return red
}

// inputIndex finds declared inputs by name in constant time (a file may
// declare thousands) and lists their names for suggestions. It is built
// on first use, once the inputs are decoded; the first declaration of a
// name wins, as in Runbook.Input.
type inputIndex struct {
	rb     *Runbook
	byName map[string]*Input
	names  []string
}

func (x *inputIndex) get(name string) *Input {
	x.build()
	return x.byName[name]
}

func (x *inputIndex) all() []string {
	x.build()
	return x.names
}

func (x *inputIndex) build() {
	if x.byName != nil {
		return
	}
	x.byName = make(map[string]*Input, len(x.rb.Inputs))
	for _, in := range x.rb.Inputs {
		if _, dup := x.byName[in.Name]; !dup {
			x.byName[in.Name] = in
			x.names = append(x.names, in.Name)
		}
	}
}
