package runbook

import (
	"fmt"
	"path/filepath"
	"regexp"
	"strings"
	"time"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// idRe is the syntax of step ids, input, plugin and output names: they are
// read in expressions (steps.<id>, inputs.<name>) and in environment
// variable names.
var idRe = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)

var (
	runbookKeys  = []string{"version", "name", "description", "inputs", "plugins", "defaults", "on_failure", "steps", "finally", "outputs"}
	inputKeys    = []string{"type", "description", "default", "enum", "secret", "required"}
	pluginKeys   = []string{"command", "env"}
	defaultsKeys = []string{"timeout", "retry"}
	retryKeys    = []string{"attempts", "delay", "max_delay", "jitter"}
)

// loader decodes and validates one runbook.
type loader struct {
	*decoder
	opts Options
	rb   *Runbook

	inputTypes map[string]expr.Type
	plugins    map[string]*pluginInfo
	core       *spec.Description

	defTimeout *time.Duration
	defRetry   retrySpec

	steps      []*stepNode // every step, document order
	byID       map[string]*stepNode
	milestones map[string]milestoneMark // milestone -> first step marking it
	tooMany    bool

	// env is the expression environment, grown step by step as validation
	// walks the runbook in order (see check.go); visible mirrors its steps.
	env     expr.Env
	visible map[string]bool

	// wholePaths are the recorded input paths that are a whole expression.
	wholePaths map[*InputPath]bool

	// index finds inputs by name; ids are the step ids, for suggestions.
	index inputIndex
	ids   []string

	// early evaluates what can be evaluated at validation (early.go);
	// stopped: validation was interrupted.
	early   *earlyEvaluator
	stopped bool
}

type pluginInfo struct {
	ref  *PluginRef
	key  *yaml.Node
	desc *spec.Description
	// failed: the catalog could not describe it (already reported), so
	// its actions are not checked further.
	failed bool
	used   bool
}

func newLoader(d *decoder, opts Options) *loader {
	rb := &Runbook{}
	return &loader{decoder: d, opts: opts, rb: rb, index: inputIndex{rb: rb}, inputTypes: map[string]expr.Type{}, early: newEarlyEvaluator(opts.Context),
		plugins: map[string]*pluginInfo{}, core: CoreCatalog(), byID: map[string]*stepNode{}, visible: map[string]bool{},
		milestones: map[string]milestoneMark{}}
}

func (l *loader) load(root *yaml.Node) *Runbook {
	es, _ := l.mapping(root, "the runbook")
	// Top-level keys starting with x- are ignored: a place to define YAML
	// anchors shared by steps, as in Compose files.
	kept := es[:0:0]
	for _, e := range es {
		if !strings.HasPrefix(e.Key, "x-") {
			kept = append(kept, e)
		}
	}
	f := l.known(kept, "the runbook", runbookKeys...)
	rb := l.rb

	if e, ok := f["version"]; !ok {
		l.add(l.pos(root), Error, "version is missing: add `version: 1` at the top")
	} else if v, ok := l.integer(e.V, "version"); ok {
		if v != 1 {
			l.errorf(e.V, "unsupported version %d: this runbook tool reads version 1", v)
		}
		rb.Version = v
	}
	if e, ok := f["name"]; ok {
		if s, ok := l.str(e.V, "name"); ok && l.noTemplate(e.V, "name") {
			rb.Name = s
		}
	} else {
		rb.Name = strings.TrimSuffix(filepath.Base(l.file), filepath.Ext(l.file))
	}
	if e, ok := f["description"]; ok {
		rb.Description, _ = l.str(e.V, "description")
	}
	rb.OnFailure = OnFailureRollback
	if e, ok := f["on_failure"]; ok {
		if s, ok := l.str(e.V, "on_failure"); ok {
			switch p := FailurePolicy(s); p {
			case OnFailureRollback, OnFailureStop:
				rb.OnFailure = p
			default:
				l.errorf(e.V, "on_failure must be rollback or stop, not %q", s)
			}
		}
	}
	if e, ok := f["inputs"]; ok {
		l.inputs(e.V)
	}
	var plugins *yaml.Node
	if e, ok := f["plugins"]; ok {
		plugins = e.V
	}
	l.pluginSection(plugins)
	if e, ok := f["defaults"]; ok {
		l.defaults(e.V)
	}
	rb.Defaults = Defaults{Timeout: l.timeout(nil), Retry: retrySpec{}.resolve(l.defRetry)}
	if e, ok := f["steps"]; ok {
		l.stepList(e.V)
	} else {
		l.add(l.pos(root), Error, "steps is missing: a runbook needs at least one step")
	}
	var finally []*stepNode
	if e, ok := f["finally"]; ok {
		finally = l.finallyList(e.V)
	}
	l.checkSteps()
	l.checkFinally(finally)
	if e, ok := f["outputs"]; ok {
		l.outputs(e.V)
	}
	for _, name := range sortedKeys(l.plugins) {
		if p := l.plugins[name]; !p.used {
			l.warnf(p.key, "plugin %s is declared but no step uses it", name)
		}
	}
	return rb
}

// inputs decodes input declarations.
func (l *loader) inputs(n *yaml.Node) {
	es, _ := l.mapping(n, "inputs")
	for _, e := range es {
		name := e.Key
		what := fmt.Sprintf("input %s", name)
		if !idRe.MatchString(name) {
			l.errorf(e.K, "invalid input name %q: use lower case letters, digits and _, starting with a letter", shownName(name))
		}
		in := &Input{Name: name, Pos: l.pos(e.K)}
		f, ok := l.fields(e.V, what, inputKeys...)
		if !ok {
			continue
		}
		typeOK := false
		if t, ok := f["type"]; !ok {
			l.errorf(e.K, "%s: type is missing (string, number, bool, list or map)", what)
		} else if s, ok := l.str(t.V, what+": type"); ok {
			switch it := InputType(s); it {
			case TypeString, TypeNumber, TypeBool, TypeList, TypeMap:
				in.Type, typeOK = it, true
			default:
				l.errorf(t.V, "%s: unknown type %q (use string, number, bool, list or map%s)", what, s, typeHint(s))
			}
		}
		if v, ok := f["description"]; ok {
			in.Description, _ = l.str(v.V, what+": description")
		}
		if v, ok := f["secret"]; ok {
			in.Secret, _ = l.boolean(v.V, what+": secret")
		}
		if v, ok := f["required"]; ok {
			in.Required, _ = l.boolean(v.V, what+": required")
		}
		if v, ok := f["enum"]; ok {
			if deref(v.V).Kind != yaml.SequenceNode {
				l.errorf(v.V, "%s: enum must be a list of allowed values, not %s", what, describeNode(v.V))
			} else {
				if typeOK && (in.Type == TypeList || in.Type == TypeMap) {
					l.errorf(v.K, "%s: enum applies to string, number and bool inputs, not %s", what, in.Type)
				}
				for _, c := range deref(v.V).Content {
					val, ok := l.plain(c, what+": enum")
					if !ok {
						continue
					}
					if typeOK {
						if err := checkInputType(in.Type, val); err != "" {
							l.errorf(c, "%s: enum value %s", what, err)
							continue
						}
					}
					in.Enum = append(in.Enum, val)
				}
				if len(deref(v.V).Content) == 0 {
					l.errorf(v.V, "%s: enum is empty", what)
				}
			}
		}
		if v, ok := f["default"]; ok {
			if val, ok := l.plain(v.V, what+": default"); ok {
				in.Default, in.HasDefault = val, true
				if hasTemplateValue(val) {
					l.errorf(v.V, "%s: default cannot use ${{ }}: defaults are fixed values", what)
				} else if typeOK {
					if err := checkInputType(in.Type, val); err != "" {
						l.errorf(v.V, "%s: default %s", what, err)
					} else if len(in.Enum) > 0 && !inEnum(in.Enum, val) {
						l.errorf(v.V, "%s: default %s is not one of the allowed values (%s)", what, shortValue(val, in.Secret), enumString(in.Enum))
					}
				}
			}
			if in.Required {
				l.warnf(v.K, "%s is required and has a default: the default is never used", what)
			}
		}
		if typeOK {
			l.inputTypes[name] = expr.InputType(string(in.Type))
		} else {
			l.inputTypes[name] = expr.Unknown
		}
		l.rb.Inputs = append(l.rb.Inputs, in)
	}
}

func typeHint(s string) string {
	if sug := schema.Suggest(s, []string{"string", "number", "bool", "list", "map"}); sug != "" {
		return fmt.Sprintf("; did you mean %q?", sug)
	}
	switch strings.ToLower(s) {
	case "int", "integer", "float", "double", "decimal":
		return `; did you mean "number"?`
	case "boolean":
		return `; did you mean "bool"?`
	case "array", "sequence", "slice":
		return `; did you mean "list"?`
	case "object", "dict", "mapping", "hash":
		return `; did you mean "map"?`
	case "str", "text":
		return `; did you mean "string"?`
	}
	return ""
}

func hasTemplateValue(v any) bool {
	switch x := v.(type) {
	case string:
		return expr.HasTemplate(x)
	case []any:
		for _, e := range x {
			if hasTemplateValue(e) {
				return true
			}
		}
	case map[string]any:
		for _, e := range x {
			if hasTemplateValue(e) {
				return true
			}
		}
	}
	return false
}

// pluginSection decodes `plugins:` and asks the catalog about them.
func (l *loader) pluginSection(n *yaml.Node) {
	var refs []*PluginRef
	if n != nil {
		es, _ := l.mapping(n, "plugins")
		if len(es) > MaxPlugins {
			// Each is looked up and described by running it.
			l.errorf(es[MaxPlugins].K, "too many plugins: a runbook declares at most %d", MaxPlugins)
			es = es[:MaxPlugins]
		}
		for _, e := range es {
			name := e.Key
			what := "plugin " + name
			switch {
			case name == CorePlugin:
				l.errorf(e.K, "core is the built-in plugin; it is not declared under plugins:")
				continue
			case !idRe.MatchString(name):
				l.errorf(e.K, "invalid plugin name %q: use lower case letters, digits and _, starting with a letter", shownName(name))
				continue
			}
			ref := &PluginRef{Name: name, Pos: l.pos(e.K)}
			f, ok := l.fields(e.V, what, pluginKeys...)
			if !ok {
				if v := deref(e.V); v.Kind == yaml.ScalarNode && v.ShortTag() == "!!str" {
					l.diags[len(l.diags)-1].Message += fmt.Sprintf(" (write { command: %s })", v.Value)
				}
				continue
			}
			if c, ok := f["command"]; !ok {
				l.errorf(e.K, "%s: command is missing (the plugin's executable, such as runbook-plugin-%s)", what, name)
				continue
			} else if s, ok := l.str(c.V, what+": command"); ok && l.noTemplate(c.V, what+": command") {
				if strings.TrimSpace(s) == "" {
					l.errorf(c.V, "%s: command is empty", what)
					continue
				}
				ref.Command = s
			} else {
				continue
			}
			if env, ok := f["env"]; ok {
				es, _ := l.mapping(env.V, what+": env")
				ref.Env = map[string]string{}
				for _, ev := range es {
					if s, ok := l.str(ev.V, fmt.Sprintf("%s: env %s", what, ev.Key)); ok && l.noTemplate(ev.V, what+": env") {
						ref.Env[ev.Key] = s
					}
				}
			}
			if !l.samePlugin(ref, e.K) {
				continue
			}
			l.plugins[name] = &pluginInfo{ref: ref, key: e.K}
			refs = append(refs, ref)
		}
	}
	l.rb.Plugins = refs
	if l.opts.Catalog == nil {
		return
	}
	cat := l.opts.Catalog(refs)
	if cat == nil {
		return
	}
	for _, ref := range refs {
		p := l.plugins[ref.Name]
		desc, err := cat.Plugin(ref.Name)
		switch {
		case err != nil:
			l.errorf(p.key, "%s", pluginError(ref.Name, err))
			p.failed = true
		case desc == nil:
			l.errorf(p.key, "plugin %s: no description", ref.Name)
			p.failed = true
		default:
			p.desc = desc
		}
	}
}

// pluginError names the plugin in a catalog's error, unless the error
// already starts with it (pluginhost's errors do: "plugin aws: ...").
func pluginError(name string, err error) string {
	msg := err.Error()
	if rest, ok := strings.CutPrefix(msg, "plugin "+name); ok && (strings.HasPrefix(rest, ":") || strings.HasPrefix(rest, " ")) {
		return msg
	}
	return "plugin " + name + ": " + msg
}

// retrySpec is a retry policy as written: unset fields are nil.
type retrySpec struct {
	attempts        *int
	delay, maxDelay *time.Duration
	jitter          *bool
}

func (l *loader) retry(n *yaml.Node, what string) retrySpec {
	var r retrySpec
	if deref(n).Kind == yaml.ScalarNode && !isNull(n) {
		l.errorf(n, "%s must be a mapping such as { attempts: 3, delay: 2s }, not %s", what, describeNode(n))
		return r
	}
	f, ok := l.fields(n, what, retryKeys...)
	if !ok {
		return r
	}
	if e, ok := f["attempts"]; ok {
		if v, ok := l.integer(e.V, what+": attempts"); ok {
			switch {
			case v < 1:
				l.errorf(e.V, "%s: attempts must be at least 1 (1 means no retry)", what)
			case v > MaxAttempts:
				l.errorf(e.V, "%s: attempts must be at most %d, not %d (to wait for a condition, use until with a timeout)", what, MaxAttempts, v)
			default:
				r.attempts = &v
			}
		}
	}
	if e, ok := f["delay"]; ok {
		if v, ok := l.duration(e.V, what+": delay"); ok && l.atLeast(e.V, what+": delay", v, MinRetryDelay) {
			r.delay = &v
		}
	}
	if e, ok := f["max_delay"]; ok {
		if v, ok := l.duration(e.V, what+": max_delay"); ok && l.atLeast(e.V, what+": max_delay", v, MinRetryDelay) {
			r.maxDelay = &v
			if r.delay != nil && v < *r.delay {
				l.errorf(e.V, "%s: max_delay (%s) is shorter than delay (%s)", what, v, *r.delay)
			}
		}
	}
	if e, ok := f["jitter"]; ok {
		if v, ok := l.boolean(e.V, what+": jitter"); ok {
			r.jitter = &v
		}
	}
	return r
}

// resolve fills a Retry from r, then from the fallback, then the built-ins.
func (r retrySpec) resolve(fallback retrySpec) Retry {
	out := Retry{Attempts: DefaultAttempts, Delay: DefaultDelay, MaxDelay: DefaultMaxDelay, Jitter: true}
	for _, s := range []retrySpec{fallback, r} {
		if s.attempts != nil {
			out.Attempts = *s.attempts
		}
		if s.delay != nil {
			out.Delay = *s.delay
		}
		if s.maxDelay != nil {
			out.MaxDelay = *s.maxDelay
		}
		if s.jitter != nil {
			out.Jitter = *s.jitter
		}
	}
	if out.MaxDelay < out.Delay {
		out.MaxDelay = out.Delay
	}
	return out
}

// merge returns r with unset fields taken from base.
func (r retrySpec) merge(base retrySpec) retrySpec {
	if r.attempts == nil {
		r.attempts = base.attempts
	}
	if r.delay == nil {
		r.delay = base.delay
	}
	if r.maxDelay == nil {
		r.maxDelay = base.maxDelay
	}
	if r.jitter == nil {
		r.jitter = base.jitter
	}
	return r
}

func (l *loader) defaults(n *yaml.Node) {
	f, ok := l.fields(n, "defaults", defaultsKeys...)
	if !ok {
		return
	}
	if e, ok := f["timeout"]; ok {
		if v, ok := l.positiveDuration(e.V, "defaults: timeout"); ok {
			l.defTimeout = &v
		}
	}
	if e, ok := f["retry"]; ok {
		l.defRetry = l.retry(e.V, "defaults: retry")
	}
}

func (l *loader) positiveDuration(n *yaml.Node, what string) (time.Duration, bool) {
	v, ok := l.duration(n, what)
	if ok && v == 0 {
		l.errorf(n, "%s must be greater than zero", what)
		return 0, false
	}
	return v, ok
}

// atLeast reports whether d is at least floor, else reports it at n.
func (l *loader) atLeast(n *yaml.Node, what string, d, floor time.Duration) bool {
	if d < floor {
		l.errorf(n, "%s must be at least %s, not %s (every attempt and poll is a journal record)", what, floor, d)
		return false
	}
	return true
}

// timeout resolves a step's timeout: its own, else the defaults', else the
// built-in one.
func (l *loader) timeout(own *time.Duration) time.Duration {
	switch {
	case own != nil:
		return *own
	case l.defTimeout != nil:
		return *l.defTimeout
	}
	return DefaultTimeout
}

// outputs decodes the runbook's outputs; every step is visible to them.
func (l *loader) outputs(n *yaml.Node) {
	es, _ := l.mapping(n, "outputs")
	for _, e := range es {
		if !idRe.MatchString(e.Key) {
			l.errorf(e.K, "invalid output name %q: use lower case letters, digits and _, starting with a letter", shownName(e.Key))
			continue
		}
		ctx := &exprCtx{what: "outputs." + e.Key}
		v, _, _ := l.value(e.V, ctx, nil, "", nil)
		l.rb.Outputs = append(l.rb.Outputs, &Output{Name: e.Key, Value: v, Secret: ctx.secret, Pos: l.pos(e.K)})
	}
}

// checkInputType reports how v fails to be a value of type t ("" if it is
// one).
func checkInputType(t InputType, v any) string {
	ok := false
	switch t {
	case TypeString:
		_, ok = v.(string)
	case TypeNumber:
		_, ok = v.(float64)
	case TypeBool:
		_, ok = v.(bool)
	case TypeList:
		_, ok = v.([]any)
	case TypeMap:
		_, ok = v.(map[string]any)
	}
	if ok {
		return ""
	}
	return fmt.Sprintf("must be %s, not %s", typeArticle(t), schema.Describe(v))
}

func typeArticle(t InputType) string {
	switch t {
	case TypeString:
		return "a string"
	case TypeNumber:
		return "a number"
	case TypeBool:
		return "a boolean (true or false)"
	case TypeList:
		return "a list"
	}
	return "a mapping"
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		if e == v {
			return true
		}
	}
	return false
}

func enumString(enum []any) string {
	parts := make([]string, len(enum))
	for i, e := range enum {
		parts[i] = shortValue(e, false)
	}
	return strings.Join(parts, ", ")
}

// shortValue shows a value in a message; secret values never are.
func shortValue(v any, secret bool) string {
	if secret {
		return "(secret value)"
	}
	switch x := v.(type) {
	case string:
		if r := []rune(x); len(r) > 60 {
			x = string(r[:57]) + "..."
		}
		return fmt.Sprintf("%q", x)
	case nil:
		return "null"
	case float64:
		return expr.Stringify(x)
	}
	return fmt.Sprint(v)
}

// input is the declared input named name (nil if none).
func (l *loader) input(name string) *Input { return l.index.get(name) }

// inputNames are the declared inputs' names.
func (l *loader) inputNames() []string { return l.index.all() }

// stepIDs are the ids of every step, once all are decoded.
func (l *loader) stepIDs() []string {
	if l.ids == nil {
		l.ids = sortedKeys(l.byID)
	}
	return l.ids
}
