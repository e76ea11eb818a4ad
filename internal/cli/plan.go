package cli

import (
	"context"
	"encoding/json"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/termtext"
	"github.com/runbookhq/runbook/internal/ui"
	"github.com/runbookhq/runbook/sdk/engine"
)

func newPlanCmd(io *IOStreams) *cobra.Command {
	var inputs inputFlags
	var common commonFlags
	cmd := &cobra.Command{
		Use:   "plan FILE",
		Short: "Show what a run would change, changing nothing",
		Long: `Plan a run: each action that supports it reads the world and reports what it
would change (old -> new). Values that depend on earlier steps' outputs are
known only at run time and are shown as such; steps an 'if' would skip are
marked. No action is run and no journal is written.`,
		Args: exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runPlan(cmd.Context(), io, args[0], &inputs, &common)
		},
	}
	inputs.register(cmd)
	common.register(cmd, true)
	return cmd
}

func runPlan(ctx context.Context, io *IOStreams, path string, inputs *inputFlags, common *commonFlags) error {
	if err := common.check(); err != nil {
		return err
	}
	l, err := load(ctx, io, path)
	if err != nil {
		return err
	}
	vals, err := resolveInputs(io, l.rb, inputs)
	if err != nil {
		return err
	}
	red := l.rb.Redactor(vals)
	host, err := startHost(ctx, io, l, common, red)
	if err != nil {
		return err
	}
	defer host.Close()
	eng, err := engine.New(engine.Options{Runbook: l.rb, Inputs: vals, Invoker: host, Redactor: red, EngineVersion: Version})
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	plan, err := eng.Plan(ctx)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: err}
	}
	if common.output == "json" {
		enc := json.NewEncoder(termtext.JSONWriter(io.Out))
		enc.SetIndent("", "  ")
		if err := enc.Encode(plan); err != nil {
			return err
		}
	} else {
		ui.PlanText(io.Out, l.rb.Name, plan)
	}
	if plan.HasErrors() {
		return silent(ExitFailed)
	}
	return nil
}
