package cli

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/safefile"
)

// Shell completion: cobra's `completion bash|zsh|fish|powershell` command
// writes the scripts; the functions here complete runbook files, run ids
// (resume, report) and step ids (--approve, --retry-step, --skip-step)
// when the shell asks (cobra's hidden __complete command).

// completeRunbookFiles completes runbook file arguments: YAML files.
func completeRunbookFiles(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
	return []string{"yaml", "yml"}, cobra.ShellCompDirectiveFilterFileExt
}

// addCompletions attaches dynamic completion to the commands that take
// run ids, runbook files and step ids. Called once the tree is built, so
// it can reach commands defined in other files.
func addCompletions(root *cobra.Command) {
	var walk func(c *cobra.Command)
	walk = func(c *cobra.Command) {
		for _, sub := range c.Commands() {
			walk(sub)
		}
		flag := func(name string, fn cobra.CompletionFunc) {
			if c.Flags().Lookup(name) == nil {
				return
			}
			if _, exists := c.GetFlagCompletionFunc(name); exists {
				return
			}
			_ = c.RegisterFlagCompletionFunc(name, fn)
		}
		switch c.CommandPath() {
		case "runbook resume":
			setArgs(c, completeRunIDs(true))
			flag("approve", completeResumeSteps(stepsWaiting))
			flag("retry-step", completeResumeSteps(stepsCutOff))
			flag("skip-step", completeResumeSteps(stepsCutOff))
			flag("runbook", completeRunbookFiles)
		case "runbook report":
			setArgs(c, completeRunIDs(false))
			flag("runbook", completeRunbookFiles)
		case "runbook run", "runbook plan", "runbook validate", "runbook graph", "runbook schema",
			"runbook plugins lock", "runbook plugins list":
			setArgs(c, completeRunbookFiles)
			flag("approve", completeApproveStepsOfFile)
		}
		flag("var-file", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return []string{"yaml", "yml", "json"}, cobra.ShellCompDirectiveFilterFileExt
		})
		flag("state", func(*cobra.Command, []string, string) ([]string, cobra.ShellCompDirective) {
			return nil, cobra.ShellCompDirectiveFilterDirs
		})
		flag("log-level", cobra.FixedCompletions([]string{"trace", "debug", "info", "warn", "error", "off"}, cobra.ShellCompDirectiveNoFileComp))
		if c.CommandPath() != "runbook report" && c.CommandPath() != "runbook graph" && c.CommandPath() != "runbook schema" {
			flag("output", cobra.FixedCompletions([]string{"text", "json"}, cobra.ShellCompDirectiveNoFileComp))
		}
	}
	walk(root)
}

func setArgs(c *cobra.Command, fn cobra.CompletionFunc) {
	if c.ValidArgsFunction == nil {
		c.ValidArgsFunction = fn
	}
}

// completionStore opens the store named by the command's --state flag.
func completionStore(cmd *cobra.Command) (journal.Store, context.Context, context.CancelFunc, error) {
	var f commonFlags
	if fl := cmd.Flags().Lookup("state"); fl != nil {
		f.state = fl.Value.String()
	}
	// A shell waits for completions: never hang it on a slow store.
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	s, err := f.openStore(ctx)
	if err != nil {
		cancel()
		return nil, nil, nil, err
	}
	return s, ctx, cancel, nil
}

// completeRunIDs completes a run id (only resumable runs when resumable),
// newest first, each described by its runbook and status.
func completeRunIDs(resumable bool) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) > 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		store, ctx, cancel, err := completionStore(cmd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cancel()
		runs, err := store.List(ctx)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		var out []string
		for i := len(runs) - 1; i >= 0; i-- {
			r := runs[i]
			if r.Err != "" {
				continue
			}
			switch r.Status {
			case journal.StatusSucceeded, journal.StatusFailed, journal.StatusRollbackFailed:
				if resumable {
					continue
				}
			}
			out = append(out, fmt.Sprintf("%s\t%s, %s", r.RunID, r.Runbook, r.Status))
		}
		return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

// stepsWaiting lists the steps of a run waiting for an approval, then the
// other approval steps of its runbook that have not run.
func stepsWaiting(j *journal.Journal) []string {
	v := journal.ViewOf(j)
	waiting := map[string]bool{}
	var out []string
	for _, a := range v.Pending() {
		if !waiting[a.Path] {
			waiting[a.Path] = true
			out = append(out, a.Path+"\twaiting for approval")
		}
	}
	if start := j.Start(); start.Run != nil && start.Run.RunbookPath != "" {
		steps, _ := yamlSteps(start.Run.RunbookPath)
		for _, s := range steps {
			done := false
			if sv := v.Step(s.id); sv != nil {
				switch sv.Status {
				case journal.StateSucceeded, journal.StateFailed, journal.StateSkipped:
					done = true
				}
			}
			if s.approve && !waiting[s.id] && !done {
				out = append(out, s.id+"\tapproval step, not reached yet")
			}
		}
	}
	return out
}

// stepsCutOff lists the steps (and rollbacks) of a run that started and
// did not finish: those --retry-step and --skip-step name. A step waiting
// for an approval is answered with --approve, not retried; a parallel group
// is not retried itself.
func stepsCutOff(j *journal.Journal) []string {
	cut := func(status journal.StepState, uses string) bool {
		return uses != "" && (status == journal.StateRunning || status == journal.StateInterrupted)
	}
	var out []string
	for _, s := range journal.ViewOf(j).Steps() {
		rb := s.Rollback
		if cut(s.Status, s.Uses) && s.Granted == nil || rb != nil && cut(rb.Status, rb.Uses) {
			out = append(out, s.Path+"\tstarted, not finished")
		}
	}
	return out
}

// completeResumeSteps completes step ids of the run given as the first
// argument.
func completeResumeSteps(pick func(*journal.Journal) []string) cobra.CompletionFunc {
	return func(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
		if len(args) == 0 {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		store, ctx, cancel, err := completionStore(cmd)
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		defer cancel()
		j, err := store.Open(ctx, args[0])
		if err != nil {
			return nil, cobra.ShellCompDirectiveNoFileComp
		}
		return pick(j), cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
	}
}

// completeApproveStepsOfFile completes --approve with the core.approve
// steps of the runbook given as the first argument.
func completeApproveStepsOfFile(cmd *cobra.Command, args []string, _ string) ([]string, cobra.ShellCompDirective) {
	if len(args) == 0 {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	steps, err := yamlSteps(args[0])
	if err != nil {
		return nil, cobra.ShellCompDirectiveNoFileComp
	}
	var out []string
	for _, s := range steps {
		if s.approve {
			desc := "approval"
			if s.name != "" {
				desc = s.name
			}
			out = append(out, s.id+"\t"+desc)
		}
	}
	return out, cobra.ShellCompDirectiveNoFileComp | cobra.ShellCompDirectiveKeepOrder
}

type yamlStep struct {
	id, name string
	// approve: the step, or its rollback, uses core.approve.
	approve bool
}

// yamlSteps reads a runbook's step ids straight from the YAML, without
// validating it or describing its plugins: completion must be fast and
// work on a runbook being edited.
func yamlSteps(path string) ([]yamlStep, error) {
	b, err := safefile.ReadFile(path, runbook.MaxSourceBytes)
	if err != nil {
		return nil, err
	}
	type rollback struct {
		Uses string `yaml:"uses"`
	}
	type step struct {
		ID       string    `yaml:"id"`
		Name     string    `yaml:"name"`
		Uses     string    `yaml:"uses"`
		Rollback *rollback `yaml:"rollback"`
		Parallel []step    `yaml:"parallel"`
	}
	var doc struct {
		Steps []step `yaml:"steps"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, err
	}
	var out []yamlStep
	var walk func([]step)
	walk = func(ss []step) {
		for _, s := range ss {
			if s.ID != "" {
				approve := strings.TrimSpace(s.Uses) == "core.approve" || s.Rollback != nil && strings.TrimSpace(s.Rollback.Uses) == "core.approve"
				out = append(out, yamlStep{id: s.ID, name: s.Name, approve: approve})
			}
			walk(s.Parallel)
		}
	}
	walk(doc.Steps)
	return out, nil
}
