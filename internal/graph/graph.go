// Package graph draws a runbook's structure for people: a Mermaid
// flowchart (renders in GitHub, GitLab and most wikis) and a Graphviz DOT
// digraph. Steps run top to bottom in order; a parallel group fans out to
// its children and joins after them; `if` conditions label the edge into
// the step they guard; approvals are hexagons; each rollback hangs off its
// step on a dashed edge.
//
// Both formats are written from one intermediate model, so they always show
// the same graph.
package graph

import (
	"context"
	"fmt"
	"strings"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// kind is what a node stands for; it decides the node's shape.
type kind int

const (
	kindStart kind = iota
	kindEnd
	kindAction   // a plugin action
	kindBuiltin  // core.sleep, core.log, core.assert
	kindApproval // core.approve
	kindFork     // a parallel group fanning out
	kindJoin     // ... and joining
	kindRollback // a step's compensation
)

type node struct {
	id    string
	kind  kind
	lines []string // first line is the title
}

type edge struct {
	from, to string
	label    string
	rollback bool
}

// cluster is a parallel group (or the whole runbook, the root): its nodes
// and nested groups, in document order.
type cluster struct {
	id, title string
	items     []item
}

type item struct {
	node    *node
	cluster *cluster
}

type model struct {
	// prefix makes the ids of a called runbook's steps unique: the calling
	// steps' ids, each followed by _C_ (ids have no capitals).
	prefix            string
	name, description string
	onFailure         runbook.FailurePolicy
	root              cluster
	edges             []edge
}

// Node ids: a prefix per kind and the step id, which is [a-z][a-z0-9_]*,
// so ids never collide and never spell a keyword of either language
// (Mermaid's `end`, DOT's `node`, `edge`, `graph`...).
const (
	startID = "n_start"
	endID   = "n_end"
)

func stepID(id string) string     { return "s_" + id }
func forkID(id string) string     { return "f_" + id }
func joinID(id string) string     { return "j_" + id }
func rollbackID(id string) string { return "r_" + id }
func clusterID(id string) string  { return "g_" + id }

func build(rb *runbook.Runbook) (*model, error) {
	if rb == nil {
		return nil, fmt.Errorf("graph: no runbook")
	}
	m := &model{name: rb.Name, description: rb.Description, onFailure: rb.OnFailure}
	m.root.items = append(m.root.items, item{node: &node{id: startID, kind: kindStart, lines: []string{"start"}}})
	exit := startID
	for _, s := range rb.Steps {
		if s == nil || s.ID == "" {
			return nil, fmt.Errorf("graph: a step has no id")
		}
		// Edges are listed in the order the flow takes them: the edge
		// into a step before the step's own edges.
		m.edges = append(m.edges, edge{from: exit, to: m.entryOf(s), label: condition(s)})
		next, err := m.step(&m.root, s)
		if err != nil {
			return nil, err
		}
		exit = next
	}
	m.root.items = append(m.root.items, item{node: &node{id: endID, kind: kindEnd, lines: []string{"end"}}})
	m.edges = append(m.edges, edge{from: exit, to: endID})
	return m, nil
}

// entryOf is the node that edges into s lead to.
func (m *model) entryOf(s *runbook.Step) string {
	switch {
	case s.IsGroup():
		return forkID(m.prefix + s.ID)
	case s.IsCall() && len(s.Call.Runbook.Steps) > 0:
		saved := m.prefix
		m.prefix += s.ID + "_C_"
		defer func() { m.prefix = saved }()
		return m.entryOf(s.Call.Runbook.Steps[0])
	}
	return stepID(m.prefix + s.ID)
}

// step adds s to c and returns the node that edges out of s leave from.
func (m *model) step(c *cluster, s *runbook.Step) (exit string, err error) {
	if s.IsCall() && len(s.Call.Runbook.Steps) > 0 {
		// A called runbook is a box of its own steps, run one after another.
		title := s.ID
		if s.Name != "" {
			title += ": " + s.Name
		}
		g := &cluster{id: clusterID(m.prefix + s.ID), title: title + " (calls " + s.Call.Ref + ")"}
		c.items = append(c.items, item{cluster: g})
		saved := m.prefix
		m.prefix += s.ID + "_C_"
		defer func() { m.prefix = saved }()
		for i, cs := range s.Call.Runbook.Steps {
			if i > 0 {
				m.edges = append(m.edges, edge{from: exit, to: m.entryOf(cs), label: condition(cs)})
			}
			if exit, err = m.step(g, cs); err != nil {
				return "", err
			}
		}
		return exit, nil
	}
	if s.IsGroup() {
		title := s.ID
		if s.Name != "" {
			title += ": " + s.Name
		}
		title += " (parallel"
		if s.MaxParallel > 0 {
			title += fmt.Sprintf(", at most %d at a time", s.MaxParallel)
		}
		title += ")"
		g := &cluster{id: clusterID(m.prefix + s.ID), title: title}
		c.items = append(c.items, item{cluster: g})
		fork := &node{id: forkID(m.prefix + s.ID), kind: kindFork}
		join := &node{id: joinID(m.prefix + s.ID), kind: kindJoin}
		g.items = append(g.items, item{node: fork})
		for _, child := range s.Parallel {
			if child == nil || child.ID == "" {
				return "", fmt.Errorf("graph: a step of group %s has no id", s.ID)
			}
			m.edges = append(m.edges, edge{from: fork.id, to: m.entryOf(child), label: condition(child)})
			cx, err := m.step(g, child)
			if err != nil {
				return "", err
			}
			m.edges = append(m.edges, edge{from: cx, to: join.id})
		}
		g.items = append(g.items, item{node: join})
		if s.Rollback != nil {
			m.rollback(c, s, join.id)
		}
		return join.id, nil
	}

	n := &node{id: stepID(m.prefix + s.ID), kind: kindAction}
	switch {
	case s.Uses == "core.approve":
		n.kind = kindApproval
	case s.Plugin == "core" || strings.HasPrefix(s.Uses, "core."):
		n.kind = kindBuiltin
	}
	n.lines = append(n.lines, s.ID)
	if s.Name != "" {
		n.lines = append(n.lines, s.Name)
	}
	n.lines = append(n.lines, s.Uses)
	if n.kind == kindApproval {
		if msg := text(s.With, "message"); msg != "" {
			n.lines = append(n.lines, wrap("asks: "+msg, wrapWidth, 4)...)
		}
	}
	if s.Until != nil && s.Until.Condition != nil {
		n.lines = append(n.lines, wrap("until: "+oneLine(s.Until.Condition.Source()), wrapWidth, 2)...)
	}
	if s.ContinueOnError {
		n.lines = append(n.lines, "continues on error")
	}
	c.items = append(c.items, item{node: n})
	if s.Rollback != nil {
		m.rollback(c, s, n.id)
	}
	return n.id, nil
}

func (m *model) rollback(c *cluster, s *runbook.Step, from string) {
	r := &node{id: rollbackID(m.prefix + s.ID), kind: kindRollback, lines: []string{"rollback " + s.ID, s.Rollback.Uses}}
	c.items = append(c.items, item{node: r})
	m.edges = append(m.edges, edge{from: from, to: r.id, label: "rollback", rollback: true})
}

// condition is the label of the edge into a step with an `if`.
func condition(s *runbook.Step) string {
	if s.If == nil {
		return ""
	}
	return "if " + oneLine(s.If.Source())
}

// text returns a `with` field as written: a template's source, or a static
// string.
func text(v *expr.Value, key string) string {
	f, ok := v.Field(key)
	if !ok {
		return ""
	}
	if t, ok := f.Template(); ok {
		return oneLine(t.Raw())
	}
	if f.IsStatic() {
		if s, err := f.Render(context.Background(), nil); err == nil {
			if str, ok := s.(string); ok {
				return oneLine(str)
			}
		}
	}
	return ""
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }

// truncate bounds a label line: graphs are for reading, not for holding
// whole messages.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// maxLine bounds one line of a label; wrapWidth is where long notes
// (an approval's question, an until condition) are wrapped.
const (
	maxLine   = 100
	wrapWidth = 60
)

// words splits s at spaces, except inside ${{ }}: an expression is never
// broken across lines.
func words(s string) []string {
	var out []string
	inExpr := false
	for _, f := range strings.Fields(s) {
		if inExpr {
			out[len(out)-1] += " " + f
		} else {
			out = append(out, f)
		}
		open, closed := strings.LastIndex(out[len(out)-1], "${{"), strings.LastIndex(out[len(out)-1], "}}")
		inExpr = open >= 0 && closed < open
	}
	return out
}

// wrap breaks s into lines of at most width runes at spaces, keeping at
// most n lines (the last one marked as cut).
func wrap(s string, width, n int) []string {
	var lines []string
	var cur []rune
	for _, word := range words(s) {
		w := []rune(word)
		if len(cur) > 0 && len(cur)+1+len(w) > width {
			lines = append(lines, string(cur))
			cur = nil
		}
		if len(cur) > 0 {
			cur = append(cur, ' ')
		}
		cur = append(cur, w...)
	}
	if len(cur) > 0 {
		lines = append(lines, string(cur))
	}
	if len(lines) > n {
		lines = lines[:n]
		lines[n-1] += " …"
	}
	return lines
}
