package cli

import (
	"context"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/hashicorp/go-hclog"
	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/pluginhost"
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

// openStore returns the store named by --state.
func (f *commonFlags) openStore(ctx context.Context) (journal.Store, error) {
	dir := f.stateDir()
	if strings.HasPrefix(dir, "s3://") {
		return openS3Store(ctx, dir)
	}
	return journal.NewFileStore(dir), nil
}

// openS3Store is replaced when the S3 backend is linked in.
var openS3Store = func(ctx context.Context, url string) (journal.Store, error) {
	return nil, usageError("--state %s: S3 state is not supported by this build", url)
}

func (f *commonFlags) logger(w io.Writer) hclog.Logger {
	if f.logLevel == "off" {
		return hclog.NewNullLogger()
	}
	return hclog.New(&hclog.LoggerOptions{
		Name:   "runbook",
		Output: w,
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
	lock, err := pluginhost.ReadLock(dir)
	if err != nil {
		fmt.Fprintf(io.ErrOut, "%s: %v\n", pluginhost.LockPath(dir), err)
		return nil, silent(ExitUsage)
	}
	var cat *pluginhost.Catalog
	rb, diags := runbook.Load(path, runbook.Options{Catalog: func(refs []*runbook.PluginRef) runbook.Catalog {
		cat = pluginhost.NewCatalog(ctx, pluginhost.CatalogConfig{Dir: dir, Plugins: refs, Lock: lock})
		return cat
	}})
	if len(diags) > 0 {
		printDiagnostics(io.ErrOut, diags)
	}
	if diags.HasErrors() || rb == nil {
		return nil, silent(ExitUsage)
	}
	l := &loaded{rb: rb, dir: dir, lock: lock}
	if lock == nil {
		// The binary that was described is the one that must run: one
		// replaced between now and the start is refused.
		l.validated = map[string]string{}
		if cat != nil {
			l.validated = cat.Checksums()
		}
	}
	return l, nil
}

func printDiagnostics(w io.Writer, diags runbook.Diagnostics) {
	for _, d := range diags {
		fmt.Fprintln(w, d.String())
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

// startHost starts every plugin the runbook declares.
func startHost(ctx context.Context, io *IOStreams, l *loaded, flags *commonFlags, secrets []string) (*pluginhost.Host, error) {
	host, err := pluginhost.Start(ctx, pluginhost.Config{
		Plugins:   l.rb.Plugins,
		Dir:       l.dir,
		Lock:      l.lock,
		Validated: l.validated,
		Logger:    flags.logger(io.ErrOut),
		Secrets:   secrets,
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
