package cli

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/termtext"
)

func newRunsCmd(io *IOStreams) *cobra.Command {
	var common commonFlags
	cmd := &cobra.Command{
		Use:   "runs",
		Short: "List the runs in the state directory",
		Args:  exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := common.check(); err != nil {
				return err
			}
			store, err := common.openStore(cmd.Context())
			if err != nil {
				return err
			}
			runs, err := store.List(cmd.Context())
			if err != nil {
				return &ExitError{Code: ExitFailed, Err: err}
			}
			if common.output == "json" {
				enc := json.NewEncoder(termtext.JSONWriter(io.Out))
				for _, r := range runs {
					if err := enc.Encode(r); err != nil {
						return err
					}
				}
				return nil
			}
			if len(runs) == 0 {
				fmt.Fprintf(io.ErrOut, "no runs in %s\n", store.Location())
				return nil
			}
			tw := tabwriter.NewWriter(io.Out, 2, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "RUN\tRUNBOOK\tSTATUS\tSTARTED\tDURATION")
			for _, r := range runs {
				if r.Err != "" {
					fmt.Fprintf(tw, "%s\t\tunreadable: %s\t\t\n", r.RunID, termtext.Escape(fmt.Sprint(r.Err)))
					continue
				}
				dur := ""
				if !r.Finished.IsZero() {
					dur = r.Finished.Sub(r.Started).Round(time.Second).String()
				}
				fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", r.RunID, termtext.Escape(r.Runbook), r.Status, r.Started.Local().Format(time.RFC3339), dur)
			}
			return tw.Flush()
		},
	}
	common.register(cmd, true)
	return cmd
}

func newUnlockCmd(io *IOStreams) *cobra.Command {
	var common commonFlags
	var force bool
	cmd := &cobra.Command{
		Use:   "unlock",
		Short: "Remove the state's run lock after a crashed run",
		Long: `Remove the run lock of a state directory (or S3 state). A lock whose holder
may still be running (a live process on this host, or any process on another
host) is only removed with --force: check first that no run is in progress.`,
		Args: exactArgs(0, "no arguments"),
		RunE: func(cmd *cobra.Command, args []string) error {
			store, err := common.openStore(cmd.Context())
			if err != nil {
				return err
			}
			h, err := store.Unlock(cmd.Context(), force)
			if err != nil {
				if !force {
					forced := commandLine(append(append([]string{"unlock"}, common.stateArgs()...), "--force")...)
					return &ExitError{Code: ExitFailed, Err: fmt.Errorf("%w\nif you are sure no run is in progress: `%s`", err, forced)}
				}
				return &ExitError{Code: ExitFailed, Err: err}
			}
			if h == nil {
				fmt.Fprintf(io.Out, "%s was not locked\n", store.Location())
				return nil
			}
			fmt.Fprintf(io.Out, "removed the lock of %s held by %s\n", store.Location(), h)
			return nil
		},
	}
	common.register(cmd, false)
	cmd.Flags().BoolVar(&force, "force", false, "remove the lock even if its holder may still be running")
	return cmd
}
