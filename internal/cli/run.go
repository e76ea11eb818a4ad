package cli

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/runbookhq/runbook/internal/termtext"
	"github.com/runbookhq/runbook/internal/ui"
	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/runbook"
)

type runOptions struct {
	inputs      inputFlags
	common      commonFlags
	autoApprove bool
	approve     []string
	runID       string
	approver    string
}

func newRunCmd(io *IOStreams) *cobra.Command {
	opts := &runOptions{}
	cmd := &cobra.Command{
		Use:   "run FILE",
		Short: "Run a runbook",
		Long: `Run a runbook: validate it, start its plugins, then run its steps, journaling
every event so the run can be resumed after an interruption or a crash.

Approvals (core.approve) are asked on the terminal; with --auto-approve or
--approve STEP they are given in advance; otherwise the run pauses (exit 3)
and 'runbook resume RUN --approve STEP' continues it.`,
		Args: exactArgs(1, "one runbook file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runRun(cmd.Context(), io, args[0], opts)
		},
	}
	opts.inputs.register(cmd)
	opts.common.register(cmd, true)
	cmd.Flags().BoolVar(&opts.autoApprove, "auto-approve", false, "approve every core.approve step without asking")
	cmd.Flags().StringArrayVar(&opts.approve, "approve", nil, "approve this core.approve step in advance (repeatable)")
	cmd.Flags().StringVar(&opts.runID, "run-id", "", "use this run id instead of a generated one")
	cmd.Flags().StringVar(&opts.approver, "approver", "", "who approves, recorded with every approval (a name, a ticket; default $"+ApproverEnv+")")
	return cmd
}

func runRun(ctx context.Context, io *IOStreams, path string, opts *runOptions) error {
	if err := opts.common.check(); err != nil {
		return err
	}
	if opts.runID != "" {
		if err := journal.ValidRunID(opts.runID); err != nil {
			return usageError("--run-id: %v", err)
		}
	}
	l, err := load(ctx, io, path)
	if err != nil {
		return err
	}
	if err := checkApproveIDs(l.rb, opts.approve); err != nil {
		return err
	}
	inputs, err := resolveInputs(io, l.rb, &opts.inputs)
	if err != nil {
		return err
	}
	recordAbsPath(l.rb)
	runID := opts.runID
	if runID == "" {
		runID = engine.NewRunID(time.Now())
	}
	store, err := opts.common.openStore(ctx)
	if err != nil {
		return err
	}
	resumeFlags, missing := resumeArgs(&opts.common, &opts.inputs, "", l.rb)
	return execute(ctx, io, execution{
		l: l, store: store, runID: runID, common: &opts.common, red: l.rb.Redactor(inputs),
		resumeFlags: resumeFlags, secretsToGive: missing,
		command:   "run " + path,
		approver:  opts.approver,
		approvals: engine.Approvals{AutoApprove: opts.autoApprove, Approved: setOf(opts.approve)},
		start: func(w journal.Writer) (journal.Writer, error) {
			return store.Create(ctx, runID)
		},
		engineOpts: engine.Options{Inputs: inputs},
	})
}

type resumeOptions struct {
	inputs      inputFlags
	common      commonFlags
	autoApprove bool
	approve     []string
	retry, skip []string
	force       bool
	rollback    bool
	runbookPath string
	approver    string
}

func newResumeCmd(io *IOStreams) *cobra.Command {
	opts := &resumeOptions{}
	cmd := &cobra.Command{
		Use:   "resume RUN",
		Short: "Continue a run that paused, was interrupted or crashed",
		Long: `Continue a run from its journal. Steps that finished keep their recorded
outputs and are not run again. A step that was cut off mid-action is run again
only if its action is idempotent; otherwise choose with --retry-step or
--skip-step. Secret inputs are not journaled: give them again with --var.
A runbook that changed since the run started is refused unless --force.`,
		Args: exactArgs(1, "one run id (see 'runbook runs')"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return runResume(cmd.Context(), io, args[0], opts)
		},
	}
	opts.inputs.register(cmd)
	opts.common.register(cmd, true)
	f := cmd.Flags()
	f.BoolVar(&opts.autoApprove, "auto-approve", false, "approve every core.approve step without asking")
	f.StringArrayVar(&opts.approve, "approve", nil, "approve this core.approve step (repeatable)")
	f.StringArrayVar(&opts.retry, "retry-step", nil, "run this interrupted non-idempotent step again (repeatable)")
	f.StringArrayVar(&opts.skip, "skip-step", nil, "treat this interrupted non-idempotent step as skipped (repeatable)")
	f.BoolVar(&opts.force, "force", false, "resume even though the runbook changed since the run started")
	f.BoolVar(&opts.rollback, "rollback", false, "roll back the completed steps instead of continuing")
	f.StringVar(&opts.runbookPath, "runbook", "", "the runbook file, if it moved since the run started")
	f.StringVar(&opts.approver, "approver", "", "who approves, recorded with every approval (a name, a ticket; default $"+ApproverEnv+")")
	return cmd
}

func runResume(ctx context.Context, io *IOStreams, runID string, opts *resumeOptions) error {
	if err := opts.common.check(); err != nil {
		return err
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
	if why := stopCause(j); why != "" {
		fmt.Fprintf(io.ErrOut, "note: run %s %s\n", runID, why)
	}
	start := j.Start()
	if start.Run == nil {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("run %s: journal has no run_started record", runID)}
	}
	path := opts.runbookPath
	if path == "" {
		path = start.Run.RunbookPath
	}
	if path == "" {
		return usageError("run %s does not record its runbook's path: give it with --runbook FILE", runID)
	}
	l, err := load(ctx, io, path)
	if err != nil {
		return err
	}
	src := opts.inputs.sources()
	src.Partial = true
	inputs, diags := runbook.ResolveInputs(l.rb, src)
	if len(diags) > 0 {
		printDiagnostics(io.ErrOut, diags)
	}
	if diags.HasErrors() {
		return silent(ExitUsage)
	}
	if missing := missingSecrets(start.Run.Inputs, l.rb, inputs); len(missing) > 0 {
		return usageError("run %s: secret input(s) %s must be given again, since secrets are not journaled: add --var NAME=VALUE, --var NAME=@FILE or --var-file FILE, or set %sNAME; nothing was run",
			runID, strings.Join(missing, ", "), runbook.EnvPrefix)
	}
	recordAbsPath(l.rb)
	resumeFlags, missing := resumeArgs(&opts.common, &opts.inputs, opts.runbookPath, l.rb)
	return execute(ctx, io, execution{
		l: l, store: store, runID: runID, common: &opts.common, red: l.rb.Redactor(inputs),
		resumeFlags: resumeFlags, secretsToGive: missing,
		command:   "resume " + runID,
		approver:  opts.approver,
		approvals: engine.Approvals{AutoApprove: opts.autoApprove, Approved: setOf(opts.approve)},
		start: func(journal.Writer) (journal.Writer, error) {
			return store.Reopen(ctx, runID)
		},
		engineOpts: engine.Options{Inputs: inputs},
		resume: &engine.ResumeOptions{
			Journal: j, Force: opts.force, RetrySteps: opts.retry, SkipSteps: opts.skip,
			Approved: setOf(opts.approve), AutoApprove: opts.autoApprove, Rollback: opts.rollback,
		},
	})
}

// execution is what run and resume share: lock, journal, plugins, engine,
// rendering, summary, exit code.
type execution struct {
	l         *loaded
	store     journal.Store
	runID     string
	common    *commonFlags
	red       *redact.Redactor
	command   string
	approvals engine.Approvals
	// approver is --approver: who approves, as they state it.
	approver   string
	start      func(journal.Writer) (journal.Writer, error)
	engineOpts engine.Options
	resume     *engine.ResumeOptions
	// resumeFlags are the flags a printed `resume` of this run needs after
	// the run id; secretsToGive the secret inputs it cannot carry.
	resumeFlags   []string
	secretsToGive []string
}

// resumeCommand is the command that resumes run id with extra flags.
func (x *execution) resumeCommand(id string, extra ...string) string {
	args := append([]string{"resume", id}, x.resumeFlags...)
	return commandLine(append(args, extra...)...)
}

// hints are the commands the summary prints to continue the run.
func (x *execution) hints() ui.Hints {
	h := ui.Hints{Resume: func(extra ...string) string { return x.resumeCommand(x.runID, extra...) }}
	for _, name := range x.secretsToGive {
		h.Notes = append(h.Notes, fmt.Sprintf("give the secret input %s again (add --var %s=VALUE, or set %s%s): it is not journaled", name, name, runbook.EnvPrefix, name))
	}
	return h
}

// takeLock takes the state's lock for this run. A resume takes over the
// lock of a holder that is provably dead on this host (see
// journal.Holder.ProvablyDead), with a notice; any other holder is
// reported with the command that removes its lock.
func (x *execution) takeLock(ctx context.Context, io *IOStreams) (journal.Lock, error) {
	me := journal.CurrentHolder(x.runID, x.command)
	lock, err := x.store.Lock(ctx, me)
	var le *journal.LockedError
	if err == nil || !errors.As(err, &le) {
		if err != nil {
			return nil, &ExitError{Code: ExitFailed, Err: err}
		}
		return lock, nil
	}
	type takeOverer interface {
		TakeOver(ctx context.Context, dead, h journal.Holder) (journal.Lock, string, error)
	}
	if to, ok := x.store.(takeOverer); ok && x.resume != nil {
		if dead, _ := le.Holder.ProvablyDead(); dead {
			lock, why, terr := to.TakeOver(ctx, le.Holder, me)
			if terr == nil {
				fmt.Fprintf(io.ErrOut, "notice: took over the lock of %s from %s: %s\n", x.store.Location(), le.Holder, why)
				if le.Holder.RunID != x.runID {
					fmt.Fprintf(io.ErrOut, "notice: run %s was left incomplete by that process; resume it later with: %s\n", le.Holder.RunID, x.resumeCommand(le.Holder.RunID))
				}
				return lock, nil
			}
			err = terr
		}
	}
	msg := fmt.Sprintf("%v\nnothing was run", err)
	if dead, _ := le.Holder.ProvablyDead(); dead && x.resume == nil && le.Holder.RunID != "" {
		msg += fmt.Sprintf("; run %s, which held the lock, is incomplete: `%s` continues it (and takes the lock over)", le.Holder.RunID, x.resumeCommand(le.Holder.RunID))
	}
	return nil, &ExitError{Code: ExitFailed, Err: errors.New(msg)}
}

func execute(ctx context.Context, io *IOStreams, x execution) (err error) {
	maxOut, err := engine.MaxOutputBytesFromEnv()
	if err != nil {
		return usageError("%v", err)
	}
	x.engineOpts.MaxOutputBytes = maxOut
	lock, err := x.takeLock(ctx, io)
	if err != nil {
		return err
	}
	defer func() {
		if rerr := lock.Release(); rerr != nil && err == nil {
			err = &ExitError{Code: ExitFailed, Err: fmt.Errorf("releasing the lock: %w", rerr)}
		}
	}()

	// Plugins outlive the signal context: when the operator interrupts,
	// the engine cancels the running attempt through the plugin and
	// journals the interruption; the plugins are killed after that.
	// The live view redraws the terminal: host and plugin log lines
	// (stderr) go through it, to be printed above it, not drawn over.
	r := newRenderer(io, x.common, x.l.rb)
	defer r.Close()
	hostIO := *io
	hostIO.ErrOut = ui.LogWriter(r, io.ErrOut)
	host, err := startHost(context.WithoutCancel(ctx), &hostIO, x.l, x.common, x.red)
	if err != nil {
		return err
	}
	defer host.Close()

	w, err := x.start(nil)
	if err != nil {
		return &ExitError{Code: ExitFailed, Err: fmt.Errorf("opening the journal: %w", err)}
	}
	defer w.Close()

	approvals := x.approvals
	if hasApproval(x.l.rb) {
		// Who answers, in auditable form, looked up while the run starts.
		approvals.Identity = startIdentity(ctx, x.approver, os.Getenv).get
	}
	if io.InTTY && io.TTY && x.common.output != "json" {
		approvals.Approver = &promptApprover{io: io, renderer: r}
	}
	opts := x.engineOpts
	opts.Runbook = x.l.rb
	opts.Invoker = host
	opts.Journal = w
	opts.RunID = x.runID
	opts.Approvals = approvals
	// The summary prints the outputs as the journal has them: redacted of
	// every secret value, not only of the outputs declared secret.
	var finishedOutputs map[string]any
	opts.OnEvent = func(ev engine.Event) {
		if ev.Type == journal.RunFinished {
			finishedOutputs = ev.Outputs
		}
		r.Event(ev)
	}
	opts.Redactor = x.red
	opts.EngineVersion = Version
	eng, err := engine.New(opts)
	if err != nil {
		r.Close()
		return &ExitError{Code: ExitFailed, Err: err}
	}
	var res *engine.Result
	if x.resume != nil {
		res, err = eng.Resume(ctx, *x.resume)
	} else {
		res, err = eng.Run(ctx)
	}
	r.Close()
	if err != nil {
		var blocked *engine.ResumeBlockedError
		var changed *engine.RunbookChangedError
		switch {
		case errors.As(err, &blocked):
			msg := err.Error()
			for _, st := range blocked.Steps {
				msg += fmt.Sprintf("\n  run %s again: %s\n  go on without it: %s", st.ID, x.resumeCommand(x.runID, "--retry-step", st.ID), x.resumeCommand(x.runID, "--skip-step", st.ID))
			}
			return usageError("%s", msg)
		case errors.As(err, &changed):
			return usageError("%v\n  resume anyway: %s", err, x.resumeCommand(x.runID, "--force"))
		case errors.Is(err, engine.ErrRunFinished):
			return usageError("%v", err)
		}
		if res == nil {
			return &ExitError{Code: ExitFailed, Err: err}
		}
	}
	if x.common.output != "json" {
		shown := *res
		if len(res.Outputs) > 0 {
			shown.Outputs = finishedOutputs
		}
		ui.SummaryWith(io.Out, &shown, milestones(x.l.rb, res), secretOutputs(x.l.rb), x.hints())
	}
	if code := res.ExitCode(); code != ExitOK {
		return silent(code)
	}
	return nil
}

func newRenderer(io *IOStreams, common *commonFlags, rb *runbook.Runbook) ui.Renderer {
	switch {
	case common.output == "json":
		return ui.NewJSON(io.Out)
	case io.TTY:
		return ui.NewLive(io.Out, rb, io.Color, io.Width)
	default:
		return ui.NewPlain(io.Out)
	}
}

// promptApprover asks on the terminal.
type promptApprover struct {
	io       *IOStreams
	renderer ui.Renderer
}

func (p *promptApprover) Approve(ctx context.Context, req engine.ApprovalRequest) (engine.Decision, error) {
	resume := p.renderer.Suspend()
	defer resume()
	who := req.StepID
	if req.Rollback {
		who += " (rollback)"
	}
	// The message comes from the runbook and the values it read: each of
	// its lines is escaped (termtext) and marked, so that nothing in it can
	// rewrite or imitate the question.
	fmt.Fprintf(p.io.Out, "\n  Approval needed for step %s:\n    │ %s\n  Approve? Type 'yes' to continue, 'no' to refuse, or 'pause' to stop and resume later: ",
		who, strings.Join(termtext.Lines(req.Message), "\n    │ "))
	answer := make(chan string, 1)
	go func() {
		line, _ := bufio.NewReader(p.io.In).ReadString('\n')
		answer <- strings.TrimSpace(strings.ToLower(line))
	}()
	select {
	case <-ctx.Done():
		fmt.Fprintln(p.io.Out)
		return engine.Decision{}, ctx.Err()
	case a := <-answer:
		switch a {
		case "yes", "y":
			return engine.Decision{Approved: true, By: currentUser()}, nil
		case "no", "n":
			return engine.Decision{Approved: false, By: currentUser(), Reason: "refused at the prompt"}, nil
		default:
			return engine.Decision{}, engine.ErrApprovalDeferred
		}
	}
}

func currentUser() string {
	if u := os.Getenv("USER"); u != "" {
		return u
	}
	return "operator"
}

// hasApproval reports whether rb (or a runbook it calls) has a
// core.approve step or rollback.
func hasApproval(rb *runbook.Runbook) bool {
	found := false
	engine.WalkSteps(rb, func(ref engine.StepRef) {
		if s := ref.Step; s.Uses == "core.approve" || s.Rollback != nil && s.Rollback.Uses == "core.approve" {
			found = true
		}
	})
	return found
}

func setOf(ids []string) map[string]bool {
	if len(ids) == 0 {
		return nil
	}
	m := make(map[string]bool, len(ids))
	for _, id := range ids {
		m[id] = true
	}
	return m
}

func checkApproveIDs(rb *runbook.Runbook, ids []string) error {
	for _, id := range ids {
		s := rb.StepAt(id)
		if s == nil {
			return usageError("--approve %s: no such step (a step of a called runbook is named by its path: the calling step's id, a dot and its id)", id)
		}
		if s.Uses != "core.approve" && (s.Rollback == nil || s.Rollback.Uses != "core.approve") {
			return usageError("--approve %s: step %s is not a core.approve step", id, id)
		}
	}
	return nil
}

// recordAbsPath makes the journaled runbook path absolute, so resume finds
// the file from any directory.
func recordAbsPath(rb *runbook.Runbook) {
	if abs, err := filepath.Abs(rb.Path); err == nil {
		rb.Path = abs
	}
}

// secretOutputs names the runbook outputs never to print.
func secretOutputs(rb *runbook.Runbook) map[string]bool {
	m := map[string]bool{}
	for _, o := range rb.Outputs {
		if o.Secret {
			m[o.Name] = true
		}
	}
	return m
}

// milestones are the moments the runbook marks (the step key `milestone`)
// that the run reached: each when the first step marking it succeeded.
func milestones(rb *runbook.Runbook, res *engine.Result) []ui.Milestone {
	var out []ui.Milestone
	at := map[string]int{}
	engine.WalkSteps(rb, func(ref engine.StepRef) {
		s := ref.Step
		if s.Milestone == "" {
			return
		}
		r, ok := res.Step(ref.Path)
		if !ok || r.Status != engine.StepSucceeded || r.Finished.IsZero() {
			return
		}
		if i, seen := at[s.Milestone]; seen {
			if r.Finished.Before(out[i].At) {
				out[i].At = r.Finished
			}
			return
		}
		at[s.Milestone] = len(out)
		out = append(out, ui.Milestone{Name: s.Milestone, At: r.Finished, Undone: rolledBack(res, ref.Path)})
	})
	return out
}

// rolledBack reports whether the step at path (a group: one of its steps)
// was rolled back: the milestone it marked was undone.
func rolledBack(res *engine.Result, path string) bool {
	for _, s := range res.Steps {
		if (s.ID == path || s.Group == path) && s.Rollback != nil && s.Rollback.Status == engine.StepSucceeded {
			return true
		}
	}
	return false
}

// stopCause says how a run's last session ended, for a resume: the cause
// its run_interrupted record gives (a signal, a full disk, a lost lock), or
// that the journal ends without a final record (the process was killed, or
// the machine stopped). "" for a run that paused.
func stopCause(j *journal.Journal) string {
	if len(j.Records) == 0 {
		return ""
	}
	last := j.Records[len(j.Records)-1]
	switch last.Type {
	case journal.RunInterrupted:
		if last.Message != "" {
			return "was interrupted: " + last.Message
		}
		return "was interrupted"
	case journal.RunPaused, journal.RunFinished:
		return ""
	}
	return "stopped without recording why: its process was killed (SIGKILL, out of memory) or the machine stopped"
}

// missingSecrets are the secret inputs of a run that a resume must be given
// again and was not: every secret recorded, except one that took its
// declared default (the engine gives it the default again).
func missingSecrets(recorded []journal.Input, rb *runbook.Runbook, given map[string]any) []string {
	var missing []string
	for _, in := range recorded {
		if !in.Secret {
			continue
		}
		if _, ok := given[in.Name]; ok {
			continue
		}
		if decl := rb.Input(in.Name); decl != nil && decl.HasDefault && in.Defaulted {
			continue
		}
		missing = append(missing, in.Name)
	}
	return missing
}
