package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// ResumeOptions say how to continue a run from its journal.
type ResumeOptions struct {
	// Journal is the run's journal (Store.Open). New records go to
	// Options.Journal, which should append to the same journal
	// (Store.Reopen).
	Journal *journal.Journal
	// Force resumes even though the runbook changed since the run started.
	Force bool
	// RetrySteps re-runs steps that were interrupted mid-action although
	// their action is not declared idempotent; SkipSteps treats them as
	// skipped. Each must name such a step (or one whose rollback was
	// interrupted, when the run is rolling back).
	RetrySteps []string
	SkipSteps  []string
	// Approved and AutoApprove answer approvals (in addition to
	// Options.Approvals), typically the one the run paused on.
	Approved    map[string]bool
	AutoApprove bool
	// Rollback rolls back the completed steps instead of continuing.
	Rollback bool
}

// ErrRunFinished is returned (wrapped) when resuming a run that finished.
var ErrRunFinished = errors.New("run already finished")

// RunbookChangedError refuses to resume with a runbook that is not the one
// the run started with.
type RunbookChangedError struct {
	RunID              string
	Recorded, Current  string
	RecordedPath, Path string
}

func (e *RunbookChangedError) Error() string {
	return fmt.Sprintf("run %s started with a different runbook (sha256 %s, now %s): the steps it recorded may no longer mean the same thing; resume with force only if you are sure",
		e.RunID, short(e.Recorded), short(e.Current))
}

func short(h string) string {
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

// BlockedStep is a step resume cannot decide about on its own.
type BlockedStep struct {
	ID       string
	Uses     string
	Rollback bool
}

// ResumeBlockedError lists steps that were interrupted mid-action and whose
// action is not declared idempotent: they may or may not have taken effect,
// so the operator must choose for each (RetrySteps or SkipSteps).
type ResumeBlockedError struct {
	RunID string
	Steps []BlockedStep
}

func (e *ResumeBlockedError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "cannot resume run %s without a decision:", e.RunID)
	for _, s := range e.Steps {
		what := "step"
		if s.Rollback {
			what = "the rollback of step"
		}
		fmt.Fprintf(&b, "\n  %s %s (%s) was running when the run stopped, and %s is not declared idempotent: it may or may not have taken effect."+
			" Check the target, then resume with --retry-step %s to run it again, or --skip-step %s to go on without it.",
			what, s.ID, s.Uses, s.Uses, s.ID, s.ID)
	}
	return b.String()
}

// Resume continues a run from its journal: steps that succeeded or were
// skipped keep their recorded outputs and do not run again; a step that
// started and did not finish runs again if its action is idempotent (or
// the operator says so); a paused approval is asked again; a run that was
// rolling back continues its rollback. The attempt counters and
// idempotency keys continue. See docs/execution.md.
func (e *Engine) Resume(ctx context.Context, ro ResumeOptions) (*Result, error) {
	if !e.used.CompareAndSwap(false, true) {
		return nil, errors.New("engine: an Engine runs once; create another")
	}
	j := ro.Journal
	if j == nil || len(j.Records) == 0 {
		return nil, errors.New("resume: no journal records")
	}
	if e.opts.RunID != "" && e.opts.RunID != j.RunID {
		return nil, fmt.Errorf("resume: options name run %s but the journal is run %s", e.opts.RunID, j.RunID)
	}
	e.runID = j.RunID
	start := j.Start()
	if start.Type != journal.RunStarted || start.Run == nil {
		return nil, fmt.Errorf("resume: the journal of run %s does not start with run_started", j.RunID)
	}
	if fin, ok := j.Finished(); ok {
		return nil, fmt.Errorf("%w: run %s ended %s at %s and cannot be resumed; start a new run",
			ErrRunFinished, j.RunID, fin.Status, fin.Time.Format(time.RFC3339))
	}
	info := start.Run
	forced := info.RunbookHash != e.rb.Hash
	if forced && !ro.Force {
		return nil, &RunbookChangedError{RunID: j.RunID, Recorded: info.RunbookHash, Current: e.rb.Hash, RecordedPath: info.RunbookPath, Path: e.rb.Path}
	}
	inputs, err := e.resumeInputs(info.Inputs, ro.Force)
	if err != nil {
		return nil, err
	}
	e.setInputs(inputs)
	e.started = start.Time
	unknown := e.replay(j.Records)
	if ro.Rollback {
		e.rollback = true
	}
	if err := e.decideUnfinished(ro); err != nil {
		return nil, err
	}
	e.seq = j.LastSeq()
	if ro.AutoApprove {
		e.opts.Approvals.AutoApprove = true
	}
	if len(ro.Approved) > 0 {
		m := map[string]bool{}
		for k, v := range e.opts.Approvals.Approved {
			m[k] = v
		}
		for k, v := range ro.Approved {
			m[k] = v
		}
		e.opts.Approvals.Approved = m
	}
	ri := &journal.ResumeInfo{RunbookHash: e.rb.Hash, Forced: forced, RetrySteps: sorted(ro.RetrySteps),
		SkipSteps: sorted(ro.SkipSteps), Rollback: ro.Rollback, EngineVersion: e.version}
	if err := e.emit(Event{Type: journal.RunResumed, Resume: ri}); err != nil {
		return nil, fmt.Errorf("resuming run %s: %w", e.runID, err)
	}
	for _, id := range unknown {
		e.log("warn", id, "step %s is in the journal but not in the runbook; ignored", id)
	}
	if e.failed() != nil || e.rollback {
		// Steps cut off mid-action while the run was failing are not
		// completed, so nothing will compensate them: say so.
		e.mu.Lock()
		var cut []string
		for _, st := range e.order {
			if !st.step.IsGroup() && !st.step.IsCall() && st.v.Status.Unfinished() {
				cut = append(cut, st.path)
			}
		}
		e.mu.Unlock()
		for _, id := range cut {
			e.log("warn", id, "step %s was interrupted mid-action and is not rolled back: check its effect by hand", id)
		}
	}
	return e.execute(ctx), nil
}

// resumeInputs restores the run's inputs: recorded values for the others,
// secrets from Options.Inputs (they are not journaled). A non-secret input
// given with a different value than recorded is refused unless forced.
func (e *Engine) resumeInputs(recorded []journal.Input, force bool) (map[string]any, error) {
	out := map[string]any{}
	var missing, changed []string
	for _, in := range recorded {
		given, ok := e.opts.Inputs[in.Name]
		if in.Secret {
			if !ok {
				// Not journaled: a secret that took its declared default
				// takes it again; one that was given must be given again
				// (falling back to the default would run without it).
				if decl := e.rb.Input(in.Name); decl != nil && decl.HasDefault && in.Defaulted {
					out[in.Name] = decl.Default
					continue
				}
				missing = append(missing, in.Name)
				continue
			}
			out[in.Name] = given
			continue
		}
		out[in.Name] = in.Value
		if ok && !sameJSON(given, in.Value) {
			if !force {
				changed = append(changed, fmt.Sprintf("%s (was %s, now %s)", in.Name, jsonText(in.Value), jsonText(given)))
				continue
			}
			out[in.Name] = given
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("resume: secret input(s) %s must be given again (secrets are not journaled)", strings.Join(missing, ", "))
	}
	if len(changed) > 0 {
		return nil, fmt.Errorf("resume: input(s) differ from the run's: %s; a run resumes with the inputs it started with", strings.Join(changed, "; "))
	}
	// Inputs declared since (a forced resume of a changed runbook).
	for _, in := range e.rb.Inputs {
		if _, ok := out[in.Name]; !ok {
			if v, ok := e.opts.Inputs[in.Name]; ok {
				out[in.Name] = v
			}
		}
	}
	return e.resolveInputs(out)
}

func sameJSON(a, b any) bool {
	ja, err1 := json.Marshal(a)
	jb, err2 := json.Marshal(b)
	return err1 == nil && err2 == nil && string(ja) == string(jb)
}

func jsonText(v any) string {
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func sorted(s []string) []string {
	if len(s) == 0 {
		return nil
	}
	out := append([]string(nil), s...)
	sort.Strings(out)
	return out
}

// replay rebuilds the run's state from the journal: its records are applied
// to the engine's view exactly as its events were when they happened. It
// returns the ids of steps the journal mentions that the runbook does not
// have.
func (e *Engine) replay(records []journal.Record) []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.view.ApplyAll(records)
	e.rollback = e.view.RollbackRequested
	var ids []string
	for _, s := range e.view.Steps() {
		if !s.Declared {
			ids = append(ids, s.Path)
		}
	}
	sort.Strings(ids)
	return ids
}

// decideUnfinished decides, for every step that started and did not finish
// (its action, or its rollback when the run is rolling back), whether to
// run it again or skip it.
func (e *Engine) decideUnfinished(ro ResumeOptions) error {
	retry, skip := set(ro.RetrySteps), set(ro.SkipSteps)
	for id := range retry {
		if skip[id] {
			return fmt.Errorf("resume: step %s is both retried and skipped", id)
		}
	}
	e.mu.Lock()
	defer e.mu.Unlock()
	failed := e.view.Failure != nil && e.states[e.view.Failure.Path] != nil
	rollingBack := failed || e.rollback
	used := map[string]bool{}
	var blocked []BlockedStep
	var unfinished []string
	decide := func(id, uses string, safe, rollback bool) resumeChoice {
		unfinished = append(unfinished, id)
		switch {
		case skip[id]:
			used[id] = true
			return resumeSkip
		case retry[id]:
			used[id] = true
			return resumeRerun
		case safe:
			return resumeRerun
		}
		blocked = append(blocked, BlockedStep{ID: id, Uses: uses, Rollback: rollback})
		return resumeNone
	}
	for _, st := range e.order {
		s := st.step
		if s.IsGroup() || s.IsCall() {
			continue
		}
		if v := st.v; !rollingBack && v.Status.Unfinished() {
			safe := isIdempotent(s.Plugin, s.Spec) || v.Last == journal.AttemptNone || v.Last == journal.AttemptEndedSafe
			st.choice = decide(st.path, s.Uses, safe, false)
		}
		if rb := st.v.Rollback; rollingBack && rb != nil && rb.Status.Unfinished() && s.Rollback != nil {
			safe := isIdempotent(s.Rollback.Plugin, s.Rollback.Spec) || rb.Last == journal.AttemptNone || rb.Last == journal.AttemptEndedSafe
			st.rbChoice = decide(st.path, s.Rollback.Uses, safe, true)
		}
	}
	var stray []string
	for id := range retry {
		if !used[id] {
			stray = append(stray, "--retry-step "+id)
		}
	}
	for id := range skip {
		if !used[id] {
			stray = append(stray, "--skip-step "+id)
		}
	}
	if len(stray) > 0 {
		sort.Strings(stray)
		what := "no step was interrupted mid-action"
		if len(unfinished) > 0 {
			what = "the steps interrupted mid-action are " + strings.Join(unfinished, ", ")
		}
		return fmt.Errorf("resume: %s: no such interrupted step (%s)", strings.Join(stray, ", "), what)
	}
	if len(blocked) > 0 {
		return &ResumeBlockedError{RunID: e.runID, Steps: blocked}
	}
	return nil
}

func set(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}
