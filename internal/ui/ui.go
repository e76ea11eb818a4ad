// Package ui renders a run for the operator: plain timestamped lines when
// the output is not a terminal, one JSON event per line for machines, and
// the final summary table. The live terminal view lives in live.go.
package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/runbookhq/runbook/internal/termtext"
	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/redact"
)

// Renderer shows a run's events as they happen.
type Renderer interface {
	// Event is called for every engine event, in order, never concurrently.
	Event(e engine.Event)
	// Suspend stops drawing (e.g. while a prompt is shown) until the
	// returned function is called.
	Suspend() (resume func())
	// Close ends the live output; the summary is printed after it.
	Close()
}

// Plain writes one timestamped line per event worth a human's attention.
type Plain struct {
	mu sync.Mutex
	w  io.Writer
	// Verbose also prints attempt starts and logs at debug level.
	Verbose bool
}

// NewPlain returns a Plain renderer on w.
func NewPlain(w io.Writer) *Plain { return &Plain{w: w} }

func (p *Plain) Event(e engine.Event) {
	line := Describe(e, p.Verbose)
	if line == "" {
		return
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	fmt.Fprintf(p.w, "%s %s\n", e.Time.Local().Format(time.RFC3339), termtext.Escape(line))
}

func (p *Plain) Suspend() func() { p.mu.Lock(); return p.mu.Unlock }
func (p *Plain) Close()          {}

// JSON writes every event as one JSON object per line (the journal record
// format, documented in docs/execution.md), with what a terminal would act
// on escaped (termtext.JSON).
type JSON struct {
	mu  sync.Mutex
	enc *json.Encoder
}

// NewJSON returns a JSON renderer on w.
func NewJSON(w io.Writer) *JSON { return &JSON{enc: json.NewEncoder(termtext.JSONWriter(w))} }

func (j *JSON) Event(e engine.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e)
}

func (j *JSON) Suspend() func() { j.mu.Lock(); return j.mu.Unlock }
func (j *JSON) Close()          {}

// Describe is the one-line text of an event, or "" for events not shown at
// this verbosity.
func Describe(e engine.Event, verbose bool) string {
	who := ""
	if e.Step != "" {
		who = "[" + e.Step + "] "
		if e.Rollback {
			who = "[" + e.Step + " rollback] "
		}
	}
	errText := func() string {
		if e.Error == nil {
			return ""
		}
		s := e.Error.Message
		if e.Error.Code != "" && !strings.HasPrefix(s, e.Error.Code) {
			s = e.Error.Code + ": " + s
		}
		return s
	}
	switch e.Type {
	case journal.RunStarted:
		name := ""
		if e.Run != nil {
			name = e.Run.Runbook
		}
		return fmt.Sprintf("run %s started: %s", e.RunID, name)
	case journal.RunResumed:
		return fmt.Sprintf("run %s resumed", e.RunID)
	case journal.StepStarted:
		if e.Uses == "" {
			return who + "started (parallel group)"
		}
		return fmt.Sprintf("%sstarted (%s)", who, e.Uses)
	case journal.AttemptStarted:
		if verbose || e.Attempt > 1 {
			return fmt.Sprintf("%sattempt %d", who, e.Attempt)
		}
	case journal.Progress:
		return who + e.Message + fmtFields(e.Fields)
	case journal.Log:
		if e.Level == "debug" && !verbose {
			return ""
		}
		return fmt.Sprintf("%s%s: %s", who, e.Level, e.Message)
	case journal.AttemptFailed:
		next := "no retry"
		if e.NextDelay > 0 {
			next = "retrying in " + fmtDur(time.Duration(e.NextDelay))
		}
		return fmt.Sprintf("%sattempt %d failed (%s): %s", who, e.Attempt, next, errText())
	case journal.UntilUnmet:
		return fmt.Sprintf("%scondition not met yet, polling again in %s", who, fmtDur(time.Duration(e.NextDelay)))
	case journal.StepSucceeded:
		return fmt.Sprintf("%ssucceeded in %s", who, fmtDur(time.Duration(e.Duration)))
	case journal.StepFailed:
		if e.Continued {
			return fmt.Sprintf("%sfailed (continuing): %s", who, errText())
		}
		return fmt.Sprintf("%sFAILED after %s: %s", who, fmtDur(time.Duration(e.Duration)), errText())
	case journal.StepSkipped:
		return fmt.Sprintf("%sskipped: %s", who, e.Message)
	case journal.StepInterrupted:
		return who + "interrupted"
	case journal.ApprovalRequested:
		return fmt.Sprintf("%sapproval needed: %s", who, e.Message)
	case journal.ApprovalGranted:
		return fmt.Sprintf("%sapproved by %s (%s)", who, e.By, e.Via)
	case journal.ApprovalDenied:
		return fmt.Sprintf("%sdenied by %s: %s", who, e.By, e.Message)
	case journal.RollbackStarted:
		return fmt.Sprintf("[%s] rolling back (%s)", e.Step, e.Uses)
	case journal.RollbackSucceeded:
		return fmt.Sprintf("[%s] rolled back in %s", e.Step, fmtDur(time.Duration(e.Duration)))
	case journal.RollbackFailed:
		return fmt.Sprintf("[%s] ROLLBACK FAILED: %s", e.Step, errText())
	case journal.RollbackSkipped:
		return fmt.Sprintf("[%s] rollback skipped: %s", e.Step, e.Message)
	case journal.RunPaused:
		return fmt.Sprintf("run %s paused: %s", e.RunID, e.Message)
	case journal.RunInterrupted:
		return fmt.Sprintf("run %s interrupted", e.RunID)
	case journal.RunFinished:
		s := fmt.Sprintf("run %s finished: %s in %s", e.RunID, e.Status, fmtDur(time.Duration(e.Duration)))
		if e.Status == journal.StatusFailed && e.RolledBack {
			s += " (rolled back)"
		}
		return s
	}
	return ""
}

func fmtFields(f map[string]any) string {
	if len(f) == 0 {
		return ""
	}
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = fmt.Sprintf("%s=%v", k, f[k])
	}
	return " (" + strings.Join(parts, ", ") + ")"
}

// fmtDur formats a duration for people, as the live view's clock does:
// tenths of a second under a minute (0.4s, 10.4s), then whole seconds
// (4m05s), then minutes (1h02m). Full precision is in the JSON output and
// the journal.
func fmtDur(d time.Duration) string { return clock(d) }

// StepLabel is how a step's status reads in tables.
func StepLabel(s engine.StepResult) string {
	switch {
	case s.Status == engine.StepFailed && s.Continued:
		return "failed (continued)"
	case s.Rollback != nil:
		return string(s.Status) + ", rollback " + string(s.Rollback.Status)
	}
	return string(s.Status)
}

// Hints are the commands the summary prints to continue a run.
type Hints struct {
	// Resume is the command that resumes the run with extra flags
	// (--approve STEP, --rollback), as the user should type it; nil means
	// "runbook resume RUN" followed by them.
	Resume func(extra ...string) string
	// Notes follow the commands: what they cannot carry (a secret to give
	// again).
	Notes []string
}

// Summary prints the final table: step, status, attempts, duration; the
// total; milestones; the failure and what is left to do.
func Summary(w io.Writer, res *engine.Result, milestones []Milestone, secretOutputs map[string]bool) {
	SummaryWith(w, res, milestones, secretOutputs, Hints{})
}

// SummaryWith is Summary with the commands to continue the run given.
func SummaryWith(w io.Writer, res *engine.Result, milestones []Milestone, secretOutputs map[string]bool, hints Hints) {
	resume := hints.Resume
	if resume == nil {
		resume = func(extra ...string) string {
			return strings.Join(append([]string{"runbook resume", res.RunID}, extra...), " ")
		}
	}
	fmt.Fprintln(w)
	var table strings.Builder
	tw := tabwriter.NewWriter(&table, 2, 4, 2, ' ', 0)
	fmt.Fprintln(tw, "STEP\tSTATUS\tATTEMPTS\tDURATION")
	depth := map[string]int{}
	for _, s := range res.Steps {
		if s.Group != "" {
			depth[s.ID] = depth[s.Group] + 1
		}
		id := strings.Repeat("  ", depth[s.ID]) + s.ID
		dur := ""
		if !s.Started.IsZero() && !s.Finished.IsZero() && s.Status != engine.StepSkipped {
			dur = fmtDur(s.Finished.Sub(s.Started))
		}
		att := ""
		if s.Attempts > 0 {
			att = fmt.Sprint(s.Attempts)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\n", id, StepLabel(s), att, dur)
	}
	_ = tw.Flush()
	for _, line := range strings.SplitAfter(table.String(), "\n") {
		// Empty last cells would leave trailing blanks.
		fmt.Fprint(w, strings.TrimRight(line, " \n")+strings.Repeat("\n", strings.Count(line, "\n")))
	}
	fmt.Fprintf(w, "\nrun %s: %s", res.RunID, res.Status)
	if res.Status == engine.StatusFailed && res.RolledBack {
		fmt.Fprint(w, " (rolled back)")
	}
	if !res.Started.IsZero() && !res.Finished.IsZero() {
		fmt.Fprintf(w, " in %s", fmtDur(res.Finished.Sub(res.Started)))
	}
	fmt.Fprintln(w)
	if len(milestones) > 0 {
		// The times that matter for recovery (RTO), from the run's start.
		ms := append([]Milestone(nil), milestones...)
		sort.SliceStable(ms, func(i, j int) bool { return ms[i].At.Before(ms[j].At) })
		width := 0
		for _, m := range ms {
			width = max(width, len([]rune(m.Name)))
		}
		for _, m := range ms {
			pad := strings.Repeat(" ", width-len([]rune(m.Name)))
			undone := ""
			if m.Undone {
				undone = "  (undone by the rollback)"
			}
			fmt.Fprintf(w, "  ◆ %s%s  +%s%s\n", termtext.Escape(m.Name), pad, fmtDur(m.At.Sub(res.Started)), undone)
		}
	}
	if res.Failure != nil {
		fmt.Fprintf(w, "  failed: %s\n", termtext.Escape(res.Failure.Error()))
	}
	for _, rf := range res.RollbackFailures {
		fmt.Fprintf(w, "  rollback failed: %s — manual attention needed\n", termtext.Escape(rf.Error()))
	}
	if len(res.Waiting) > 0 {
		var approve []string
		for _, id := range res.Waiting {
			approve = append(approve, "--approve", id)
		}
		fmt.Fprintf(w, "  waiting for approval: %s\n  continue with: %s\n", strings.Join(res.Waiting, ", "), resume(approve...))
	}
	if res.Status == engine.StatusInterrupted {
		fmt.Fprintf(w, "  continue with: %s\n  or roll back:  %s\n", resume(), resume("--rollback"))
	}
	if len(res.Waiting) > 0 || res.Status == engine.StatusInterrupted {
		for _, n := range hints.Notes {
			fmt.Fprintf(w, "  %s\n", n)
		}
	}
	if len(res.Outputs) > 0 {
		fmt.Fprintln(w, "\noutputs:")
		keys := make([]string, 0, len(res.Outputs))
		for k := range res.Outputs {
			keys = append(keys, k)
		}
		sort.Strings(keys)
		for _, k := range keys {
			v := res.Outputs[k]
			if secretOutputs[k] {
				v = redact.Mask
			}
			fmt.Fprintf(w, "  %s = %s\n", k, termtext.Escape(fmtOutput(v)))
		}
	}
}

// Milestone is a named point of the run (e.g. "database writable").
type Milestone struct {
	Name string
	At   time.Time
	// Undone: reached, then undone by the run's rollback.
	Undone bool
}

// fmtOutput is an output as the summary shows it: a duration written with
// more precision than a person reads (a runbook's "1m2.345678901s") is
// rounded like every other duration; the JSON output and the journal keep
// it whole.
func fmtOutput(v any) string {
	if s, ok := v.(string); ok && strings.ContainsAny(s, ".µ") || ok && strings.HasSuffix(s, "ns") {
		if d, err := time.ParseDuration(s); err == nil && s != "0" {
			return fmtDur(d)
		}
	}
	return fmtValue(v)
}

func fmtValue(v any) string {
	switch x := v.(type) {
	case string:
		return x
	case nil:
		return "null"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}
