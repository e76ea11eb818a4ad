package report

import (
	"fmt"
	"io"
	"sort"
	"strings"
)

// Markdown writes the run's report as a Markdown document (GitHub
// flavoured: tables, and the chart as a fixed-width text block).
func Markdown(w io.Writer, r *Run) error {
	v, err := newView(r)
	if err != nil {
		return err
	}
	var b strings.Builder
	v.markdown(&b)
	_, err = io.WriteString(w, b.String())
	return err
}

func (v *view) markdown(b *strings.Builder) {
	r := v.run
	fmt.Fprintf(b, "# Run %s: %s\n\n", mdText(r.ID), mdText(r.Runbook))
	fmt.Fprintf(b, "**%s %s**", runGlyph(r.Status), runStatusText(r.Status))
	if r.Error != "" {
		fmt.Fprintf(b, ": %s", mdText(oneLine(v.red.text(r.Error))))
	}
	b.WriteString("\n\n")
	b.WriteString("| | |\n|---|---|\n")
	fmt.Fprintf(b, "| Run | %s |\n", mdCode(r.ID))
	hash := ""
	if r.RunbookHash != "" {
		hash = " (sha256 " + mdCode(shortHash(r.RunbookHash)) + ")"
	}
	fmt.Fprintf(b, "| Runbook | %s%s |\n", mdText(r.Runbook), hash)
	fmt.Fprintf(b, "| Status | %s %s |\n", runGlyph(r.Status), mdText(string(r.Status)))
	fmt.Fprintf(b, "| Started | %s |\n", fmtTime(v.t.origin))
	if v.ended() {
		fmt.Fprintf(b, "| Finished | %s |\n", fmtTime(r.Finished))
		fmt.Fprintf(b, "| Duration | %s |\n", fmtDur(v.duration()))
	} else {
		fmt.Fprintf(b, "| Finished | not recorded (last record %s) |\n", fmtTime(v.t.horizon))
		fmt.Fprintf(b, "| Duration | at least %s |\n", fmtDur(v.duration()))
	}
	for _, t := range v.resumes() {
		fmt.Fprintf(b, "| Resumed | %s (%s) |\n", fmtTime(t), fmtOffset(v.offset(t)))
	}
	fmt.Fprintf(b, "| Steps | %s |\n", v.stepCounts())
	b.WriteString("\n")

	v.mdRecovery(b)
	v.mdEvidence(b)
	v.mdCriticalPath(b)
	v.mdTimeline(b)

	b.WriteString("## Chart\n\n```text\n")
	v.asciiGantt(b)
	b.WriteString("```\n\n")
	b.WriteString(asciiLegend + "\n\n")

	v.mdApprovals(b)
	v.mdErrors(b)
	v.mdRollbacks(b)
	v.mdInputs(b)
	v.mdOutputs(b)
	v.mdStepOutputs(b)
	v.mdEvents(b)
}

// stepCounts summarises step statuses: "9 succeeded, 1 failed, 2 skipped".
func (v *view) stepCounts() string {
	counts := map[StepStatus]int{}
	var order []StepStatus
	for _, n := range v.t.rows {
		if n.isGroup() {
			continue
		}
		st := n.step.Status
		if counts[st] == 0 {
			order = append(order, st)
		}
		counts[st]++
	}
	rank := map[StepStatus]int{StepSucceeded: 0, StepFailed: 1, StepInterrupted: 2, StepRunning: 3, StepWaiting: 4, StepSkipped: 5, StepPending: 6}
	sort.SliceStable(order, func(i, j int) bool {
		ri, ok := rank[order[i]]
		if !ok {
			ri = 9
		}
		rj, ok := rank[order[j]]
		if !ok {
			rj = 9
		}
		return ri < rj
	})
	var parts []string
	for _, st := range order {
		parts = append(parts, fmt.Sprintf("%d %s", counts[st], stepStatusText(st)))
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

func (v *view) mdRecovery(b *strings.Builder) {
	b.WriteString("## Recovery time\n\n")
	ms := v.milestones()
	b.WriteString("| Milestone | Reached after | At | Step |\n|---|---|---|---|\n")
	for _, m := range ms {
		step := ""
		if m.Step != "" {
			step = mdCode(m.Step)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s |\n", mdText(m.label()), fmtDur(m.since), fmtClock(m.At), step)
	}
	fmt.Fprintf(b, "| **%s** | **%s** | %s | |\n\n", v.totalLabel(), v.totalValue(), fmtClock(v.t.horizon))
	if len(ms) == 0 {
		b.WriteString("No milestones were recorded for this run.\n\n")
	}
	var notes []string
	if w := v.approvalWait(); w > 0 {
		notes = append(notes, fmt.Sprintf("Waiting for approval: %s (%s).", fmtDur(w), plural(len(v.run.Approvals), "approval", "approvals")))
	}
	if k := v.retries(); k > 0 {
		notes = append(notes, fmt.Sprintf("Retries: %d.", k))
	}
	if len(notes) > 0 {
		b.WriteString(strings.Join(notes, " ") + "\n\n")
	}
}

// totalLabel and totalValue describe the end-to-end time: a recovery time
// only if the run succeeded.
func (v *view) totalLabel() string {
	switch {
	case v.run.Status == RunSucceeded:
		return "Total (run succeeded)"
	case v.ended():
		return "Total (run " + stepStatusText(StepStatus(v.run.Status)) + ": not recovered)"
	}
	return "So far (run not finished)"
}

func (v *view) totalValue() string { return fmtDur(v.duration()) }

func (v *view) mdEvidence(b *strings.Builder) {
	ev := v.evidence()
	if len(ev) == 0 {
		return
	}
	b.WriteString("## What ended each wait\n\n| Step | Evidence |\n|---|---|\n")
	for _, e := range ev {
		fmt.Fprintf(b, "| %s | %s |\n", mdCode(e.Step), mdText(truncate(e.Summary, 600)))
	}
	b.WriteString("\n")
}

func (v *view) mdCriticalPath(b *strings.Builder) {
	b.WriteString("## Critical path\n\n")
	segs := v.path.Segments
	if len(segs) == 0 {
		b.WriteString("No step took any time.\n\n")
		return
	}
	var parts []string
	for _, s := range segs {
		label := mdCode(s.Step)
		if w := v.within(s.Step); w != "" {
			label = mdText(w) + " › " + label
		}
		if s.Rollback {
			label = "rollback of " + label
		}
		parts = append(parts, fmt.Sprintf("%s %s", label, fmtDur(s.End.Sub(s.Start))))
	}
	b.WriteString(strings.Join(parts, " → ") + "\n\n")
	busy := v.path.Busy()
	gap := v.duration() - busy
	fmt.Fprintf(b, "The steps on the critical path account for %s of the run's %s", fmtDur(busy), fmtDur(v.duration()))
	if gap > 0 {
		fmt.Fprintf(b, "; %s passed between them (interpreter overhead, or a paused run waiting to be resumed)", fmtDur(gap))
	}
	b.WriteString(". Steps marked ◆ below are on it; shortening any other step would not have shortened the run.\n\n")
}

func (v *view) mdTimeline(b *strings.Builder) {
	b.WriteString("## Timeline\n\n")
	b.WriteString("| | Step | Action | Status | Attempts | Start | Duration |\n|---|---|---|---|---|---|---|\n")
	for _, n := range v.t.rows {
		s := n.step
		crit := ""
		if v.path.Has(s.ID) {
			crit = "◆"
		}
		name := strings.Repeat("&nbsp;&nbsp;", max(n.depth-1, 0)) + strings.Repeat("↳ ", min(n.depth, 1)) + mdCode(s.ID)
		if s.Name != "" {
			name += " " + mdText(v.red.text(s.Name))
		}
		uses := "parallel"
		switch {
		case s.Calls != "":
			uses = "calls " + mdCode(s.Calls)
		case !n.isGroup():
			uses = mdCode(s.Uses)
		}
		status := stepGlyph(s.Status) + " " + stepStatusLabel(s)
		if s.Status == StepSkipped && s.SkipReason != "" {
			status += " (" + mdText(oneLine(v.red.text(s.SkipReason))) + ")"
		}
		if rb := s.Rollback; rb != nil {
			status += ", " + rollbackStatusText(rb.Status)
		}
		attempts := ""
		if k := len(s.Attempts); k > 0 {
			attempts = fmt.Sprint(k)
		}
		start, dur := "", ""
		if n.ran {
			start = fmtOffset(v.offset(n.start))
		}
		if n.took() {
			dur = fmtDur(n.end.Sub(n.start))
			if n.open {
				dur += " (not finished)"
			}
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s | %s |\n", crit, name, uses, status, attempts, start, dur)
	}
	b.WriteString("\n")
}

func (v *view) mdApprovals(b *strings.Builder) {
	if len(v.run.Approvals) == 0 {
		return
	}
	b.WriteString("## Approvals\n\n")
	b.WriteString("| Step | Requested | Answer | Waited | By | Message |\n|---|---|---|---|---|---|\n")
	for _, a := range v.run.Approvals {
		granted, waited, by := v.approvalAnswer(a), "", mdText(v.red.text(a.By))
		if a.Identity != "" {
			by += "<br>" + mdText(v.red.text(a.Identity))
		}
		end := a.GrantedAt
		if end.IsZero() {
			end = v.t.horizon
		}
		if !a.RequestedAt.IsZero() {
			waited = fmtDur(end.Sub(a.RequestedAt))
			if a.GrantedAt.IsZero() {
				waited = "at least " + waited
			}
		}
		fmt.Fprintf(b, "| %s | %s (%s) | %s | %s | %s | %s |\n", mdCode(a.Step), fmtClock(a.RequestedAt),
			fmtOffset(v.offset(a.RequestedAt)), granted, waited, by, mdText(oneLine(v.red.text(a.Message))))
	}
	b.WriteString("\n")
}

func (v *view) mdErrors(b *strings.Builder) {
	fa := v.failedAttempts()
	var failed []*node
	for _, n := range v.t.rows {
		if n.step.Error != "" {
			failed = append(failed, n)
		}
	}
	if len(fa) == 0 && len(failed) == 0 && v.run.Error == "" {
		return
	}
	b.WriteString("## Retries and errors\n\n")
	if len(fa) > 0 {
		b.WriteString("| Step | Attempt | At | After | Error | Outcome |\n|---|---|---|---|---|---|\n")
		for _, f := range fa {
			a := f.attempt
			after := ""
			if !a.Started.IsZero() && !a.Finished.IsZero() {
				after = fmtDur(a.Finished.Sub(a.Started))
			}
			fmt.Fprintf(b, "| %s | %d | %s | %s | %s | %s |\n", mdCode(f.step.step.ID), a.N,
				fmtOffset(v.offset(a.Finished)), after, mdText(truncate(oneLine(v.red.text(a.Error)), 300)), attemptOutcome(f))
		}
		b.WriteString("\n")
	}
	for _, n := range failed {
		fmt.Fprintf(b, "- %s failed: %s\n", mdCode(n.step.ID), mdText(oneLine(v.red.text(n.step.Error))))
	}
	if len(failed) > 0 {
		b.WriteString("\n")
	}
}

// attemptOutcome says what followed a failed attempt.
func attemptOutcome(f failedAttempt) string {
	switch {
	case !f.last:
		return "retryable, retried"
	case f.attempt.Retryable:
		return "retryable, attempts exhausted"
	}
	return "fatal"
}

func (v *view) mdRollbacks(b *strings.Builder) {
	rbs := v.rollbacks()
	if len(rbs) == 0 {
		return
	}
	b.WriteString("## Rollbacks\n\n")
	b.WriteString("Compensations run in reverse completion order after the failure.\n\n")
	b.WriteString("| | Step | Status | Start | Duration | Error |\n|---|---|---|---|---|---|\n")
	for _, n := range rbs {
		rb := n.step.Rollback
		crit := ""
		if v.path.HasRollback(n.step.ID) {
			crit = "◆"
		}
		start, dur := "", ""
		if s, e, ok := v.t.rollbackInterval(n); ok {
			start, dur = fmtOffset(v.offset(s)), fmtDur(e.Sub(s))
		}
		glyph := "↶"
		if rb.Status == StepFailed {
			glyph = "✗"
		}
		fmt.Fprintf(b, "| %s | %s | %s %s | %s | %s | %s |\n", crit, mdCode(n.step.ID), glyph, rollbackStatusText(rb.Status),
			start, dur, mdText(oneLine(v.red.text(rb.Error))))
	}
	b.WriteString("\n")
}

func (v *view) mdInputs(b *strings.Builder) {
	b.WriteString("## Inputs\n\n")
	if len(v.run.Inputs) == 0 {
		b.WriteString("None.\n\n")
		return
	}
	b.WriteString("| Name | Value |\n|---|---|\n")
	for _, in := range v.run.Inputs {
		val := redacted
		if !in.Secret {
			val = v.red.value(in.Value)
		}
		sec := ""
		if in.Secret {
			sec = " (secret)"
		}
		fmt.Fprintf(b, "| %s%s | %s |\n", mdCode(in.Name), sec, mdCode(truncate(val, 200)))
	}
	b.WriteString("\n")
}

func (v *view) mdOutputs(b *strings.Builder) {
	if len(v.run.Outputs) == 0 {
		return
	}
	b.WriteString("## Outputs\n\n| Name | Value |\n|---|---|\n")
	for _, o := range v.run.Outputs {
		val := redacted
		if !o.Secret {
			val = v.red.value(o.Value)
		}
		fmt.Fprintf(b, "| %s | %s |\n", mdCode(o.Name), mdCode(truncate(val, 200)))
	}
	b.WriteString("\n")
}

func (v *view) mdStepOutputs(b *strings.Builder) {
	has := false
	for _, n := range v.t.rows {
		if len(n.step.Outputs) > 0 {
			has = true
		}
	}
	if !has {
		return
	}
	b.WriteString("## Appendix: step outputs\n\n| Step | Output | Value |\n|---|---|---|\n")
	for _, n := range v.t.rows {
		for _, k := range sortedKeys(n.step.Outputs) {
			fmt.Fprintf(b, "| %s | %s | %s |\n", mdCode(n.step.ID), mdCode(k), mdCode(truncate(v.red.value(n.step.Outputs[k]), 300)))
		}
	}
	b.WriteString("\n")
}

func (v *view) mdEvents(b *strings.Builder) {
	if len(v.run.Events) == 0 {
		return
	}
	b.WriteString("## Appendix: journal\n\n| Time | Offset | Event | Step | Attempt | Message |\n|---|---|---|---|---|---|\n")
	for _, e := range v.run.Events {
		step, attempt := "", ""
		if e.Step != "" {
			step = mdCode(e.Step)
		}
		if e.Attempt > 0 {
			attempt = fmt.Sprint(e.Attempt)
		}
		fmt.Fprintf(b, "| %s | %s | %s | %s | %s | %s |\n", fmtStamp(e.At), fmtOffset(v.offset(e.At)), mdCode(e.Type), step, attempt,
			mdText(truncate(oneLine(v.red.text(e.Message)), 300)))
	}
	b.WriteString("\n")
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// mdText escapes text for Markdown (table cells included): punctuation
// that would start markup or HTML is backslash-escaped.
func mdText(s string) string {
	s = oneLine(s)
	var b strings.Builder
	for _, r := range s {
		if strings.ContainsRune("\\`*_[]<>|#~!&", r) {
			b.WriteByte('\\')
		}
		b.WriteRune(r)
	}
	return b.String()
}

// mdCode puts s in a code span that survives a table: the fence is longer
// than any run of backticks inside, and pipes are escaped (GFM splits cells
// on them even inside code).
func mdCode(s string) string {
	s = oneLine(s)
	if s == "" {
		return "` `"
	}
	longest, run := 0, 0
	for _, r := range s {
		if r == '`' {
			run++
			longest = max(longest, run)
		} else {
			run = 0
		}
	}
	fence := strings.Repeat("`", longest+1)
	s = strings.ReplaceAll(s, "|", "\\|")
	if strings.HasPrefix(s, "`") || strings.HasSuffix(s, "`") {
		s = " " + s + " "
	}
	return fence + s + fence
}
