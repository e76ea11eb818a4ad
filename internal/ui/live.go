package ui

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"strings"
	"sync"
	"time"

	"golang.org/x/term"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// Live is the terminal view of a run: one line per step with a spinner,
// its status and elapsed time, redrawn in place at most ten times a second.
//
// The screen has two parts. Finished steps are printed once, in document
// order, and scroll away like ordinary output; so are log lines and
// milestones. Below them, the live region holds the steps that are still
// running (and the finished children of a running parallel group, which
// must stay under their group), each with a dim sub-line for the latest
// progress event, retry or approval question. Only the live region is
// redrawn, and it is kept shorter than the terminal, so a long runbook on
// a small terminal leaves a clean transcript rather than redraw garbage.
type Live struct {
	mu sync.Mutex
	w  io.Writer
	p  painter
	// size reports the terminal's size; width or height 0 when unknown.
	size func() (width, height int)
	now  func() time.Time

	// view is what this session's events say about each step; the rows
	// add what is only for the screen.
	view      *journal.View
	rows      []*liveRow // document order, groups before their children
	byID      map[string]*liveRow
	labelW    int
	next      int        // rows[:next] are printed for good (or never will be)
	calls     []*liveRow // calls whose line is printed, not yet their end
	rollbacks []*liveRow // in the order they started
	rbNext    int
	lastRB    map[string]*liveRow

	out       []string // lines to print for good at the next draw
	liveLines int      // lines of the live region on screen now
	started   time.Time
	// width is the columns a line of the live region may use (0: no
	// limit), set at each draw.
	width int
	// skipRun holds steps skipped because their path was not chosen,
	// printed as one line before the next step printed at their level.
	skipRun []*liveRow

	suspended, closed bool
	stop, done        chan struct{}
}

// liveRow is a step (or a step's rollback) as the view shows it: the
// step's state is its journal.StepView's (its Rollback for a rollback row);
// the row holds what only the screen needs.
type liveRow struct {
	// id is the step's path; label what the row shows (its id: a step of a
	// called runbook sits under the calling step).
	id, label, name string
	// uses is the step's action (from the runbook); timeout the bound of
	// one attempt (0: unknown).
	uses     string
	timeout  time.Duration
	v        *journal.StepView
	group    *liveRow
	children []*liveRow
	depth    int
	isGroup  bool
	rollback bool
	// call: the step calls a runbook. Once it runs, a line opens it and its
	// steps are printed under it as they end; its own line closes it.
	call bool

	seen bool
	// shown replaces the recorded status of a row the run left unfinished
	// (interrupted, or a group waiting for an approval inside it) or that
	// never started; stoppedAt is when the run stopped it.
	shown       string
	stoppedAt   time.Time
	maxAttempts int
	// note is the dim sub-line of a running step. With noteDelay it is
	// a countdown: note, the time left until noteUntil, noteAfter.
	note       string
	noteFields map[string]any
	noteAfter  string
	noteUntil  time.Time
	noteDelay  bool
	// services are the latest progress of each service the action reports
	// on (progress with a "service" field), in the order first reported.
	services []serviceNote
	// heard is when the step's action last said anything (attempt start,
	// progress); region the region its progress last named.
	heard  time.Time
	region string
	// approval says how the step's approval was answered.
	approval  string
	retries   int
	lastRetry string
	// reached is the milestone line this row's success printed, shown
	// after the row (after its group, for a group's child).
	reached string
}

// x is what the row's records say: the step's, or its rollback's.
func (r *liveRow) x() *journal.Execution {
	if r.rollback {
		return &r.v.Rollback.Execution
	}
	return &r.v.Execution
}

func (r *liveRow) status() string {
	if r.shown != "" {
		return r.shown
	}
	return string(r.x().Status)
}

// times are when the row started and ended, and the duration recorded.
func (r *liveRow) times() (started, finished time.Time, dur time.Duration) {
	x := r.x()
	finished = x.Finished
	if finished.IsZero() {
		finished = r.stoppedAt
	}
	return x.Started, finished, x.Duration
}

func (r *liveRow) continued() bool { return !r.rollback && r.v.Continued }

// errText is why the row failed. A group that failed because children did
// has none of its own: their lines say why.
func (r *liveRow) errText() string {
	x := r.x()
	if x.Status != journal.StateFailed || (r.isGroup || r.call) && x.Error != nil && x.Error.Code == "ChildFailed" {
		return ""
	}
	return errorText(x.Error)
}

// Row statuses beyond the engine's step statuses.
const (
	rowNotStarted = "not_started"
)

// NewLive returns the terminal renderer. rb gives the steps' order, names
// and groups (nil: steps are shown as their events arrive); width is the
// terminal's width (0: ask the terminal, or assume 80).
func NewLive(w io.Writer, rb *runbook.Runbook, color bool, width int) Renderer {
	size := func() (int, int) { return width, 0 }
	if f, ok := w.(*os.File); ok {
		fd := int(f.Fd())
		size = func() (int, int) {
			// Asked at every draw, so a resized terminal is followed.
			if cw, ch, err := term.GetSize(fd); err == nil && cw > 0 {
				return cw, ch
			}
			return width, 0
		}
	}
	l := newLive(w, rb, color, size, time.Now)
	l.start(100 * time.Millisecond)
	return l
}

func newLive(w io.Writer, rb *runbook.Runbook, color bool, size func() (int, int), now func() time.Time) *Live {
	l := &Live{w: w, p: painter{color}, size: size, now: now, byID: map[string]*liveRow{},
		lastRB: map[string]*liveRow{}, view: engine.NewView(rb, "")}
	if rb != nil {
		engine.WalkSteps(rb, func(ref engine.StepRef) {
			s := ref.Step
			r := &liveRow{id: ref.Path, label: s.ID, name: clean(s.Name), v: l.view.Step(ref.Path), isGroup: s.IsGroup(),
				call: s.IsCall(), maxAttempts: s.Retry.Attempts, uses: s.Uses, timeout: s.Timeout}
			if g := l.byID[ref.Group]; g != nil {
				r.group, r.depth = g, g.depth+1
				g.children = append(g.children, r)
			}
			l.rows = append(l.rows, r)
			l.byID[ref.Path] = r
		})
	}
	for _, r := range l.rows {
		l.labelW = max(l.labelW, 2*r.depth+len([]rune(r.label)))
	}
	l.labelW = min(max(l.labelW, 8), 32)
	return l
}

// start draws every tick until Close: spinners turn and elapsed times
// advance even when no event arrives.
func (l *Live) start(every time.Duration) {
	l.stop, l.done = make(chan struct{}), make(chan struct{})
	go func() {
		defer close(l.done)
		t := time.NewTicker(every)
		defer t.Stop()
		for {
			select {
			case <-l.stop:
				return
			case <-t.C:
				l.mu.Lock()
				l.draw()
				l.mu.Unlock()
			}
		}
	}()
}

// Event updates the view's state; the next tick draws it.
func (l *Live) Event(e engine.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return
	}
	l.apply(e)
	l.commit(false)
}

// Suspend erases the live region and stops drawing, leaving the cursor at
// the start of a fresh line below what was printed for good, so a prompt
// can be written there. Events keep updating the state meanwhile; the
// returned function draws again, below the prompt.
func (l *Live) Suspend() func() {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.closed {
		return func() {}
	}
	l.draw()
	l.erase()
	l.suspended = true
	var once sync.Once
	return func() {
		once.Do(func() {
			l.mu.Lock()
			defer l.mu.Unlock()
			l.suspended = false
			l.draw()
		})
	}
}

// Close stops drawing and prints the final state of every step that was
// still on the live region, so nothing is left half-drawn.
func (l *Live) Close() {
	l.mu.Lock()
	if l.closed {
		l.mu.Unlock()
		return
	}
	l.closed = true
	l.mu.Unlock()
	if l.stop != nil {
		close(l.stop)
		<-l.done
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	l.suspended = false
	l.commit(true)
	l.draw()
}

// row returns the row of step id, creating it (at the end, or after its
// group's last row) for a step the runbook did not list.
func (l *Live) row(id, group string) *liveRow {
	if r, ok := l.byID[id]; ok {
		return r
	}
	r := &liveRow{id: id, label: id, v: l.view.Step(id)}
	pos := len(l.rows)
	if g, ok := l.byID[group]; ok && group != "" {
		r.group, r.depth = g, g.depth+1
		g.children = append(g.children, r)
		g.isGroup = true
		pos = indexOf(l.rows, g) + 1
		for pos < len(l.rows) && isDescendant(l.rows[pos], g) {
			pos++
		}
	}
	l.rows = append(l.rows, nil)
	copy(l.rows[pos+1:], l.rows[pos:])
	l.rows[pos] = r
	l.byID[id] = r
	if pos < l.next {
		l.next++
	}
	l.labelW = min(max(l.labelW, 2*r.depth+len([]rune(r.label))), 32)
	return r
}

func indexOf(rows []*liveRow, r *liveRow) int {
	for i, x := range rows {
		if x == r {
			return i
		}
	}
	return -1
}

func isDescendant(r, g *liveRow) bool {
	for p := r.group; p != nil; p = p.group {
		if p == g {
			return true
		}
	}
	return false
}

// markSeen makes r and its groups part of this session's view. A resumed
// run sends no step_started for steps that had already started.
func (l *Live) markSeen(r *liveRow) {
	for x := r; x != nil; x = x.group {
		x.seen = true
	}
}

func (l *Live) apply(e engine.Event) {
	reached := len(l.view.Milestones)
	l.view.Apply(e)
	switch e.Type {
	case journal.RunStarted:
		l.started = e.Time
		name := ""
		if e.Run != nil {
			name = clean(e.Run.Runbook)
		}
		l.out = append(l.out, l.p.paint(sgrBold, fmt.Sprintf("Running %s", name))+l.p.paint(sgrDim, "  (run "+e.RunID+")"))
		return
	case journal.RunResumed:
		l.out = append(l.out, l.p.paint(sgrBold, "Resuming run "+e.RunID))
		return
	case journal.Log:
		if e.Level == "debug" {
			return
		}
		l.out = append(l.out, l.logLine(e))
		return
	case journal.RunInterrupted:
		// Steps still shown as running (a group around an interrupted
		// child) stopped too. The summary says how the run ended.
		for _, r := range append(l.rows, l.rollbacks...) {
			if r.seen && !isFinal(r.status()) && r.status() != string(engine.StepWaiting) {
				r.shown, r.stoppedAt = string(engine.StepInterrupted), e.Time
			}
		}
		return
	case journal.RunPaused:
		for _, r := range l.rows {
			if (r.isGroup || r.call) && r.seen && !isFinal(r.status()) && hasWaiting(r) {
				r.shown = string(engine.StepWaiting)
			}
		}
		return
	case journal.RunFinished:
		return
	}
	if e.Step == "" {
		return
	}
	if e.Rollback || strings.HasPrefix(e.Type, "rollback_") {
		l.applyRollback(e)
		return
	}
	r := l.row(e.Step, e.Group)
	if e.Type == journal.StepSkipped {
		r.seen = true
		return
	}
	l.markSeen(r)
	if l.applyAttempt(r, e) {
		return
	}
	switch e.Type {
	case journal.UntilUnmet:
		r.setCountdown(fmt.Sprintf("condition not met after attempt %d, polling again in ", e.Attempt), e.Time.Add(e.NextDelay.Std()), "")
	case journal.ApprovalGranted:
		r.approval = clean(fmt.Sprintf("approved by %s (%s)", e.By, e.Via))
		r.setNote("")
	case journal.ApprovalDenied:
		r.approval = clean(fmt.Sprintf("denied by %s", e.By))
		r.setNote("")
	case journal.StepSucceeded:
		if len(l.view.Milestones) > reached {
			l.reached(r, l.view.Milestones[reached])
		}
	case journal.StepInterrupted:
		r.stoppedAt = e.Time
	}
}

// reached prints a milestone the first time a step marking it succeeds.
func (l *Live) reached(r *liveRow, m journal.Milestone) {
	after := ""
	if !l.started.IsZero() {
		after = " after " + fmtDur(m.At.Sub(l.started))
	}
	r.reached = l.p.paint(sgrBold, "◆ "+m.Name) + after
}

func (l *Live) applyRollback(e engine.Event) {
	r := l.lastRB[e.Step]
	if r == nil {
		if len(l.rollbacks) == 0 {
			l.out = append(l.out, l.p.paint(sgrBold, "Rolling back the completed steps, most recent first"))
		}
		depth := 0
		if s, ok := l.byID[e.Step]; ok {
			depth = s.depth
		}
		r = &liveRow{id: e.Step, label: e.Step, v: l.view.Step(e.Step), rollback: true, depth: depth, seen: true}
		l.rollbacks = append(l.rollbacks, r)
		l.lastRB[e.Step] = r
	}
	if l.applyAttempt(r, e) {
		return
	}
	switch e.Type {
	case journal.ApprovalGranted:
		r.setNote("")
	case journal.StepInterrupted:
		r.stoppedAt = e.Time
	}
}

// applyAttempt applies what a step and a rollback share: attempts,
// progress, retries, an approval's question. It reports whether e was one.
func (l *Live) applyAttempt(r *liveRow, e engine.Event) bool {
	switch e.Type {
	case journal.AttemptStarted:
		if r.noteDelay {
			r.setNote("")
		}
		r.services, r.heard = nil, e.Time
	case journal.Progress:
		r.heard = e.Time
		if region, ok := e.Fields["region"].(string); ok && region != "" {
			r.region = clean(region)
		}
		if svc, ok := e.Fields["service"].(string); ok && svc != "" {
			r.setService(clean(svc), clean(e.Message), e.Fields)
			if !r.noteDelay {
				r.setNote("")
			}
			return true
		}
		r.setNote(clean(e.Message))
		r.noteFields = e.Fields
	case journal.AttemptFailed:
		if e.NextDelay > 0 {
			msg := errorText(e.Error)
			r.retries++
			r.lastRetry = msg
			r.setCountdown(fmt.Sprintf("attempt %d failed, retrying in ", e.Attempt), e.Time.Add(e.NextDelay.Std()), ": "+msg)
		}
	case journal.ApprovalRequested:
		r.setNote(clean(e.Message))
	default:
		return false
	}
	return true
}

func (r *liveRow) setNote(text string) {
	r.note, r.noteFields, r.noteAfter, r.noteUntil, r.noteDelay = text, nil, "", time.Time{}, false
}

// serviceNote is the latest progress about one service.
type serviceNote struct {
	service, text string
	fields        map[string]any
}

func (r *liveRow) setService(service, text string, fields map[string]any) {
	for i := range r.services {
		if r.services[i].service == service {
			r.services[i].text, r.services[i].fields = text, fields
			return
		}
	}
	r.services = append(r.services, serviceNote{service, text, fields})
}

// setCountdown makes the sub-line count down to until: before, the time
// left, after.
func (r *liveRow) setCountdown(before string, until time.Time, after string) {
	r.note, r.noteFields, r.noteAfter, r.noteUntil, r.noteDelay = before, nil, after, until, true
}

func hasWaiting(g *liveRow) bool {
	for _, c := range g.children {
		if c.status() == string(engine.StepWaiting) || (c.isGroup || c.call) && hasWaiting(c) {
			return true
		}
	}
	return false
}

func isFinal(status string) bool {
	switch engine.StepStatus(status) {
	case engine.StepSucceeded, engine.StepFailed, engine.StepSkipped, engine.StepInterrupted:
		return true
	}
	return status == rowNotStarted
}

func errorText(e *journal.Error) string {
	if e == nil {
		return ""
	}
	s := e.Message
	if e.Code != "" && !strings.HasPrefix(s, e.Code) {
		s = e.Code + ": " + s
	}
	return clean(s)
}

// commit moves what is finished from the live region to the permanent
// output, in document order: a top-level step once it has finished, a
// parallel group with all its children once the group has finished. Steps
// this session never saw (done before a resume, or after the failure) are
// passed over. With all set (Close), everything seen is committed as it is.
func (l *Live) commit(all bool) {
	for {
		// A call whose steps are all printed is printed, closing them, once
		// it has ended.
		if n := len(l.calls); n > 0 {
			c := l.calls[n-1]
			if l.next >= len(l.rows) || !isDescendant(l.rows[l.next], c) {
				if !isFinal(c.status()) && !all {
					return
				}
				l.flushSkips()
				l.out = append(l.out, l.rowLines(c, true)...)
				if c.reached != "" {
					l.out = append(l.out, c.reached)
				}
				l.calls = l.calls[:n-1]
				continue
			}
		}
		if l.next >= len(l.rows) {
			if all {
				l.flushSkips()
			}
			break
		}
		r := l.rows[l.next]
		end := l.next + 1
		for end < len(l.rows) && isDescendant(l.rows[end], r) {
			end++
		}
		if !r.seen {
			// Passed over only once a later step has been seen, or the call
			// it belongs to has ended: it ran before a resume, or will not
			// run in this session.
			if !all && !l.seenFrom(end) && !l.callEnded() {
				return
			}
			l.next = end
			continue
		}
		if r.call && !isFinal(r.status()) && !all {
			// A call runs a whole runbook: its steps are printed as they
			// end, under a line that opens it.
			l.flushSkips()
			l.out = append(l.out, l.openLine(r))
			l.calls = append(l.calls, r)
			l.next++
			continue
		}
		if !isFinal(r.status()) && !all {
			// The steps skipped before it are printed before it starts.
			l.flushSkips()
			return
		}
		if r.pathSkipped() {
			l.skipRun = append(l.skipRun, l.rows[l.next:end]...)
			l.next = end
			continue
		}
		l.flushSkips()
		var reached []string
		var skipped []*liveRow // the group's children not on this path
		for _, x := range l.rows[l.next:end] {
			if !x.seen && (r.isGroup || r.call) {
				if r.status() == string(engine.StepSkipped) {
					x.shown = string(engine.StepSkipped)
				} else {
					x.shown = rowNotStarted
				}
			}
			if x != r && x.pathSkipped() {
				skipped = append(skipped, x)
				continue
			}
			l.out = append(l.out, l.rowLines(x, true)...)
			if x.reached != "" {
				reached = append(reached, x.reached)
			}
		}
		if len(skipped) > 0 {
			l.out = append(l.out, l.skipLine(skipped, r.depth+1))
		}
		l.out = append(l.out, reached...)
		l.next = end
	}
	if l.rbNext < len(l.rollbacks) {
		l.flushSkips()
	}
	for l.rbNext < len(l.rollbacks) {
		r := l.rollbacks[l.rbNext]
		if !isFinal(r.status()) && !all {
			return
		}
		l.out = append(l.out, l.rowLines(r, true)...)
		l.rbNext++
	}
}

// flushSkips prints the steps skipped since the last step printed, if
// they were not on this path, as one line.
func (l *Live) flushSkips() {
	if len(l.skipRun) == 0 {
		return
	}
	l.out = append(l.out, l.skipLine(l.skipRun, l.skipRun[0].depth))
	l.skipRun = nil
}

// skipLine is one line for steps skipped because another path was chosen:
// "- 2 Cloudflare and 1 CloudFront steps not on this path", then their ids.
// A skipped group or call counts as its steps.
func (l *Live) skipLine(rows []*liveRow, depth int) string {
	var kinds []string
	count := map[string]int{}
	var ids []string
	n := 0
	for _, x := range rows {
		if (x.isGroup || x.call) && len(x.children) > 0 {
			continue
		}
		k := stepKind(x.actionName())
		if count[k] == 0 {
			kinds = append(kinds, k)
		}
		count[k]++
		ids = append(ids, x.label)
		n++
	}
	parts := make([]string, len(kinds))
	for i, k := range kinds {
		parts[i] = fmt.Sprintf("%d %s", count[k], k)
	}
	what := parts[0]
	if len(parts) > 1 {
		what = strings.Join(parts[:len(parts)-1], ", ") + " and " + parts[len(parts)-1]
	}
	noun := "steps"
	if n == 1 {
		noun = "step"
	}
	line := strings.Repeat("  ", depth) + l.p.paint(sgrDim, "-") + " " + what + " " + noun + " not on this path"
	list := " · " + strings.Join(ids, ", ")
	if room := l.width - visibleLen(line); l.width > 0 && room < len([]rune(list)) {
		if room < 12 {
			return line
		}
		list = cutEnd(list, room)
	}
	return line + l.p.paint(sgrDim, list)
}

// callEnded reports whether the innermost call being printed has ended.
func (l *Live) callEnded() bool {
	return len(l.calls) > 0 && isFinal(l.calls[len(l.calls)-1].status())
}

// openLine is the line printed when a call starts, above its steps.
func (l *Live) openLine(r *liveRow) string {
	what := r.name
	if what == "" {
		what = "calls " + r.x().Uses
	}
	return strings.Repeat("  ", r.depth) + l.p.paint(sgrCyan, "▸") + " " + r.label + "  " + l.p.paint(sgrDim, what)
}

// seenFrom reports whether any row from index i on has been seen.
func (l *Live) seenFrom(i int) bool {
	for _, r := range l.rows[i:] {
		if r.seen {
			return true
		}
	}
	return len(l.rollbacks) > 0
}

// liveBlock is one row of the live region with its sub-line.
type liveBlock struct {
	lines []string
	// prio: 0 active (running, waiting) or a group holding one, 1 finished,
	// 2 not started yet. Blocks are dropped from the highest when the
	// region would not fit the terminal.
	prio int
	done bool
}

func (l *Live) liveBlocks() []liveBlock {
	var blocks []liveBlock
	// A group's children not on this path: one line after its last row.
	var skipGroups []*liveRow
	skips := map[*liveRow][]*liveRow{}
	for i := l.next; i < len(l.rows); i++ {
		r := l.rows[i]
		if i > l.next {
			for len(skipGroups) > 0 {
				g := skipGroups[len(skipGroups)-1]
				if isDescendant(r, g) {
					break
				}
				blocks = append(blocks, liveBlock{lines: []string{l.skipLine(skips[g], g.depth+1)}, prio: 1, done: true})
				skipGroups = skipGroups[:len(skipGroups)-1]
			}
		}
		if g := r.group; g != nil && r.seen && r.pathSkipped() {
			if _, ok := skips[g]; !ok {
				skipGroups = append(skipGroups, g)
			}
			skips[g] = append(skips[g], r)
			continue
		}
		if !r.seen {
			if r.group == nil || !r.group.seen || isFinal(r.group.status()) || r.group.call {
				continue
			}
			blocks = append(blocks, liveBlock{lines: l.rowLines(r, false), prio: 2})
			continue
		}
		b := liveBlock{lines: l.rowLines(r, false), prio: 1, done: isFinal(r.status())}
		if !b.done {
			b.prio = 0
		}
		blocks = append(blocks, b)
	}
	for i := len(skipGroups) - 1; i >= 0; i-- {
		g := skipGroups[i]
		blocks = append(blocks, liveBlock{lines: []string{l.skipLine(skips[g], g.depth+1)}, prio: 1, done: true})
	}
	for _, r := range l.rollbacks[l.rbNext:] {
		b := liveBlock{lines: l.rowLines(r, false), prio: 1, done: isFinal(r.status())}
		if !b.done {
			b.prio = 0
		}
		blocks = append(blocks, b)
	}
	return blocks
}

// liveRegion is the live region's lines, at most maxLines: when the steps
// do not fit, finished and not-started rows give way to running ones, then
// running rows lose their sub-lines, and one line counts what was left out.
func (l *Live) liveRegion(maxLines int) []string {
	blocks := l.liveBlocks()
	total := 0
	for _, b := range blocks {
		total += len(b.lines)
	}
	if maxLines <= 0 || total <= maxLines {
		var lines []string
		for _, b := range blocks {
			lines = append(lines, b.lines...)
		}
		return lines
	}
	budget := maxLines - 1 // the "not shown" line
	keep := make([]bool, len(blocks))
	for i := range keep {
		keep[i] = true
	}
	for prio := 2; prio >= 1 && total > budget; prio-- {
		for i := len(blocks) - 1; i >= 0 && total > budget; i-- {
			if keep[i] && blocks[i].prio == prio {
				keep[i] = false
				total -= len(blocks[i].lines)
			}
		}
	}
	for i := len(blocks) - 1; i >= 0 && total > budget; i-- {
		if keep[i] && len(blocks[i].lines) > 1 {
			total -= len(blocks[i].lines) - 1
			blocks[i].lines = blocks[i].lines[:1]
		}
	}
	for i := len(blocks) - 1; i >= 0 && total > budget; i-- {
		if keep[i] {
			keep[i] = false
			total -= len(blocks[i].lines)
		}
	}
	var lines []string
	hidden := map[int]int{}
	n := 0
	for i, b := range blocks {
		if keep[i] {
			lines = append(lines, b.lines...)
			continue
		}
		hidden[b.prio]++
		n++
	}
	more := "… more not shown (terminal too small)"
	if n > 0 {
		var parts []string
		for prio, what := range []string{"running", "finished", "not started"} {
			if hidden[prio] > 0 {
				parts = append(parts, fmt.Sprintf("%d %s", hidden[prio], what))
			}
		}
		more = fmt.Sprintf("… %d more not shown: %s", n, strings.Join(parts, ", "))
	}
	return append(lines, l.p.paint(sgrDim, more))
}

// draw prints what was committed since the last draw, then redraws the
// live region in place: cursor up to its first line, each line rewritten
// and cleared to its end, then the rest of the screen cleared.
func (l *Live) draw() {
	if l.suspended {
		return
	}
	width, height := l.size()
	if width <= 0 {
		width = 80
	}
	maxLines := 0
	if height > 0 {
		maxLines = max(height-2, 3)
	}
	// One column short of the width: writing the last column leaves some
	// terminals with a pending wrap.
	l.width = width - 1
	var region []string
	if !l.closed {
		region = l.liveRegion(maxLines)
	}
	if len(l.out) == 0 && len(region) == 0 && l.liveLines == 0 {
		return
	}
	var b strings.Builder
	b.WriteString("\r" + cursorUp(l.liveLines))
	for _, line := range l.out {
		b.WriteString(line + clearLine + "\n")
	}
	l.out = l.out[:0]
	for _, line := range region {
		// One column short of the width: writing the last column leaves
		// some terminals with a pending wrap.
		b.WriteString(fit(line, width-1) + clearLine + "\n")
	}
	b.WriteString(clearBelow)
	l.liveLines = len(region)
	_, _ = io.WriteString(l.w, b.String())
}

// erase removes the live region from the screen.
func (l *Live) erase() {
	if l.liveLines == 0 {
		return
	}
	_, _ = io.WriteString(l.w, "\r"+cursorUp(l.liveLines)+clearBelow)
	l.liveLines = 0
}

var spinner = []rune("⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏")

func (l *Live) symbol(r *liveRow, final bool) string {
	switch r.status() {
	case string(engine.StepSucceeded):
		return l.p.paint(sgrGreen, "✓")
	case string(engine.StepFailed):
		if r.continued() {
			return l.p.paint(sgrYellow, "✗")
		}
		return l.p.paint(sgrRed, "✗")
	case string(engine.StepSkipped):
		return l.p.paint(sgrDim, "-")
	case string(engine.StepWaiting):
		return l.p.paint(sgrYellow, "?")
	case string(engine.StepInterrupted):
		return l.p.paint(sgrYellow, "!")
	case string(engine.StepRunning):
		if final {
			// Printed for good while unfinished (the run paused or
			// stopped around it): no spinner frozen mid-turn.
			return l.p.paint(sgrYellow, "…")
		}
		i := int(l.now().UnixMilli()/100) % len(spinner)
		return l.p.paint(sgrCyan, string(spinner[i]))
	}
	return l.p.paint(sgrDim, "·")
}

// elapsed is how long the row ran, or has been running.
func (l *Live) elapsed(r *liveRow) string {
	started, finished, dur := r.times()
	status := r.status()
	switch {
	case status == string(engine.StepSkipped) || status == rowNotStarted || !r.seen || started.IsZero():
		return ""
	case dur > 0:
		return clock(dur)
	case !finished.IsZero():
		return clock(finished.Sub(started))
	case isFinal(status):
		return ""
	}
	return clock(l.now().Sub(started))
}

// clock formats an elapsed time at a fixed resolution, so the column does
// not jitter: 0.4s, 12.3s, 4m05s, 1h02m.
func clock(d time.Duration) string {
	if d < 0 {
		d = 0
	}
	switch {
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	}
	return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
}

// rowLines renders a row: its line and, when there are some, sub-lines.
// final: the row is printed for good (no spinner, full error text, no
// progress). A line of the live region that would not fit l.width is
// shortened in the middle, never where a change's new value is.
func (l *Live) rowLines(r *liveRow, final bool) []string {
	indent := strings.Repeat("  ", r.depth)
	label := indent + r.label
	pad := max(l.labelW-len([]rune(label)), 0)
	prefix := indent + l.symbol(r, final) + " " + r.label + strings.Repeat(" ", pad) + " " + fmt.Sprintf("%6s", l.elapsed(r)) + "  "
	what := l.what(r)
	detail := l.detail(r, what)
	if over := visibleLen(prefix+detail) - l.width; l.width > 0 && over > 0 {
		if n := len([]rune(what)) - over; n >= 8 {
			detail = l.detail(r, cutMiddle(what, n))
		}
	}
	lines := []string{strings.TrimRight(prefix+detail, " ")}
	sub := indent + "    "
	avail := 0
	if l.width > 0 {
		avail = max(l.width-len([]rune(sub))-2, 8)
	}
	subLine := func(mark, text string) string { return sub + l.p.paint(sgrDim, mark+text) }
	switch errText := r.errText(); {
	case errText != "":
		style := sgrRed
		if r.continued() {
			style = sgrYellow
		}
		lines = append(lines, sub+l.p.paint(style, "✗ "+errText))
	case final && r.retries > 0 && r.status() == string(engine.StepSucceeded):
		lines = append(lines, sub+l.p.paint(sgrDim, fmt.Sprintf("↻ %s before it succeeded: %s", plural(r.retries, "retry", "retries"), r.lastRetry)))
	case !final && !isFinal(r.status()):
		switch {
		case r.note == "":
		case r.noteDelay:
			note := r.note + fmtDur(max(r.noteUntil.Sub(l.now()), 0).Round(100*time.Millisecond)) + r.noteAfter
			lines = append(lines, subLine("↻ ", cutEnd(note, avail)))
		case r.status() == string(engine.StepWaiting):
			lines = append(lines, subLine("? ", r.note))
		default:
			head, target, tail := noteText(r.note, r.noteFields)
			for i, text := range shorten(head, target, tail, avail) {
				lines = append(lines, subLine(map[bool]string{true: "↳ ", false: "  "}[i == 0], text))
			}
		}
		for _, sv := range r.services {
			fields := make(map[string]any, len(sv.fields))
			for k, v := range sv.fields {
				if k != "service" {
					fields[k] = v
				}
			}
			text := sv.text
			if !strings.Contains(text, sv.service) {
				text = "service " + sv.service + ": " + text
			}
			head, target, tail := noteText(text, fields)
			for i, text := range shorten(head, target, tail, avail) {
				lines = append(lines, subLine(map[bool]string{true: "↳ ", false: "  "}[i == 0], text))
			}
		}
		if w := l.waiting(r); w != "" {
			lines = append(lines, subLine("↳ ", cutEnd(w, avail)))
		}
	}
	return lines
}

func plural(n int, one, many string) string {
	if n == 1 {
		return "1 " + one
	}
	return fmt.Sprintf("%d %s", n, many)
}

// what is what a row's line says the step is: its name, else its action.
func (l *Live) what(r *liveRow) string {
	what := r.name
	if what == "" {
		what = r.x().Uses
	}
	if r.isGroup {
		what = "parallel"
		if r.name != "" {
			what = r.name + " (parallel)"
		}
	}
	return what
}

// detail is the text after a row's elapsed time: what the step is, and
// what is special about its state.
func (l *Live) detail(r *liveRow, what string) string {
	dim := func(s string) string { return l.p.paint(sgrDim, s) }
	status := r.status()
	if r.rollback {
		uses := r.x().Uses
		switch status {
		case string(engine.StepSucceeded):
			return "↺ rolled back" + dim(" · "+uses)
		case string(engine.StepFailed):
			return l.p.paint(sgrRed, "↺ ROLLBACK FAILED") + dim(" · "+uses)
		case string(engine.StepSkipped):
			return "↺ rollback skipped: " + clean(r.v.Rollback.Message)
		case string(engine.StepInterrupted):
			return "↺ rollback interrupted" + dim(" · "+uses)
		case string(engine.StepWaiting):
			return "↺ rollback waiting for approval" + dim(" · "+uses)
		}
		return "↺ rolling back" + dim(" · "+uses) + l.attempts(r, false)
	}
	switch status {
	case string(engine.StepSkipped):
		reason := clean(r.v.SkipReason)
		if reason == "" {
			reason = "skipped"
		} else {
			reason = "skipped: " + reason
		}
		return dim(what + " · " + reason)
	case rowNotStarted:
		return dim(what + " · not started")
	case string(engine.StepPending):
		return dim(what)
	case string(engine.StepWaiting):
		return what + " · " + l.p.paint(sgrYellow, "waiting for approval")
	case string(engine.StepInterrupted):
		s := "interrupted"
		if r.v.InFlight {
			s = "interrupted mid-action"
		}
		return what + " · " + l.p.paint(sgrYellow, s)
	case string(engine.StepFailed):
		s := "failed"
		if r.continued() {
			s = "failed, run continued"
		}
		style := sgrRed
		if r.continued() {
			style = sgrYellow
		}
		return what + " · " + l.p.paint(style, s) + l.attempts(r, true)
	case string(engine.StepSucceeded):
		if r.approval != "" {
			return what + dim(" · "+r.approval)
		}
		return what + l.attempts(r, true)
	}
	if r.isGroup {
		return what + dim(" · "+l.groupCounts(r))
	}
	if r.approval != "" {
		return what + dim(" · "+r.approval)
	}
	return what + l.attempts(r, false)
}

// attempts says which attempt this is when there is more than one.
func (l *Live) attempts(r *liveRow, final bool) string {
	n := r.x().Attempt
	if n <= 1 {
		return ""
	}
	if final {
		return l.p.paint(sgrDim, fmt.Sprintf(" · %d attempts", n))
	}
	if r.maxAttempts > 1 {
		return l.p.paint(sgrYellow, fmt.Sprintf(" · attempt %d/%d", n, r.maxAttempts))
	}
	return l.p.paint(sgrYellow, fmt.Sprintf(" · attempt %d", n))
}

func (l *Live) groupCounts(g *liveRow) string {
	var running, waiting, done, pending int
	for _, c := range g.children {
		switch {
		case !c.seen:
			pending++
		case c.pathSkipped():
			// Shown as not on this path, under the group.
		case isFinal(c.status()):
			done++
		case c.status() == string(engine.StepWaiting):
			waiting++
		default:
			running++
		}
	}
	parts := []string{fmt.Sprintf("%d running", running)}
	if waiting > 0 {
		parts = append(parts, fmt.Sprintf("%d waiting", waiting))
	}
	parts = append(parts, fmt.Sprintf("%d done", done))
	if pending > 0 {
		parts = append(parts, fmt.Sprintf("%d not started", pending))
	}
	return strings.Join(parts, ", ")
}

func (l *Live) logLine(e engine.Event) string {
	style := ""
	switch e.Level {
	case "warn":
		style = sgrYellow
	case "error":
		style = sgrRed
	}
	who := ""
	if e.Step != "" {
		who = "[" + e.Step + "] "
	}
	return "  " + l.p.paint(style, clean(e.Level)+":") + " " + who + clean(e.Message)
}

// LogWriter returns the writer log output (the host's and the plugins'
// log lines, on stderr) should use while r renders: when r is the live
// view and w is a terminal (the same one, in practice), each complete line
// is printed above the live region instead of being drawn over by its next
// redraw. Otherwise it returns w.
func LogWriter(r Renderer, w io.Writer) io.Writer {
	l, ok := r.(*Live)
	if !ok {
		return w
	}
	f, ok := w.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return w
	}
	return &liveLogWriter{l: l, w: w}
}

// liveLogWriter writes whole lines to w between an erase and a redraw of
// the live region.
type liveLogWriter struct {
	l   *Live
	w   io.Writer
	buf []byte
}

// maxPartialLine bounds a line held back while waiting for its end.
const maxPartialLine = 64 << 10

func (lw *liveLogWriter) Write(p []byte) (int, error) {
	lw.l.mu.Lock()
	defer lw.l.mu.Unlock()
	lw.buf = append(lw.buf, p...)
	end := bytes.LastIndexByte(lw.buf, '\n') + 1
	if end == 0 {
		if len(lw.buf) < maxPartialLine {
			return len(p), nil
		}
		end = len(lw.buf)
	}
	if lw.l.closed || lw.l.suspended {
		_, err := lw.w.Write(lw.buf[:end])
		lw.buf = append(lw.buf[:0], lw.buf[end:]...)
		return len(p), err
	}
	// What was committed before this line is printed before it.
	lw.l.draw()
	lw.l.erase()
	_, err := lw.w.Write(lw.buf[:end])
	lw.buf = append(lw.buf[:0], lw.buf[end:]...)
	lw.l.draw()
	return len(p), err
}
