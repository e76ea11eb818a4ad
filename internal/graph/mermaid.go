package graph

import (
	"fmt"
	"io"
	"strings"

	"github.com/runbookhq/runbook/sdk/runbook"
)

// Mermaid writes the runbook as a Mermaid flowchart.
func Mermaid(w io.Writer, rb *runbook.Runbook) error {
	m, err := build(rb)
	if err != nil {
		return err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "%%%% Runbook %s, drawn by `runbook graph`.\n", oneLine(m.name))
	b.WriteString("%% A step whose `if` is false is skipped and the run goes on with the next one.\n")
	if m.onFailure == runbook.OnFailureStop {
		b.WriteString("%% on_failure: stop: the rollbacks (dashed) are not run automatically.\n")
	} else {
		b.WriteString("%% When a step fails, the rollbacks (dashed) of the steps that completed run in reverse completion order.\n")
	}
	b.WriteString("flowchart TD\n")
	mermaidItems(&b, m.root.items, 1)
	for _, e := range m.edges {
		arrow := "-->"
		if e.rollback {
			arrow = "-.->"
		}
		if e.label != "" {
			fmt.Fprintf(&b, "    %s %s|\"%s\"| %s\n", e.from, arrow, mmText(truncate(e.label, maxLine)), e.to)
		} else {
			fmt.Fprintf(&b, "    %s %s %s\n", e.from, arrow, e.to)
		}
	}
	b.WriteString(`    classDef terminal fill:#ffffff,stroke:#000000,stroke-width:2px
    classDef fork fill:#000000,stroke:#000000
    classDef builtin fill:#f2f2f2,stroke:#555555
    classDef approval fill:#fdf3df,stroke:#b77b00,stroke-width:2px
    classDef rollback fill:#f8ebf3,stroke:#7a3b62,stroke-dasharray:5 3
`)
	_, err = io.WriteString(w, b.String())
	return err
}

func mermaidItems(b *strings.Builder, items []item, depth int) {
	ind := strings.Repeat("    ", depth)
	for _, it := range items {
		if g := it.cluster; g != nil {
			fmt.Fprintf(b, "%ssubgraph %s [\"%s\"]\n", ind, g.id, mmText(truncate(g.title, maxLine)))
			fmt.Fprintf(b, "%s    direction TB\n", ind)
			mermaidItems(b, g.items, depth+1)
			fmt.Fprintf(b, "%send\n", ind)
			continue
		}
		n := it.node
		label := mmLabel(n.lines)
		switch n.kind {
		case kindStart, kindEnd:
			fmt.Fprintf(b, "%s%s((\"%s\")):::terminal\n", ind, n.id, label)
		case kindFork, kindJoin:
			fmt.Fprintf(b, "%s%s((\" \")):::fork\n", ind, n.id)
		case kindApproval:
			fmt.Fprintf(b, "%s%s{{\"%s\"}}:::approval\n", ind, n.id, label)
		case kindBuiltin:
			fmt.Fprintf(b, "%s%s(\"%s\"):::builtin\n", ind, n.id, label)
		case kindRollback:
			fmt.Fprintf(b, "%s%s[\"%s\"]:::rollback\n", ind, n.id, label)
		default:
			fmt.Fprintf(b, "%s%s[\"%s\"]\n", ind, n.id, label)
		}
	}
}

func mmLabel(lines []string) string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = mmText(truncate(oneLine(l), maxLine))
	}
	return strings.Join(out, "<br/>")
}

// mmText escapes text inside a quoted Mermaid label with Mermaid's entity
// codes (#<decimal>;), which it turns into HTML entities: quotes would end
// the label, <, > and & would be read as HTML, | ends an edge label, # would
// start an entity and ` a Markdown string.
var mmText = strings.NewReplacer(
	`#`, "#35;",
	`"`, "#34;",
	`&`, "#38;",
	`<`, "#60;",
	`>`, "#62;",
	`|`, "#124;",
	"`", "#96;",
).Replace
