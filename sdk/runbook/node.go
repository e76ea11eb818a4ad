package runbook

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
	"unicode/utf8"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/schema"
)

// decoder turns yaml.v3 nodes into values, recording every problem as a
// positioned diagnostic and carrying on, so that one run reports them all.
type decoder struct {
	*source
	diags Diagnostics
	sug   *schema.Suggester
}

// suggest is schema.Suggest within one budget per file (see
// schema.Suggester): a file full of unknown names validates quickly.
func (d *decoder) suggest(name string, candidates []string) string {
	if d.sug == nil {
		d.sug = schema.NewSuggester()
	}
	return d.sug.Suggest(name, candidates)
}

func (d *decoder) add(p Pos, sev Severity, format string, args ...any) {
	d.diags = append(d.diags, Diagnostic{Pos: p, Severity: sev, Message: capMessage(fmt.Sprintf(format, args...))})
}

// maxMessage bounds a diagnostic's message: one quoting a 4 MiB key or
// expression would otherwise repeat it.
const maxMessage = 2000

func capMessage(s string) string {
	if len(s) <= maxMessage {
		return s
	}
	cut := maxMessage
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + fmt.Sprintf("... (%d more bytes)", len(s)-cut)
}

func (d *decoder) errorf(n *yaml.Node, format string, args ...any) {
	d.add(d.pos(n), Error, format, args...)
}

func (d *decoder) warnf(n *yaml.Node, format string, args ...any) {
	d.add(d.pos(n), Warning, format, args...)
}

// deref follows aliases (checked for cycles and expansion size beforehand).
func deref(n *yaml.Node) *yaml.Node {
	for n != nil && n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	return n
}

func isNull(n *yaml.Node) bool {
	n = deref(n)
	return n == nil || n.Kind == yaml.ScalarNode && n.ShortTag() == "!!null"
}

// describeNode names the kind of a node for messages ("a list", "an integer").
func describeNode(n *yaml.Node) string {
	n = deref(n)
	if n == nil {
		return "nothing"
	}
	switch n.Kind {
	case yaml.MappingNode:
		return "a mapping"
	case yaml.SequenceNode:
		return "a list"
	case yaml.DocumentNode:
		return "a document"
	}
	switch n.ShortTag() {
	case "!!null":
		return "null"
	case "!!bool":
		return "a boolean (" + n.Value + ")"
	case "!!int":
		return "an integer (" + n.Value + ")"
	case "!!float":
		return "a number (" + n.Value + ")"
	}
	return "a string"
}

// entry is one key of a mapping.
type entry struct {
	Key  string
	K, V *yaml.Node
}

// mapping returns the entries of a mapping node in order, with merge keys
// (<<: *anchor) applied. Null is an empty mapping. Duplicate and non-string
// keys are reported. what names the mapping in messages.
func (d *decoder) mapping(n *yaml.Node, what string) ([]entry, bool) {
	n = deref(n)
	if isNull(n) {
		return nil, true
	}
	if n.Kind != yaml.MappingNode {
		d.errorf(n, "%s must be a mapping, not %s", what, describeNode(n))
		return nil, false
	}
	var out []entry
	seen := map[string]*yaml.Node{}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k, v := deref(n.Content[i]), n.Content[i+1]
		if k.Kind != yaml.ScalarNode {
			d.errorf(k, "%s: keys must be strings, not %s", what, describeNode(k))
			continue
		}
		if k.ShortTag() == "!!merge" {
			merges = append(merges, v)
			continue
		}
		if first, dup := seen[k.Value]; dup {
			d.errorf(k, "duplicate key %q in %s (first at line %d)", k.Value, what, first.Line)
			continue
		}
		seen[k.Value] = k
		out = append(out, entry{Key: k.Value, K: k, V: v})
	}
	// Merged keys come after the mapping's own, which take precedence; an
	// earlier merge source wins over a later one, as YAML specifies.
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, src := range srcs {
			src = deref(src)
			if src.Kind != yaml.MappingNode {
				d.errorf(src, "%s: a merge key (<<) takes a mapping or a list of mappings, not %s", what, describeNode(src))
				continue
			}
			es, _ := d.mapping(src, what)
			for _, e := range es {
				if _, dup := seen[e.Key]; !dup {
					seen[e.Key] = e.K
					out = append(out, e)
				}
			}
		}
	}
	return out, true
}

// fields decodes a mapping whose keys are fixed: unknown keys are reported
// with a suggestion (or the list of valid keys).
func (d *decoder) fields(n *yaml.Node, what string, known ...string) (map[string]entry, bool) {
	es, ok := d.mapping(n, what)
	if !ok {
		return nil, false
	}
	return d.known(es, what, known...), true
}

// known indexes entries by key, reporting keys not in known.
func (d *decoder) known(es []entry, what string, known ...string) map[string]entry {
	out := make(map[string]entry, len(es))
	for _, e := range es {
		if !contains(known, e.Key) {
			d.unknownKey(e.K, what, known)
			continue
		}
		out[e.Key] = e
	}
	return out
}

func (d *decoder) unknownKey(k *yaml.Node, what string, known []string) {
	if s := d.suggest(k.Value, known); s != "" {
		d.errorf(k, "unknown key %q in %s (did you mean %q?)", shownName(k.Value), what, s)
		return
	}
	d.errorf(k, "unknown key %q in %s (valid keys: %s)", shownName(k.Value), what, strings.Join(known, ", "))
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

// noTemplate reports a ${{ }} where a value is fixed at validation.
func (d *decoder) noTemplate(n *yaml.Node, what string) bool {
	if n.Kind == yaml.ScalarNode && expr.HasTemplate(n.Value) {
		d.errorf(n, "%s cannot use ${{ }}: it is fixed when the runbook is validated", what)
		return false
	}
	return true
}

// str decodes a string scalar.
func (d *decoder) str(n *yaml.Node, what string) (string, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!str" {
		hint := ""
		if n.Kind == yaml.ScalarNode && n.ShortTag() != "!!null" {
			hint = fmt.Sprintf(" (quote it: %q)", n.Value)
		}
		d.errorf(n, "%s must be a string, not %s%s", what, describeNode(n), hint)
		return "", false
	}
	return n.Value, true
}

func (d *decoder) boolean(n *yaml.Node, what string) (bool, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!bool" {
		d.errorf(n, "%s must be true or false, not %s", what, describeNode(n))
		return false, false
	}
	var b bool
	if err := n.Decode(&b); err != nil {
		d.errorf(n, "%s: %v", what, err)
		return false, false
	}
	return b, true
}

func (d *decoder) integer(n *yaml.Node, what string) (int, bool) {
	n = deref(n)
	if n.Kind != yaml.ScalarNode || n.ShortTag() != "!!int" {
		d.errorf(n, "%s must be an integer, not %s", what, describeNode(n))
		return 0, false
	}
	f, problem := parseNumber(n.Value)
	if problem != "" {
		d.errorf(n, "%s must be an integer: %s", what, problem)
		return 0, false
	}
	if f != math.Trunc(f) || math.Abs(f) > math.MaxInt32 {
		d.errorf(n, "%s must be an integer: %s is out of range", what, n.Value)
		return 0, false
	}
	return int(f), true
}

// duration decodes a Go duration string such as "90s" or "1h30m".
func (d *decoder) duration(n *yaml.Node, what string) (time.Duration, bool) {
	n = deref(n)
	if n.Kind == yaml.ScalarNode {
		switch n.ShortTag() {
		case "!!int", "!!float":
			d.errorf(n, "%s must be a duration with a unit, such as %ss or %sm, not a bare number", what, n.Value, n.Value)
			return 0, false
		case "!!str":
			if !d.noTemplate(n, what) {
				return 0, false
			}
			v, err := time.ParseDuration(n.Value)
			if err != nil {
				d.errorf(n, "%s: %q is not a duration (use Go syntax such as 90s, 15m or 1h30m)", what, n.Value)
				return 0, false
			}
			if v < 0 {
				d.errorf(n, "%s must not be negative", what)
				return 0, false
			}
			return v, true
		}
	}
	d.errorf(n, "%s must be a duration such as 30s or 10m, not %s", what, describeNode(n))
	return 0, false
}

// plain converts a node to plain data: map[string]any, []any, string,
// float64, bool or nil. Templates are left as the strings they are.
func (d *decoder) plain(n *yaml.Node, what string) (any, bool) {
	n = deref(n)
	switch n.Kind {
	case yaml.MappingNode:
		es, ok := d.mapping(n, what)
		m := make(map[string]any, len(es))
		for _, e := range es {
			v, vok := d.plain(e.V, what)
			ok = ok && vok
			m[e.Key] = v
		}
		return m, ok
	case yaml.SequenceNode:
		l := make([]any, 0, len(n.Content))
		ok := true
		for _, c := range n.Content {
			v, vok := d.plain(c, what)
			ok = ok && vok
			l = append(l, v)
		}
		return l, ok
	case yaml.ScalarNode:
		return d.scalar(n, what)
	}
	d.errorf(n, "%s: unexpected %s", what, describeNode(n))
	return nil, false
}

func (d *decoder) scalar(n *yaml.Node, what string) (any, bool) {
	switch tag := n.ShortTag(); tag {
	case "!!null":
		return nil, true
	case "!!bool":
		var b bool
		if err := n.Decode(&b); err != nil {
			d.errorf(n, "%s: %q is not a boolean", what, n.Value)
			return nil, false
		}
		return b, true
	case "!!int", "!!float":
		f, problem := parseNumber(n.Value)
		if problem != "" {
			d.errorf(n, "%s: %s", what, problem)
			return nil, false
		}
		return f, true
	case "!!str", "!!timestamp":
		if n.Style == 0 && numberRe.MatchString(n.Value) {
			// A number YAML could not hold (1e400): refused, not a string.
			if _, problem := parseNumber(n.Value); problem != "" {
				d.errorf(n, "%s: %s", what, problem)
				return nil, false
			}
		}
		// Timestamps stay as written: runbook values are JSON data.
		return n.Value, true
	default:
		d.errorf(n, "%s: unsupported YAML tag %s", what, tag)
		return nil, false
	}
}

// checkTree bounds the document before it is decoded: nesting depth, and
// the number of nodes once aliases are expanded where they are used (which
// also catches an alias that contains itself). yaml.v3 only guards alias
// expansion when decoding into Go values; we walk nodes ourselves.
func (d *decoder) checkTree(root *yaml.Node) bool {
	type info struct{ size, height int }
	memo := map[*yaml.Node]info{}
	active := map[*yaml.Node]bool{}
	failed, tagged := false, false
	var walk func(n *yaml.Node) info
	walk = func(n *yaml.Node) info {
		if failed {
			return info{}
		}
		if r, ok := memo[n]; ok {
			return r
		}
		if active[n] {
			d.errorf(n, "an alias refers to the node that contains it (recursive anchor &%s)", n.Anchor)
			failed = true
			return info{}
		}
		active[n] = true
		defer delete(active, n)
		if n.Style&yaml.TaggedStyle != 0 {
			// A tag changes what a value is (!!binary, !!int "3") or asks
			// for a type runbook does not have (!custom, !!python/...).
			d.errorf(n, "YAML tags are not supported (%s): write the value itself, quoted if it must stay text", n.Tag)
			tagged = true
		}
		var r info
		switch n.Kind {
		case yaml.AliasNode:
			if n.Alias == nil {
				d.errorf(n, "unknown anchor %q", n.Value)
				failed = true
				return info{}
			}
			r = walk(n.Alias)
		case yaml.DocumentNode, yaml.MappingNode, yaml.SequenceNode:
			r.size = 1
			for _, c := range n.Content {
				ci := walk(c)
				r.size = min(r.size+ci.size, MaxNodes+1)
				r.height = max(r.height, ci.height)
			}
			if n.Kind != yaml.DocumentNode {
				r.height++
			}
		default:
			r.size = 1
		}
		memo[n] = r
		return r
	}
	r := walk(root)
	failed = failed || tagged
	if !failed && r.height > MaxDepth {
		// Point at the first node below the limit, on a deepest path.
		n := deref(root)
		if n.Kind == yaml.DocumentNode && len(n.Content) > 0 {
			n = deref(n.Content[0])
		}
		for depth := 1; depth <= MaxDepth; depth++ {
			h := memo[n].height
			for _, c := range n.Content {
				if memo[c].height == h-1 {
					n = deref(c)
					break
				}
			}
		}
		d.errorf(n, "nesting is deeper than %d levels", MaxDepth)
		failed = true
	}
	if !failed && r.size > MaxNodes {
		d.add(Pos{File: d.file, Line: 1, Col: 1}, Error,
			"the document has more than %d YAML nodes once its aliases are expanded; refusing it (an alias bomb?)", MaxNodes)
		failed = true
	}
	return !failed
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}
