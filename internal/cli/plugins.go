package cli

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"sort"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/scaffold"
	"github.com/runbookhq/runbook/sdk/pluginhost"
	"github.com/runbookhq/runbook/sdk/runbook"
)

func newPluginsCmd(io *IOStreams) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "plugins",
		Short: "Lock, list and create plugins",
	}
	cmd.AddCommand(newPluginsLockCmd(io), newPluginsListCmd(io), newPluginsNewCmd(io))
	return cmd
}

// declaredPlugins decodes runbooks just far enough to know their plugins,
// validating everything else against the plugins' descriptions (but not
// against an existing lock file, which is what is being replaced).
//
// In locked mode (--locked) the plugins must be pinned by the lock file
// already, and are refused before they run otherwise.
func declaredPlugins(ctx context.Context, io *IOStreams, path string) (string, []*runbook.PluginRef, error) {
	abs, err := filepath.Abs(path)
	if err != nil {
		return "", nil, usageError("%s: %v", path, err)
	}
	dir := filepath.Dir(abs)
	cfg := pluginhost.CatalogConfig{Dir: dir, LockCommand: commandLine("plugins", "lock", path)}
	if io.Locked {
		if cfg.Lock, err = readLock(io, dir, cfg.LockCommand); err != nil {
			return "", nil, err
		}
		cfg.Locked = true
	}
	var refs []*runbook.PluginRef
	seen := map[string]bool{}
	_, diags := runbook.Load(path, runbook.Options{Catalog: func(r []*runbook.PluginRef) runbook.Catalog {
		for _, p := range r { // the runbook's, then those of the runbooks it calls
			if !seen[p.Name] {
				seen[p.Name] = true
				refs = append(refs, p)
			}
		}
		c := cfg
		c.Plugins = r
		return pluginhost.NewCatalog(ctx, c)
	}})
	if diags.HasErrors() {
		printDiagnostics(io.ErrOut, diags)
		return "", nil, silent(ExitUsage)
	}
	return dir, refs, nil
}

func newPluginsLockCmd(io *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "lock FILE...",
		Short: "Pin the plugins of runbooks in runbook.lock (version, protocol, sha256)",
		Long: `Write runbook.lock next to the runbooks: for each plugin, its version, protocol
version and the sha256 of its executable. 'run' and 'plan' then refuse a plugin
whose executable differs, or that the lock does not list. Runbooks in one
directory share one lock file; entries of other runbooks are kept.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("plugins lock takes one or more runbook files")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if io.Locked {
				return usageError("plugins lock runs the plugins it pins, and locked mode (--locked, $%s) runs only plugins already pinned: review the plugins, then lock them without it", pluginhost.LockedEnv)
			}
			byDir := map[string][]*runbook.PluginRef{}
			var dirs []string
			for _, path := range args {
				dir, refs, err := declaredPlugins(ctx, io, path)
				if err != nil {
					return err
				}
				if _, ok := byDir[dir]; !ok {
					dirs = append(dirs, dir)
				}
				byDir[dir] = append(byDir[dir], refs...)
			}
			for _, dir := range dirs {
				old, err := pluginhost.ReadLock(dir)
				if err != nil {
					return &ExitError{Code: ExitFailed, Err: err}
				}
				fresh, err := pluginhost.Lock(ctx, dir, byDir[dir])
				if err != nil {
					return &ExitError{Code: ExitFailed, Err: err}
				}
				merged := fresh
				if old != nil {
					merged = old.Merge(fresh)
				}
				if err := pluginhost.WriteLock(dir, merged); err != nil {
					return &ExitError{Code: ExitFailed, Err: err}
				}
				names := make([]string, 0, len(fresh.Plugins))
				for n := range fresh.Plugins {
					names = append(names, n)
				}
				sort.Strings(names)
				for _, n := range names {
					e := fresh.Plugins[n]
					fmt.Fprintf(io.Out, "locked %s %s (protocol %d) sha256:%s\n", n, e.Version, e.ProtocolVersion, e.SHA256)
				}
				fmt.Fprintf(io.Out, "wrote %s\n", pluginhost.LockPath(dir))
			}
			return nil
		},
	}
}

func newPluginsListCmd(io *IOStreams) *cobra.Command {
	var actions bool
	cmd := &cobra.Command{
		Use:   "list FILE",
		Short: "List a runbook's plugins: where they are, their version and whether they match the lock",
		Args:  exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			dir, refs, err := declaredPlugins(ctx, io, args[0])
			if err != nil {
				return err
			}
			lock, err := readLock(io, dir, commandLine("plugins", "lock", args[0]))
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "PLUGIN\tVERSION\tPROTOCOL\tLOCK\tPATH")
			bad := false
			for _, ref := range refs {
				r, err := pluginhost.Resolve(dir, ref)
				if err != nil {
					fmt.Fprintf(tw, "%s\t\t\tmissing\t%v\n", ref.Name, err)
					bad = true
					continue
				}
				d, err := pluginhost.Describe(ctx, r)
				if err != nil {
					fmt.Fprintf(tw, "%s\t\t\terror\t%s: %v\n", ref.Name, r.Path, err)
					bad = true
					continue
				}
				state := "not locked"
				if lock != nil {
					if err := lock.Check(r); err != nil {
						var mm *pluginhost.ChecksumMismatchError
						state = "not in lock"
						if errors.As(err, &mm) {
							state = "MISMATCH"
						}
						bad = true
					} else {
						state = "ok"
					}
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\n", ref.Name, d.Version, d.ProtocolVersion, state, r.Path)
				if actions {
					for _, a := range d.Actions {
						idem := ""
						if a.Idempotent {
							idem = " (idempotent)"
						}
						fmt.Fprintf(tw, "  %s.%s%s\t\t\t\t%s\n", ref.Name, a.Name, idem, firstSentence(a.Doc))
					}
				}
			}
			if err := tw.Flush(); err != nil {
				return err
			}
			if bad {
				return silent(ExitFailed)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&actions, "actions", false, "also list each plugin's actions")
	return cmd
}

func firstSentence(s string) string {
	for i, c := range s {
		if c == '.' || c == '\n' {
			return s[:i]
		}
	}
	return s
}

func newPluginsNewCmd(io *IOStreams) *cobra.Command {
	var dir string
	var opts scaffold.Options
	cmd := &cobra.Command{
		Use:   "new NAME",
		Short: "Create a new plugin module that builds and passes its own test",
		Args:  exactArgs(1, "the plugin's name"),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			if dir == "" {
				dir = "runbook-plugin-" + name
			}
			if opts.RunbookVersion == "" && Version != "dev" {
				opts.RunbookVersion = Version
			}
			err := scaffold.Plugin(dir, name, opts)
			var inv *scaffold.InvalidNameError
			var exists *scaffold.ExistsError
			switch {
			case errors.As(err, &inv), errors.As(err, &exists), errors.Is(err, scaffold.ErrNoVersion):
				return &ExitError{Code: ExitUsage, Err: err}
			case err != nil:
				return &ExitError{Code: ExitFailed, Err: err}
			}
			fmt.Fprintf(io.Out, "created plugin %s in %s\nnext: cd %s && go mod tidy && go test ./... && go build -o runbook-plugin-%s .\n", name, dir, dir, name)
			return nil
		},
	}
	cmd.Flags().StringVar(&dir, "dir", "", "directory of the new module (default ./runbook-plugin-NAME)")
	cmd.Flags().StringVar(&opts.Module, "module", "", "module path (default example.com/runbook-plugin-NAME)")
	cmd.Flags().StringVar(&opts.RunbookVersion, "runbook-version", "", "version of github.com/runbookhq/runbook to require")
	cmd.Flags().StringVar(&opts.ReplacePath, "replace", "", "build against this local checkout of runbook (a replace directive)")
	return cmd
}
