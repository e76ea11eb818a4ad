// Package cli is the runbook command line: one file per command, IO
// injected through IOStreams, errors mapped to exit codes by Main.
package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/termtext"
	"github.com/runbookhq/runbook/sdk/pluginhost"
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
		fmt.Fprintf(io.ErrOut, "error: %s\n", strings.Join(termtext.Lines(err.Error()), "\n"))
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
	var locked bool
	root.PersistentFlags().BoolVar(&locked, "locked", false, "run only plugins pinned by runbook.lock: any other is refused before it is run (also $"+pluginhost.LockedEnv+"=1)")
	root.PersistentPreRunE = func(*cobra.Command, []string) error {
		env, err := envBool(pluginhost.LockedEnv)
		if err != nil {
			return err
		}
		io.Locked = locked || env
		return nil
	}
	// The command tree, one constructor per command (each in its file).
	root.AddCommand(
		newRunCmd(io), newResumeCmd(io), newPlanCmd(io), newValidateCmd(io),
		newRunsCmd(io), newReportCmd(io), newGraphCmd(io), newUnlockCmd(io),
		newPluginsCmd(io), newPermissionsCmd(io), newSchemaCmd(io),
	)
	addCompletions(root) // completion.go: run ids, step ids, runbook files
	return root
}

// Signals that stop a run as an interruption: forward progress stops, the
// running attempts are cancelled through their plugins, the interruption is
// journaled with the signal as its cause, the plugins are stopped, the lock
// is released and the command exits 130 (ExitInterrupted). SIGHUP (the
// terminal or SSH session closed) and SIGQUIT included: none of them kills
// the process as a crash would.
var interruptSignals = []os.Signal{os.Interrupt, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT}

// SignalError is the cause of a context cancelled by a signal.
type SignalError struct{ Signal os.Signal }

func (e *SignalError) Error() string {
	name, why := signalName(e.Signal)
	if why != "" {
		return "interrupted by " + name + " (" + why + ")"
	}
	return "interrupted by " + name
}

func signalName(s os.Signal) (name, why string) {
	switch s {
	case os.Interrupt:
		return "SIGINT", "Ctrl-C"
	case syscall.SIGTERM:
		return "SIGTERM", ""
	case syscall.SIGHUP:
		return "SIGHUP", "the terminal or SSH session closed"
	case syscall.SIGQUIT:
		return "SIGQUIT", ""
	}
	return s.String(), ""
}

// signalContext is cancelled, with a *SignalError as its cause, by the
// first of interruptSignals; later ones are ignored while the command
// stops. SIGPIPE is caught and ignored: a write to a closed pipe (the
// output piped into a `head` or `less` that quit) then fails with EPIPE
// instead of killing the process, and the run goes on, its events in the
// journal (see IOStreams).
func signalContext(parent context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancelCause(parent)
	ch := make(chan os.Signal, 4)
	signal.Notify(ch, append(interruptSignals, syscall.SIGPIPE)...)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-ch:
				if s != syscall.SIGPIPE {
					cancel(&SignalError{Signal: s})
				}
			case <-done:
				return
			}
		}
	}()
	var once sync.Once
	return ctx, func() {
		once.Do(func() {
			signal.Stop(ch)
			close(done)
			cancel(context.Canceled)
		})
	}
}

// envBool reads a boolean environment variable: unset or empty is false;
// 1, true, yes, on are true; 0, false, no, off false; anything else is a
// usage error (a typo must not turn a safety off).
func envBool(name string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(os.Getenv(name))) {
	case "", "0", "false", "no", "off":
		return false, nil
	case "1", "true", "yes", "on":
		return true, nil
	}
	return false, usageError("$%s=%q: want 1 or 0 (true or false)", name, os.Getenv(name))
}
