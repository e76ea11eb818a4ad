package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/termtext"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/pluginhost"
	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// StateEnv overrides the default state directory (.runbook in the current
// directory), like --state.
const StateEnv = "RUNBOOK_STATE"

// inputFlags are the flags that give input values.
type inputFlags struct {
	vars     []string
	varFiles []string
}

func (f *inputFlags) register(cmd *cobra.Command) {
	cmd.Flags().StringArrayVar(&f.vars, "var", nil, "set an input: name=value, or name=@file.json|yaml to bind a whole file (repeatable)")
	cmd.Flags().StringArrayVar(&f.varFiles, "var-file", nil, "read inputs from a YAML or JSON file (repeatable)")
}

func (f *inputFlags) sources() runbook.InputSources {
	return runbook.InputSources{Vars: f.vars, VarFiles: f.varFiles, Env: os.Environ()}
}

// commonFlags are shared by the commands that run plugins.
type commonFlags struct {
	state    string
	logLevel string
	output   string
}

func (f *commonFlags) register(cmd *cobra.Command, withOutput bool) {
	cmd.Flags().StringVar(&f.state, "state", "", "where run journals and the lock are kept: a directory, or s3://bucket/prefix (default $RUNBOOK_STATE or ./.runbook)")
	cmd.Flags().StringVar(&f.logLevel, "log-level", "warn", "level of plugin and host logs on stderr: trace, debug, info, warn, error, off")
	if withOutput {
		cmd.Flags().StringVarP(&f.output, "output", "o", "text", "output format: text or json")
	}
}

func (f *commonFlags) check() error {
	switch f.output {
	case "", "text", "json":
	default:
		return usageError("--output must be text or json, not %q", f.output)
	}
	if f.logLevel != "off" && hclog.LevelFromString(f.logLevel) == hclog.NoLevel {
		return usageError("--log-level must be one of trace, debug, info, warn, error, off; not %q", f.logLevel)
	}
	return nil
}

func (f *commonFlags) stateDir() string {
	if f.state != "" {
		return f.state
	}
	if s := os.Getenv(StateEnv); s != "" {
		return s
	}
	return journal.DefaultDirName
}

// schemeRE matches a URL scheme ("s3://", "gs://", "file://").
var schemeRE = regexp.MustCompile(`^[A-Za-z][A-Za-z0-9+.-]*://`)

func hasScheme(s string) bool { return schemeRE.MatchString(s) }

// openStore returns the store named by --state: a directory, or an
// s3:// URL; any other URL is refused rather than taken for a directory
// named "gs:".
func (f *commonFlags) openStore(ctx context.Context) (journal.Store, error) {
	dir := f.stateDir()
	switch {
	case strings.HasPrefix(dir, "s3://"):
		return openS3Store(ctx, dir, f.unlockCommand())
	case hasScheme(dir):
		what := "--state " + dir
		if f.state == "" {
			what = "$" + StateEnv + "=" + dir
		}
		scheme, _, _ := strings.Cut(dir, "://")
		return nil, usageError("%s: %s:// is not a supported state: give a directory, or s3://bucket/prefix", what, scheme)
	}
	st := journal.NewFileStore(dir)
	st.UnlockCommand = f.unlockCommand()
	return st, nil
}

// openS3Store is replaced when the S3 backend is linked in.
var openS3Store = func(ctx context.Context, url, unlock string) (journal.Store, error) {
	return nil, usageError("--state %s: S3 state is not supported by this build", url)
}

func (f *commonFlags) logger(w io.Writer) hclog.Logger {
	if f.logLevel == "off" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name: "runbook",
		// Plugins' messages, and paths and values from the runbook, are
		// data: each entry is escaped to one line (termtext).
		Output: termtext.Writer(w),
		Level:  hclog.LevelFromString(f.logLevel),
	})
}

// loaded is a validated runbook with what is needed to run it.
type loaded struct {
	rb   *runbook.Runbook
	dir  string
	lock *pluginhost.LockFile
	// validated are the checksums of the plugin executables the runbook
	// was validated against, pinned for the run when there is no lock
	// file (nil with one: the lock pins them).
	validated map[string]string
	// lockCmd pins the runbook's plugins; locked: only pinned plugins run.
	lockCmd string
	locked  bool
}

// readLock reads dir's runbook.lock (nil if there is none), printing why
// it cannot be used; lockCmd is the command that rewrites it.
func readLock(io *IOStreams, dir, lockCmd string) (*pluginhost.LockFile, error) {
	lock, err := pluginhost.ReadLock(dir)
	if err != nil {
		var pe *pluginhost.LockParseError
		if errors.As(err, &pe) {
			fmt.Fprintf(io.ErrOut, "%v\n", err)
		} else {
			fmt.Fprintf(io.ErrOut, "%s: %v\n", pluginhost.LockPath(dir), err)
		}
		return nil, silent(ExitUsage)
	}
	if lock != nil {
		lock.Command = lockCmd
	}
	return lock, nil
}

// load reads, decodes and validates a runbook; the plugins it declares are
// described (their `describe` subcommand, no gRPC) to check actions and
// parameters. Diagnostics are printed and turned into exit code 2.
func load(ctx context.Context, io *IOStreams, path string) (*loaded, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return nil, usageError("%s: %v", path, err)
	}
	dir := filepath.Dir(abs)
	lockCmd := commandLine("plugins", "lock", path)
	lock, err := readLock(io, dir, lockCmd)
	if err != nil {
		return nil, err
	}
	// One catalog per file of the program (a runbook and those it calls);
	// a plugin name stands for one command in all of them.
	var cats []*pluginhost.Catalog
	rb, diags := runbook.Load(path, runbook.Options{Context: ctx, Catalog: func(refs []*runbook.PluginRef) runbook.Catalog {
		cat := pluginhost.NewCatalog(ctx, pluginhost.CatalogConfig{Dir: dir, Plugins: refs, Lock: lock, Locked: io.Locked, LockCommand: lockCmd})
		cats = append(cats, cat)
		return cat
	}})
	if ctx.Err() != nil {
		// Ctrl-C during validation: nothing ran.
		fmt.Fprintf(io.ErrOut, "%s: validation interrupted; nothing was run\n", path)
		return nil, silent(ExitInterrupted)
	}
	if len(diags) > 0 {
		printDiagnostics(io.ErrOut, diags)
	}
	if diags.HasErrors() || rb == nil {
		return nil, silent(ExitUsage)
	}
	l := &loaded{rb: rb, dir: dir, lock: lock, lockCmd: lockCmd, locked: io.Locked}
	if lock == nil {
		// The binary that was described is the one that must run: one
		// replaced between now and the start is refused.
		l.validated = map[string]string{}
		for _, cat := range cats {
			for name, sum := range cat.Checksums() {
				l.validated[name] = sum
			}
		}
	}
	return l, nil
}

func printDiagnostics(w io.Writer, diags runbook.Diagnostics) {
	for _, d := range diags {
		// A message may quote the file's text: escaped (termtext), line by
		// line (some messages list things on lines of their own).
		fmt.Fprintln(w, strings.Join(termtext.Lines(d.String()), "\n"))
	}
	n := 0
	for _, d := range diags {
		if d.Severity == runbook.Error {
			n++
		}
	}
	if n > 0 {
		fmt.Fprintf(w, "%d error(s); nothing was run\n", n)
	}
}

// resolveInputs turns the input flags into values, printing diagnostics.
func resolveInputs(io *IOStreams, rb *runbook.Runbook, f *inputFlags) (map[string]any, error) {
	vals, diags := runbook.ResolveInputs(rb, f.sources())
	if len(diags) > 0 {
		printDiagnostics(io.ErrOut, diags)
	}
	if diags.HasErrors() {
		return nil, silent(ExitUsage)
	}
	return vals, nil
}

// startHost starts every plugin the runbook, and the runbooks it calls,
// declare: one process per plugin for the whole program.
func startHost(ctx context.Context, io *IOStreams, l *loaded, flags *commonFlags, red *redact.Redactor) (*pluginhost.Host, error) {
	host, err := pluginhost.Start(ctx, pluginhost.Config{
		Plugins:     l.rb.AllPlugins(),
		Dir:         l.dir,
		Lock:        l.lock,
		Validated:   l.validated,
		Logger:      flags.logger(io.ErrOut),
		Redactor:    red,
		Locked:      l.locked,
		LockCommand: l.lockCmd,
	})
	if err != nil {
		return nil, &ExitError{Code: ExitFailed, Err: fmt.Errorf("starting plugins: %w", err)}
	}
	return host, nil
}

// exactArgs is cobra.ExactArgs with a usage exit code.
func exactArgs(n int, what string) cobra.PositionalArgs {
	return func(cmd *cobra.Command, args []string) error {
		if len(args) != n {
			return usageError("%s takes %s (got %d argument(s))", cmd.CommandPath(), what, len(args))
		}
		return nil
	}
}
