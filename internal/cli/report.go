package cli

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/report"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
)

type reportOptions struct {
	common      commonFlags
	format      string
	out         string
	runbookPath string
}

func newReportCmd(io *IOStreams) *cobra.Command {
	opts := &reportOptions{}
	cmd := &cobra.Command{
		Use:   "report RUN",
		Short: "Write a run's postmortem: timeline, critical path, recovery time, retries, approvals",
		Long: `Write the report of a run from its journal: a Markdown document (default) or a
self-contained HTML page with a Gantt chart. It lists every step of the runbook
(those that never ran as pending), each attempt, retry and error, rollbacks,
approvals, the time to each milestone and the critical path. Secret inputs are
shown as ***.

The runbook is read from the path the run recorded (or --runbook) for step
names, order and milestones; if it cannot be loaded, the report shows what the
journal has. The format is taken from -o's extension (.html, .htm) unless
--format is given.`,
		Example: `  runbook report 20250611T101500Z-3f9a2c1d > postmortem.md
  runbook report 20250611T101500Z-3f9a2c1d -o postmortem.html`,
		Args: exactArgs(1, "one run id (see 'runbook runs')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runReport(cmd.Context(), io, args[0], opts)
		},
	}
	opts.common.register(cmd, false)
	f := cmd.Flags()
	f.StringVar(&opts.format, "format", "", "markdown or html (default: from -o's extension, else markdown)")
	f.StringVarP(&opts.out, "out", "o", "", "write the report to this file instead of standard output")
	f.StringVar(&opts.runbookPath, "runbook", "", "the runbook file, if it moved since the run")
	_ = cmd.RegisterFlagCompletionFunc("format", cobra.FixedCompletions([]string{"markdown", "html"}, cobra.ShellCompDirectiveNoFileComp))
	_ = cmd.RegisterFlagCompletionFunc("out", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
		return []string{"md", "html"}, cobra.ShellCompDirectiveFilterFileExt
	})
	return cmd
}

func runReport(ctx context.Context, io *IOStreams, runID string, opts *reportOptions) error {
	if err := opts.common.check(); err != nil {
		return err
	}
	format := strings.ToLower(opts.format)
	if format == "" {
		switch strings.ToLower(filepath.Ext(opts.out)) {
		case ".html", ".htm":
			format = "html"
		default:
			format = "markdown"
		}
	}
	if format == "md" {
		format = "markdown"
	}
	if format != "markdown" && format != "html" {
		return usageError("--format must be markdown or html, not %q", opts.format)
	}
	store, err := opts.common.openStore(ctx)
	if err != nil {
		return err
	}
	j, err := store.Open(ctx, runID)
	if err != nil {
		if errors.Is(err, journal.ErrNotFound) {
			return usageError("no run %s in %s (see 'runbook runs')", runID, store.Location())
		}
		return &ExitError{Code: ExitFailed, Err: err}
	}
	if j.TornTail > 0 {
		fmt.Fprintf(io.ErrOut, "note: the journal's last record was cut off by a crash and is ignored\n")
	}
	live := false
	if h, err := store.LockHolder(ctx); err == nil && h != nil && h.RunID == runID && h.Alive() != journal.AliveNo {
		live = true
	}
	rb := reportRunbook(ctx, io, j, opts.runbookPath)
	run := reportRun(j, rb, live)
	if run.Status == report.RunIncomplete {
		// The command, as it runs from here (the state included); secret
		// inputs are not journaled and cannot be part of it.
		run.Error += ": " + commandLine(append([]string{"resume", runID}, opts.common.stateArgs()...)...)
		if start := j.Start(); start.Run != nil {
			var secrets []string
			for _, in := range start.Run.Inputs {
				if in.Secret && !in.Defaulted {
					secrets = append(secrets, in.Name)
				}
			}
			if len(secrets) > 0 {
				run.Error += fmt.Sprintf(" (with the secret input(s) %s given again)", strings.Join(secrets, ", "))
			}
		}
	}

	var buf bytes.Buffer
	render := report.Markdown
	if format == "html" {
		render = report.HTML
	}
	if err := render(&buf, run); err != nil {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("rendering the report of run %s: %w", runID, err)}
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

// reportRunbook loads the run's runbook for its structure, or returns nil
// (with a note) when it cannot: the report then shows what the journal has.
func reportRunbook(ctx context.Context, io *IOStreams, j *journal.Journal, override string) *runbook.Runbook {
	start := j.Start()
	path := override
	if path == "" && start.Run != nil {
		path = start.Run.RunbookPath
	}
	if path == "" {
		fmt.Fprintf(io.ErrOut, "note: run %s does not record its runbook's path (give it with --runbook); the report lists the steps the journal records\n", j.RunID)
		return nil
	}
	quiet := &IOStreams{In: io.In, Out: io.Out, ErrOut: &bytes.Buffer{}}
	l, err := load(ctx, quiet, path)
	if err != nil {
		why := firstLine(quiet.ErrOut.(*bytes.Buffer).String())
		if why == "" {
			why = err.Error()
		}
		fmt.Fprintf(io.ErrOut, "note: the runbook %s could not be loaded (%s); the report lists the steps the journal records\n", path, why)
		return nil
	}
	if start.Run != nil && start.Run.RunbookHash != "" && l.rb.Hash != start.Run.RunbookHash {
		fmt.Fprintf(io.ErrOut, "note: %s changed since run %s started; steps are listed as the file has them now\n", path, j.RunID)
	}
	return l.rb
}

func firstLine(s string) string {
	s, _, _ = strings.Cut(strings.TrimSpace(s), "\n")
	return s
}

// writeFileAtomic writes data to path through a temporary file in the same
// directory, so a reader never sees half a report.
func writeFileAtomic(path string, data []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, "."+filepath.Base(path)+".*")
	if err != nil {
		return err
	}
	defer os.Remove(f.Name())
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	if err := f.Chmod(0o644); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	return os.Rename(f.Name(), path)
}
