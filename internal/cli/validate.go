package cli

import (
	"fmt"

	"github.com/spf13/cobra"
)

func newValidateCmd(io *IOStreams) *cobra.Command {
	return &cobra.Command{
		Use:   "validate FILE...",
		Short: "Check runbooks without running anything",
		Long: `Check runbooks: YAML, keys, types, durations, ids, plugins and actions,
parameters against each action's schema, and every expression. All problems
are printed at once as file:line:col: message, and the exit code is 2 if any.
Plugins are only asked to describe themselves; no action runs.`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 0 {
				return usageError("validate takes one or more runbook files")
			}
			return nil
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			failed := false
			for _, path := range args {
				if _, err := load(cmd.Context(), io, path); err != nil {
					if exitCode(err) != ExitUsage {
						return err
					}
					failed = true
					continue
				}
				fmt.Fprintf(io.Out, "%s: ok\n", path)
			}
			if failed {
				return silent(ExitUsage)
			}
			return nil
		},
	}
}
