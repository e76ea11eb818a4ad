package cli

import (
	"bytes"
	"context"
	"fmt"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/graph"
)

type graphOptions struct {
	format string
	out    string
}

func newGraphCmd(io *IOStreams) *cobra.Command {
	opts := &graphOptions{}
	cmd := &cobra.Command{
		Use:   "graph FILE",
		Short: "Draw a runbook's steps as a Mermaid flowchart or a Graphviz DOT graph",
		Long: `Draw a runbook's structure: steps in the order they run, parallel groups fanning
out and joining, 'if' conditions on the edges, approvals, and each step's
rollback on a dashed edge. The runbook is validated first (its plugins are
asked to describe themselves); nothing runs.

Mermaid renders in GitHub and GitLab Markdown (in a mermaid code block) and
most wikis; DOT renders with Graphviz: runbook graph rb.yaml --format dot | dot -Tsvg > rb.svg.
The format is taken from -o's extension (.mmd, .mermaid, .dot, .gv) unless
--format is given.`,
		Example: `  runbook graph runbooks/failover.yaml
  runbook graph runbooks/failover.yaml --format dot | dot -Tsvg > failover.svg`,
		Args: exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runGraph(cmd.Context(), io, args[0], opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.format, "format", "", "mermaid or dot (default: from -o's extension, else mermaid)")
	f.StringVarP(&opts.out, "out", "o", "", "write the graph to this file instead of standard output")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"mermaid", "dot"}, cobra.ShellCompDirectiveNoFileComp))
	cmd.ValidArgsFunction = completeRunbookFiles
	return cmd
}

func runGraph(ctx context.Context, io *IOStreams, path string, opts *graphOptions) error {
	format := strings.ToLower(opts.format)
	if format == "" {
		switch strings.ToLower(filepath.Ext(opts.out)) {
		case ".dot", ".gv":
			format = "dot"
		default:
			format = "mermaid"
		}
	}
	draw := graph.Mermaid
	switch format {
	case "mermaid", "mmd":
	case "dot", "graphviz":
		draw = graph.Dot
	default:
		return usageError("--format must be mermaid or dot, not %q", opts.format)
	}
	l, err := load(ctx, io, path)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	if err := draw(&buf, l.rb); err != nil {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("drawing %s: %w", path, err)}
	}
	if opts.out == "" {
		_, err := io.Out.Write(buf.Bytes())
		return err
	}
	if err := writeFileAtomic(opts.out, buf.Bytes()); err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	fmt.Fprintf(io.ErrOut, "wrote %s\n", opts.out)
	return nil
}
