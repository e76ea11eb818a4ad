// Package cli is the runbook command line: one file per command, IO
// injected through IOStreams, errors mapped to exit codes by Main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/spf13/cobra"
)

// Version is set at build time with -ldflags "-X ...cli.Version=...".
var Version = "dev"

// Main runs the command line and returns the process exit code.
func Main() int {
	ctx, stop := signalContext(context.Background())
	defer stop()
	return Run(ctx, System(), os.Args[1:])
}

// Run runs the command line with the given streams and arguments.
func Run(ctx context.Context, io *IOStreams, args []string) int {
	root := NewRootCmd(io)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if !errors.As(err, &ee) || !ee.Silent {
		fmt.Fprintf(io.ErrOut, "error: %v\n", err)
	}
	return exitCode(err)
}

// NewRootCmd builds the command tree.
func NewRootCmd(io *IOStreams) *cobra.Command {
	root := &cobra.Command{
		Use:   "runbook",
		Short: "Run declarative YAML runbooks whose every action is a plugin",
		Long: `runbook runs declarative YAML runbooks: validated before anything runs,
planned without changing anything, journaled so a crashed run can be resumed,
with per-step retries and rollback. Every action runs in a plugin process.`,
		Version:       Version,
		SilenceUsage:  true,
		SilenceErrors: true,
	}
	root.SetIn(io.In)
	root.SetOut(io.Out)
	root.SetErr(io.ErrOut)
	root.SetFlagErrorFunc(func(_ *cobra.Command, err error) error {
		return &ExitError{Code: ExitUsage, Err: err}
	})
	for _, add := range commands {
		root.AddCommand(add(io))
	}
	addCompletions(root) // completion.go: run ids, step ids, runbook files
	return root
}

// commands registers each command's constructor (one file per command).
var commands []func(*IOStreams) *cobra.Command

// signalContext cancels on SIGINT/SIGTERM. Forward progress stops, the
// running attempt is cancelled through the plugin, plugins are killed and
// the journal records the interruption; the run can then be resumed.
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	return signal.NotifyContext(parent, os.Interrupt, syscall.SIGTERM)
}
