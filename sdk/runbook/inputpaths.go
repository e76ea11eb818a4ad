package runbook

import (
	"context"
	"fmt"
	"strconv"
	"strings"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/schema"
)

// recordInputPaths records the fields an expression (refs, at byte offset
// start of scalar n) reads below map inputs, for ResolveInputs to check.
func (l *loader) recordInputPaths(refs expr.Refs, n *yaml.Node, start int, ctx *exprCtx) {
	for _, p := range refs.InputPaths {
		if in := l.input(p.Input); in == nil || in.Type != TypeMap {
			continue
		}
		ip := &InputPath{Input: p.Input, Keys: p.Keys, Pos: l.valuePos(n, start+p.Offset), What: ctx.what, Guards: guards(ctx.self)}
		l.rb.InputPaths = append(l.rb.InputPaths, ip)
		if p.Whole {
			if l.wholePaths == nil {
				l.wholePaths = map[*InputPath]bool{}
			}
			l.wholePaths[ip] = true
		}
	}
}

// paramPaths gives the parameter's schema to the paths, among those just
// recorded for an exact ${{ }} value, that are the whole expression.
func (l *loader) paramPaths(paths []*InputPath, sch *schema.Schema, uses string) {
	if sch == nil {
		return
	}
	for _, p := range paths {
		if l.wholePaths[p] {
			p.Param, p.Uses = sch, uses
		}
	}
}

// guards are the compiled `if` of a step and of the groups around it. While
// a step's own `if` is compiled it is not set yet, so the paths that `if`
// reads are guarded by the groups only.
func guards(sn *stepNode) []Guard {
	var gs []Guard
	for ; sn != nil; sn = sn.parent {
		if sn.step.If != nil {
			gs = append(gs, Guard{If: sn.step.If})
		}
	}
	return gs
}

// keysString writes keys as an expression does: .name, or ["a key"] for a
// key that is not an identifier.
func keysString(keys []string) string {
	var b strings.Builder
	for _, k := range keys {
		if isIdent(k) {
			b.WriteString("." + k)
		} else {
			b.WriteString("[" + strconv.Quote(k) + "]")
		}
	}
	return b.String()
}

// fieldString names a field of an input's value in messages:
// disaster_recovery.s3_bucket_replication.
func fieldString(keys []string) string {
	return strings.TrimPrefix(keysString(keys), ".")
}

func isIdent(s string) bool {
	if s == "" {
		return false
	}
	for i, c := range s {
		if c != '_' && (c < 'a' || c > 'z') && (c < 'A' || c > 'Z') && (i == 0 || c < '0' || c > '9') {
			return false
		}
	}
	return true
}

// origin is where an input's value came from, for diagnostics about its
// fields: a node of a file (a var file, --var name=@file), or a place with
// no finer position (--var name=text, RUNBOOK_VAR_name, the declaration of
// a defaulted or omitted input).
type origin struct {
	src  *source
	node *yaml.Node
	at   Pos
	// what prefixes messages when the value is not one the user gave:
	// "the default of input x", "input x was not given (so it is {})".
	what string
}

func (o origin) pos(n *yaml.Node) Pos {
	if o.src == nil || n == nil {
		return o.at
	}
	return o.src.pos(n)
}

// child returns the value node of key in mapping node n (merge keys
// included), or nil.
func (o origin) child(n *yaml.Node, key string) *yaml.Node {
	n = deref(n)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var merges []*yaml.Node
	for i := 0; i+1 < len(n.Content); i += 2 {
		k := deref(n.Content[i])
		switch {
		case k.ShortTag() == "!!merge":
			merges = append(merges, n.Content[i+1])
		case k.Kind == yaml.ScalarNode && k.Value == key:
			return deref(n.Content[i+1])
		}
	}
	for _, m := range merges {
		m = deref(m)
		srcs := []*yaml.Node{m}
		if m.Kind == yaml.SequenceNode {
			srcs = m.Content
		}
		for _, s := range srcs {
			if c := o.child(s, key); c != nil {
				return c
			}
		}
	}
	return nil
}

// nodeAt returns the node at a JSON pointer below n, as deep as it exists.
func (o origin) nodeAt(n *yaml.Node, ptr string) *yaml.Node {
	for _, seg := range schema.SplitPointer(ptr) {
		d := deref(n)
		if d == nil {
			break
		}
		var c *yaml.Node
		switch d.Kind {
		case yaml.MappingNode:
			c = o.child(d, seg)
		case yaml.SequenceNode:
			if i, err := strconv.Atoi(seg); err == nil && i >= 0 && i < len(d.Content) {
				c = deref(d.Content[i])
			}
		}
		if c == nil {
			break
		}
		n = c
	}
	return n
}

// pathProblem is one field of a map input that a read does not find as
// the runbook needs it.
type pathProblem struct {
	at  Pos
	msg string // "aws_region is missing"
}

// checkInputPaths checks every field the runbook reads below a map input
// against the value given: it must exist and not be null, and match the
// schema of the parameter that receives it as is. A read is skipped when
// the step (or a group around it) has an `if` that reads only inputs and
// is false for these values: that step does not run.
func (r *resolver) checkInputPaths() {
	type group struct {
		p       pathProblem
		first   *InputPath
		readers int
	}
	var groups []*group
	byKey := map[pathProblem]*group{}
	guardValue := map[*expr.Program]bool{}
	skipped := func(ip *InputPath) bool {
		for _, g := range ip.Guards {
			if !g.If.Refs().OnlyInputs() {
				continue
			}
			v, seen := guardValue[g.If]
			if !seen {
				inputs, known := r.values, true
				if g.Inputs != nil {
					inputs, known = g.Inputs(r.values)
				}
				b, err := g.If.EvalBool(context.Background(), map[string]any{"inputs": inputs})
				// An `if` that cannot be evaluated here does not skip.
				v = known && err == nil && !b
				guardValue[g.If] = v
			}
			if v {
				return true
			}
		}
		return false
	}
	for _, ip := range r.rb.InputPaths {
		v, ok := r.values[ip.Input]
		o, known := r.origins[ip.Input]
		if !ok || !known || skipped(ip) {
			continue
		}
		p, bad := r.checkPath(ip, v, o)
		if !bad {
			continue
		}
		if g := byKey[p]; g != nil {
			g.readers++
			continue
		}
		g := &group{p: p, first: ip, readers: 1}
		byKey[p] = g
		groups = append(groups, g)
	}
	for _, g := range groups {
		ip := g.first
		reads := fmt.Sprintf("%s reads %s", ip.Pos, ip.Expr())
		if ip.Param != nil {
			reads = fmt.Sprintf("%s passes %s to %s of %s", ip.Pos, ip.Expr(), ip.What, ip.Uses)
		}
		if g.readers > 1 {
			reads += fmt.Sprintf(" (and %d more place(s))", g.readers-1)
		}
		r.add(g.p.at, Error, "%s; %s", g.p.msg, reads)
	}
}

// checkPath walks the value along ip's keys; bad reports a problem.
func (r *resolver) checkPath(ip *InputPath, v any, o origin) (p pathProblem, bad bool) {
	prefix := ""
	if o.what != "" {
		prefix = o.what + ": "
	}
	node := deref(o.node)
	for i, k := range ip.Keys {
		m, ok := v.(map[string]any)
		if !ok {
			return pathProblem{o.pos(node), fmt.Sprintf("%s%s is %s, not a mapping", prefix, fieldString(ip.Keys[:i]), schema.Describe(v))}, true
		}
		next, present := m[k]
		if !present {
			return pathProblem{o.pos(node), fmt.Sprintf("%s%s is missing", prefix, fieldString(ip.Keys[:i+1]))}, true
		}
		if c := o.child(node, k); c != nil || o.src == nil {
			node = c
		}
		if next == nil {
			return pathProblem{o.pos(node), fmt.Sprintf("%s%s is null", prefix, fieldString(ip.Keys[:i+1]))}, true
		}
		v = next
	}
	if ip.Param == nil {
		return pathProblem{}, false
	}
	probs := schema.Validate(ip.Param, v, nil)
	if len(probs) == 0 {
		return pathProblem{}, false
	}
	pr := probs[0]
	field := fieldString(ip.Keys)
	for _, seg := range schema.SplitPointer(pr.Path) {
		if _, err := strconv.Atoi(seg); err == nil {
			field += "[" + seg + "]"
		} else {
			field += keysString([]string{seg})
		}
	}
	msg := pr.Message
	if in := r.rb.Input(ip.Input); in != nil && in.Secret && (!strings.HasPrefix(msg, "must be ") || strings.HasPrefix(msg, "must be one of")) {
		msg = "does not match the parameter (secret, not shown)"
	}
	sep := ": "
	if pr.Path == "" {
		sep = " " // hostname must be a string, not an integer
	}
	return pathProblem{o.pos(o.nodeAt(node, pr.Path)), prefix + field + sep + msg}, true
}
