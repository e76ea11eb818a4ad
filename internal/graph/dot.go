package graph

import (
	"fmt"
	"io"
	"strings"

	"github.com/runbookhq/runbook/sdk/runbook"
)

// Dot writes the runbook as a Graphviz digraph (render with
// `dot -Tsvg` or `dot -Tpng`).
func Dot(w io.Writer, rb *runbook.Runbook) error {
	m, err := build(rb)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "// Runbook %s, drawn by `runbook graph`.\n", oneLine(m.name))
	b.WriteString("// A step whose `if` is false is skipped and the run goes on with the next one.\n")
	if m.onFailure == runbook.OnFailureStop {
		b.WriteString("// on_failure: stop: the rollbacks (dashed) are not run automatically.\n")
	} else {
		b.WriteString("// When a step fails, the rollbacks (dashed) of the steps that completed run in reverse completion order.\n")
	}
	const font = `fontname="Helvetica,Arial,sans-serif"`
	title := m.name
	if m.description != "" {
		title += "\n" + truncate(oneLine(m.description), 120)
	}
	fmt.Fprintf(&b, "digraph %s {\n", dotQuote(m.name))
	fmt.Fprintf(&b, "    graph [rankdir=TB, newrank=true, %s, fontsize=13, labelloc=t, label=%s];\n", font, dotQuote(title))
	fmt.Fprintf(&b, "    node [shape=box, style=\"rounded,filled\", fillcolor=\"#ffffff\", %s, fontsize=11];\n", font)
	fmt.Fprintf(&b, "    edge [%s, fontsize=10];\n", font)
	dotItems(&b, m.root.items, 1, m.edges)
	for _, e := range m.edges {
		var attrs []string
		if e.label != "" {
			attrs = append(attrs, "label="+dotQuote(truncate(e.label, maxLine)))
		}
		if e.rollback {
			attrs = append(attrs, `style=dashed`, `color="#7a3b62"`, `fontcolor="#7a3b62"`)
		}
		if len(attrs) > 0 {
			fmt.Fprintf(&b, "    %s -> %s [%s];\n", e.from, e.to, strings.Join(attrs, ", "))
		} else {
			fmt.Fprintf(&b, "    %s -> %s;\n", e.from, e.to)
		}
	}
	b.WriteString("}\n")
	_, err = io.WriteString(w, b.String())
	return err
}

func dotItems(b *strings.Builder, items []item, depth int, edges []edge) {
	ind := strings.Repeat("    ", depth)
	for _, it := range items {
		if g := it.cluster; g != nil {
			// Graphviz draws a subgraph as a box only if its name starts
			// with "cluster".
			fmt.Fprintf(b, "%ssubgraph cluster_%s {\n", ind, g.id)
			fmt.Fprintf(b, "%s    label=%s; style=\"rounded,dashed\"; color=\"#555555\";\n", ind, dotQuote(truncate(g.title, maxLine)))
			dotItems(b, g.items, depth+1, edges)
			fmt.Fprintf(b, "%s}\n", ind)
			continue
		}
		n := it.node
		label := dotQuote(dotLabel(n.lines))
		switch n.kind {
		case kindStart:
			fmt.Fprintf(b, "%s%s [label=%s, shape=circle, style=filled, fillcolor=\"#ffffff\", penwidth=2];\n", ind, n.id, label)
		case kindEnd:
			fmt.Fprintf(b, "%s%s [label=%s, shape=doublecircle, style=filled, fillcolor=\"#ffffff\"];\n", ind, n.id, label)
		case kindFork, kindJoin:
			// A UML fork/join bar.
			fmt.Fprintf(b, "%s%s [label=\"\", shape=box, style=filled, fillcolor=\"#000000\", height=0.06, width=1.6, fixedsize=true];\n", ind, n.id)
		case kindApproval:
			fmt.Fprintf(b, "%s%s [label=%s, shape=hexagon, fillcolor=\"#fdf3df\", color=\"#b77b00\", penwidth=2];\n", ind, n.id, label)
		case kindBuiltin:
			fmt.Fprintf(b, "%s%s [label=%s, fillcolor=\"#f2f2f2\", color=\"#555555\"];\n", ind, n.id, label)
		case kindRollback:
			fmt.Fprintf(b, "%s%s [label=%s, style=\"rounded,dashed,filled\", fillcolor=\"#f8ebf3\", color=\"#7a3b62\"];\n", ind, n.id, label)
		default:
			fmt.Fprintf(b, "%s%s [label=%s];\n", ind, n.id, label)
		}
	}
	// Each rollback sits beside its step rather than below it, so that the
	// forward path stays a straight line.
	for _, it := range items {
		if it.node == nil || it.node.kind != kindRollback {
			continue
		}
		for _, e := range edges {
			if e.rollback && e.to == it.node.id {
				fmt.Fprintf(b, "%s{ rank=same; %s; %s; }\n", ind, e.from, e.to)
			}
		}
	}
}

func dotLabel(lines []string) string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = truncate(oneLine(l), maxLine)
	}
	return strings.Join(out, "\n")
}

// dotQuote makes a DOT double-quoted string; newlines become \n (centred
// lines), and backslashes are doubled so that DOT's own escapes (\l, \N...)
// cannot be triggered by a step's text.
func dotQuote(s string) string {
	s = strings.ReplaceAll(s, `\`, `\\`)
	s = strings.ReplaceAll(s, `"`, `\"`)
	s = strings.ReplaceAll(s, "\n", `\n`)
	return `"` + s + `"`
}
