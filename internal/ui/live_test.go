package ui

import (
	"bytes"
	"fmt"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/ui/vt"
	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
)

var t0 = time.Date(2025, 6, 11, 10, 15, 0, 0, time.UTC)

// liveHarness drives a Live renderer with a fake clock and no ticker, and
// feeds everything it writes to an emulated terminal.
type liveHarness struct {
	t      *testing.T
	l      *Live
	screen *vt.Screen
	raw    bytes.Buffer
	clock  time.Time
	seq    int64
}

func newHarness(t *testing.T, rb *runbook.Runbook, width, height int, color bool) *liveHarness {
	h := &liveHarness{t: t, screen: vt.New(width, height), clock: t0}
	w := writerFunc(func(p []byte) (int, error) {
		h.raw.Write(p)
		return h.screen.Write(p)
	})
	h.l = newLive(w, rb, color, func() (int, int) { return width, height }, func() time.Time { return h.clock })
	return h
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }

// at sends an event s seconds after t0 and draws, as a tick would.
func (h *liveHarness) at(s float64, e engine.Event) {
	h.t.Helper()
	h.clock = t0.Add(time.Duration(s * float64(time.Second)))
	h.seq++
	e.Seq, e.Time, e.RunID = h.seq, h.clock, "r1"
	h.l.Event(e)
	h.tick(s)
}

// tick advances the clock to s seconds and draws.
func (h *liveHarness) tick(s float64) {
	h.clock = t0.Add(time.Duration(s * float64(time.Second)))
	h.l.mu.Lock()
	h.l.draw()
	h.l.mu.Unlock()
}

func (h *liveHarness) screenText() string { return strings.Join(h.screen.Lines(), "\n") }

func (h *liveHarness) checkClean() {
	h.t.Helper()
	if len(h.screen.Unknown) > 0 {
		h.t.Errorf("unknown control sequences: %q", h.screen.Unknown)
	}
}

func ev(typ, step string, mods ...func(*engine.Event)) engine.Event {
	e := engine.Event{Type: typ, Step: step}
	for _, m := range mods {
		m(&e)
	}
	return e
}

func uses(u string) func(*engine.Event)  { return func(e *engine.Event) { e.Uses = u } }
func group(g string) func(*engine.Event) { return func(e *engine.Event) { e.Group = g } }
func attempt(n int) func(*engine.Event)  { return func(e *engine.Event) { e.Attempt = n } }
func msg(m string) func(*engine.Event)   { return func(e *engine.Event) { e.Message = m } }
func rollback() func(*engine.Event)      { return func(e *engine.Event) { e.Rollback = true } }
func dur(s float64) func(*engine.Event) {
	return func(e *engine.Event) { e.Duration = journal.Duration(s * float64(time.Second)) }
}
func delay(s float64) func(*engine.Event) {
	return func(e *engine.Event) { e.NextDelay = journal.Duration(s * float64(time.Second)) }
}
func fields(kv ...any) func(*engine.Event) {
	return func(e *engine.Event) {
		e.Fields = map[string]any{}
		for i := 0; i+1 < len(kv); i += 2 {
			e.Fields[kv[i].(string)] = kv[i+1]
		}
	}
}
func failure(code, m string, retryable bool) func(*engine.Event) {
	return func(e *engine.Event) {
		e.Error = &journal.Error{Message: m, Code: code, Retryable: retryable, Class: journal.ClassAction}
	}
}

func testRunbook() *runbook.Runbook {
	return &runbook.Runbook{Name: "demo", Steps: []*runbook.Step{
		{ID: "first", Name: "First step", Uses: "test.echo", Milestone: "first done", Retry: runbook.Retry{Attempts: 1}},
		{ID: "flaky", Uses: "test.fail", Retry: runbook.Retry{Attempts: 3}},
		{ID: "traffic", Parallel: []*runbook.Step{
			{ID: "dns_server", Uses: "dns.route53_record", Retry: runbook.Retry{Attempts: 1}},
			{ID: "dns_iot", Uses: "dns.route53_record", Retry: runbook.Retry{Attempts: 1}},
		}},
		{ID: "confirm", Uses: "core.approve", Retry: runbook.Retry{Attempts: 1}},
		{ID: "last", Uses: "test.echo", Retry: runbook.Retry{Attempts: 1}},
	}}
}

func TestLiveRun(t *testing.T) {
	h := newHarness(t, testRunbook(), 80, 24, false)
	h.at(0, engine.Event{Type: journal.RunStarted, Run: &journal.RunInfo{Runbook: "demo"}})
	h.at(0, ev(journal.StepStarted, "first", uses("test.echo")))
	h.at(0, ev(journal.AttemptStarted, "first", uses("test.echo"), attempt(1)))
	h.at(0.2, ev(journal.Progress, "first", msg("echoing"), fields("keys", 1)))
	if got := h.screenText(); !strings.Contains(got, "    ↳ echoing (keys=1)") || !regexp.MustCompile(`(?m)^[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] first +0\.2s  First step$`).MatchString(got) {
		t.Fatalf("running step with its progress sub-line:\n%s", got)
	}
	h.at(0.5, ev(journal.StepSucceeded, "first", dur(0.5), attempt(1)))
	h.at(0.5, ev(journal.StepStarted, "flaky", uses("test.fail")))
	h.at(0.5, ev(journal.AttemptStarted, "flaky", attempt(1)))
	h.at(0.6, ev(journal.AttemptFailed, "flaky", attempt(1), failure("Throttling", "Rate exceeded", true), delay(2)))
	h.tick(1.1)
	if got := h.screenText(); !strings.Contains(got, "↻ attempt 1 failed, retrying in 1.5s: Throttling: Rate exceeded") {
		t.Fatalf("retry countdown:\n%s", got)
	}
	h.at(2.6, ev(journal.AttemptStarted, "flaky", attempt(2)))
	if got := h.screenText(); !strings.Contains(got, "test.fail · attempt 2/3") || strings.Contains(got, "retrying") {
		t.Fatalf("second attempt:\n%s", got)
	}
	h.at(3, ev(journal.StepSucceeded, "flaky", dur(2.5), attempt(2)))
	h.at(3, ev(journal.StepStarted, "traffic"))
	h.at(3, ev(journal.StepStarted, "dns_iot", group("traffic"), uses("dns.route53_record")))
	h.at(3.1, ev(journal.Progress, "dns_iot", group("traffic"), msg("waiting for INSYNC"), fields("change", "C123")))
	h.at(3.2, ev(journal.StepStarted, "dns_server", group("traffic"), uses("dns.route53_record")))
	h.at(4, ev(journal.StepSucceeded, "dns_iot", group("traffic"), dur(1)))
	screen := h.screenText()
	for _, want := range []string{
		"✓ first          0.5s  First step",
		"◆ first done after 0.5s",
		"✓ flaky          2.5s  test.fail · 2 attempts",
		"    ↻ 1 retry before it succeeded: Throttling: Rate exceeded",
		"  ✓ dns_iot      1.0s  dns.route53_record",
	} {
		if !strings.Contains(screen, want) {
			t.Errorf("screen lacks %q:\n%s", want, screen)
		}
	}
	if !regexp.MustCompile(`(?m)^. traffic +1\.0s  parallel · 1 running, 1 done$`).MatchString(screen) {
		t.Errorf("running group line:\n%s", screen)
	}
	if !regexp.MustCompile(`(?m)^  . dns_server +0\.8s  dns\.route53_record$`).MatchString(screen) {
		t.Errorf("running child indented under its group:\n%s", screen)
	}
	h.at(5, ev(journal.StepSucceeded, "dns_server", group("traffic"), dur(1.8)))
	h.at(5, ev(journal.StepSucceeded, "traffic", dur(2)))
	h.at(5, ev(journal.StepStarted, "confirm", uses("core.approve")))
	h.at(5, ev(journal.ApprovalRequested, "confirm", attempt(1), msg("Writer is in eu-west-3.\nSwitch DNS?")))
	if got := h.screenText(); !strings.Contains(got, "? confirm        0.0s  core.approve · waiting for approval\n    ? Writer is in eu-west-3. Switch DNS?") {
		t.Fatalf("waiting approval:\n%s", got)
	}

	// The prompt: the live region goes away, the cursor is at the start of
	// a fresh line, nothing is drawn until resume.
	resume := h.l.Suspend()
	row, col := h.screen.Cursor()
	if col != 0 || h.screen.Lines()[row] != "" {
		t.Fatalf("cursor after Suspend at %d,%d on %q", row, col, h.screen.Lines()[row])
	}
	if strings.Contains(h.screenText(), "confirm") {
		t.Fatalf("live region left on screen during the prompt:\n%s", h.screenText())
	}
	fmt.Fprint(writerFunc(h.screen.Write), "Approve? yes\n")
	h.at(9, ev(journal.ApprovalGranted, "confirm", msg(""), func(e *engine.Event) { e.By, e.Via = "alice", "interactive" }))
	if strings.Contains(h.screenText(), "approved by") {
		t.Fatalf("drew while suspended:\n%s", h.screenText())
	}
	resume()
	h.at(9, ev(journal.StepSucceeded, "confirm", dur(4)))
	h.at(9, ev(journal.StepStarted, "last", uses("test.echo")))
	h.at(9.1, ev(journal.StepSucceeded, "last", dur(0.1)))
	h.at(9.1, engine.Event{Type: journal.RunFinished, Status: "succeeded"})
	h.l.Close()
	h.checkClean()

	want := `Running demo  (run r1)
✓ first          0.5s  First step
◆ first done after 0.5s
✓ flaky          2.5s  test.fail · 2 attempts
    ↻ 1 retry before it succeeded: Throttling: Rate exceeded
✓ traffic        2.0s  parallel
  ✓ dns_server   1.8s  dns.route53_record
  ✓ dns_iot      1.0s  dns.route53_record
Approve? yes
✓ confirm        4.0s  core.approve · approved by alice (interactive)
✓ last           0.1s  test.echo`
	if got := h.screen.String(); got != want {
		t.Errorf("final screen:\n%s\nwant:\n%s", got, want)
	}
	if h.screen.SGRs != 0 {
		t.Errorf("%d colour sequences without colour", h.screen.SGRs)
	}
}

func TestLiveColour(t *testing.T) {
	h := newHarness(t, testRunbook(), 80, 24, true)
	h.at(0, ev(journal.StepStarted, "first"))
	h.at(1, ev(journal.StepFailed, "first", dur(1), failure("Boom", "it broke", false)))
	h.l.Close()
	h.checkClean()
	if h.screen.SGRs == 0 {
		t.Fatal("no colour with colour on")
	}
	if fg := h.screen.FG("✗ first"); fg != 31 {
		t.Errorf("failed step symbol colour %d, want red (31)", fg)
	}
	if got := h.screen.String(); !strings.Contains(got, "✗ first          1.0s  First step · failed\n    ✗ Boom: it broke") {
		t.Errorf("failed step:\n%s", got)
	}
}

func TestLiveSmallTerminal(t *testing.T) {
	var children []*runbook.Step
	for i := range 12 {
		children = append(children, &runbook.Step{ID: fmt.Sprintf("c%02d", i), Uses: "test.sleep"})
	}
	rb := &runbook.Runbook{Steps: []*runbook.Step{
		{ID: "before", Uses: "test.echo"},
		{ID: "fan", Parallel: children, MaxParallel: 4},
		{ID: "after", Uses: "test.echo"},
	}}
	const height = 8
	h := newHarness(t, rb, 60, height, false)
	h.at(0, ev(journal.StepStarted, "before"))
	h.at(0.1, ev(journal.StepSucceeded, "before", dur(0.1)))
	h.at(0.1, ev(journal.StepStarted, "fan"))
	// Four at a time, each with a progress line: far more than 8 rows.
	s := 0.1
	running := []int{}
	next := 0
	for done := 0; done < 12; {
		for len(running) < 4 && next < 12 {
			id := fmt.Sprintf("c%02d", next)
			h.at(s, ev(journal.StepStarted, id, group("fan")))
			h.at(s, ev(journal.Progress, id, group("fan"), msg("sleeping")))
			running = append(running, next)
			next++
		}
		s += 0.5
		lines := h.screen.Lines()
		for _, id := range running {
			name := fmt.Sprintf("c%02d", id)
			if !strings.Contains(strings.Join(lines, "\n"), name) {
				t.Fatalf("running %s not on a %d-line screen:\n%s", name, height, strings.Join(lines, "\n"))
			}
		}
		if h.l.liveLines > height-2 {
			t.Fatalf("live region of %d lines on a %d-line terminal", h.l.liveLines, height)
		}
		first := running[0]
		running = running[1:]
		h.at(s, ev(journal.StepSucceeded, fmt.Sprintf("c%02d", first), group("fan"), dur(0.5)))
		done++
	}
	h.at(s, ev(journal.StepSucceeded, "fan", dur(s)))
	h.at(s, ev(journal.StepStarted, "after"))
	h.at(s+0.1, ev(journal.StepSucceeded, "after", dur(0.1)))
	h.l.Close()
	h.checkClean()
	all := h.screen.All()
	// Every step exactly once, in document order, children under the group:
	// nothing of the redrawn region was left behind in the scrollback.
	var ids []string
	for _, line := range all {
		f := strings.Fields(line)
		if len(f) >= 2 && f[0] == "✓" {
			ids = append(ids, f[1])
		} else {
			t.Errorf("unexpected line in the transcript: %q", line)
		}
	}
	want := []string{"before", "fan"}
	for i := range 12 {
		want = append(want, fmt.Sprintf("c%02d", i))
	}
	want = append(want, "after")
	if strings.Join(ids, " ") != strings.Join(want, " ") {
		t.Errorf("transcript steps %v\nwant %v\n%s", ids, want, strings.Join(all, "\n"))
	}
	for _, line := range all {
		if strings.HasPrefix(strings.TrimSpace(line), "✓ c") && !strings.HasPrefix(line, "  ✓ c") {
			t.Errorf("child not indented: %q", line)
		}
	}
}

func TestLiveNarrowTerminalNeverWraps(t *testing.T) {
	rb := &runbook.Runbook{Steps: []*runbook.Step{{ID: "a_step_with_a_long_id", Name: "A very long display name that cannot fit on a narrow terminal", Uses: "test.echo"}}}
	h := newHarness(t, rb, 40, 10, true)
	h.at(0, ev(journal.StepStarted, "a_step_with_a_long_id"))
	h.at(0.1, ev(journal.Progress, "a_step_with_a_long_id", msg(strings.Repeat("progress ", 20))))
	for i := 1; i < 30; i++ {
		h.tick(0.1 + float64(i)/10)
	}
	lines := h.screen.Lines()
	if got := strings.Join(lines, "\n"); strings.Count(got, "a_step_with_a_long_id") != 1 {
		t.Fatalf("redraws left copies behind:\n%s", got)
	}
	for _, l := range lines {
		if n := len([]rune(l)); n > 39 {
			t.Errorf("line of %d columns on a 40-column terminal: %q", n, l)
		}
	}
	h.l.Close()
	h.checkClean()
}

func TestLiveRollbackAndFailure(t *testing.T) {
	rb := &runbook.Runbook{Steps: []*runbook.Step{
		{ID: "db", Uses: "aws.aurora_global_switchover", Rollback: &runbook.Rollback{Uses: "aws.aurora_global_switchover"}},
		{ID: "svc", Uses: "aws.ecs_services", Retry: runbook.Retry{Attempts: 2}},
		{ID: "dns", Uses: "dns.route53_record"},
	}}
	h := newHarness(t, rb, 100, 30, false)
	h.at(0, ev(journal.StepStarted, "db"))
	h.at(60, ev(journal.StepSucceeded, "db", dur(60)))
	h.at(60, ev(journal.StepStarted, "svc"))
	h.at(60, ev(journal.AttemptStarted, "svc", attempt(1)))
	h.at(61, ev(journal.AttemptFailed, "svc", attempt(1), failure("Throttling", "slow down", true), delay(1)))
	h.at(62, ev(journal.AttemptStarted, "svc", attempt(2)))
	h.at(63, ev(journal.AttemptFailed, "svc", attempt(2), failure("Throttling", "slow down", true)))
	h.at(63, ev(journal.StepFailed, "svc", attempt(2), dur(3), failure("Throttling", "slow down", true)))
	h.at(63, ev(journal.RollbackStarted, "db", uses("aws.aurora_global_switchover")))
	h.at(63, ev(journal.AttemptStarted, "db", rollback(), attempt(1)))
	h.at(64, ev(journal.Progress, "db", rollback(), msg("switching back")))
	if got := h.screenText(); !regexp.MustCompile(`(?m)^. db +1\.0s  ↺ rolling back · aws\.aurora_global_switchover\n    ↳ switching back$`).MatchString(got) {
		t.Fatalf("running rollback:\n%s", got)
	}
	h.at(120, ev(journal.RollbackFailed, "db", uses("aws.aurora_global_switchover"), dur(57), failure("", "writer stuck", false)))
	h.l.Close()
	h.checkClean()
	want := `✓ db        1m00s  aws.aurora_global_switchover
✗ svc        3.0s  aws.ecs_services · failed · 2 attempts
    ✗ Throttling: slow down
Rolling back the completed steps, most recent first
✗ db        57.0s  ↺ ROLLBACK FAILED · aws.aurora_global_switchover
    ✗ writer stuck`
	if got := h.screen.String(); got != want {
		t.Errorf("final screen:\n%s\nwant:\n%s", got, want)
	}
}

func TestLivePausedAndResumed(t *testing.T) {
	rb := testRunbook()
	// A resumed run: first and flaky finished before; the engine sends no
	// events for them, and the group's children resume without a
	// step_started for the group.
	h := newHarness(t, rb, 80, 24, false)
	h.at(0, engine.Event{Type: journal.RunResumed})
	h.at(0, ev(journal.StepStarted, "dns_server", group("traffic")))
	h.at(1, ev(journal.StepSucceeded, "dns_server", group("traffic"), dur(1)))
	h.at(1, ev(journal.StepSucceeded, "traffic", dur(1)))
	h.at(1, ev(journal.StepStarted, "confirm"))
	h.at(1, ev(journal.ApprovalRequested, "confirm", msg("ok?")))
	h.at(1, engine.Event{Type: journal.RunPaused})
	h.l.Close()
	h.checkClean()
	want := `Resuming run r1
✓ traffic        1.0s  parallel
  ✓ dns_server   1.0s  dns.route53_record
  · dns_iot            dns.route53_record · not started
? confirm        0.0s  core.approve · waiting for approval`
	if got := h.screen.String(); got != want {
		t.Errorf("final screen:\n%s\nwant:\n%s", got, want)
	}
}

func TestLiveLogsAndUnknownSteps(t *testing.T) {
	h := newHarness(t, nil, 80, 24, false)
	h.at(0, ev(journal.StepStarted, "x", uses("test.echo")))
	h.at(0.1, engine.Event{Type: journal.Log, Level: "warn", Step: "x", Message: "careful"})
	h.at(0.1, engine.Event{Type: journal.Log, Level: "debug", Step: "x", Message: "hidden"})
	h.at(0.2, ev(journal.StepSucceeded, "x", dur(0.2)))
	h.l.Close()
	h.l.Close() // idempotent
	h.checkClean()
	want := `  warn: [x] careful
✓ x          0.2s  test.echo`
	if got := h.screen.String(); got != want {
		t.Errorf("final screen:\n%s\nwant:\n%s", got, want)
	}
}

func TestFit(t *testing.T) {
	p := painter{true}
	s := p.paint(sgrGreen, "✓") + " abcdefghij"
	if got := visibleLen(fit(s, 6)); got != 6 {
		t.Errorf("visible length %d, want 6", got)
	}
	if got := fit(s, 6); !strings.HasSuffix(got, "…") || !strings.Contains(got, sgrReset) {
		t.Errorf("fit kept %q", got)
	}
	if got := fit("short", 10); got != "short" {
		t.Errorf("fit changed %q", got)
	}
}

func TestClock(t *testing.T) {
	for d, want := range map[time.Duration]string{
		400 * time.Millisecond:   "0.4s",
		12345 * time.Millisecond: "12.3s",
		245 * time.Second:        "4m05s",
		3720 * time.Second:       "1h02m",
		-time.Second:             "0.0s",
	} {
		if got := clock(d); got != want {
			t.Errorf("clock(%s) = %q, want %q", d, got, want)
		}
	}
}

// Log lines written to the terminal while the live region is drawn appear
// once, above it, and leave nothing of the region behind.
func TestLiveLogWriter(t *testing.T) {
	h := newHarness(t, testRunbook(), 80, 24, false)
	lw := &liveLogWriter{l: h.l, w: writerFunc(h.screen.Write)}
	h.at(0, ev(journal.StepStarted, "first"))
	h.at(0.1, ev(journal.Progress, "first", msg("working")))
	h.l.Event(engine.Event{Type: journal.Log, Level: "info", Message: "committed before the warning"})
	fmt.Fprint(lw, "2025-06-11T10:15:00.100Z [WARN]  test: ")
	fmt.Fprint(lw, "careful\n2025-06-11T10:15:00.200Z [WARN]  test: twice\n")
	h.tick(0.3)
	h.at(0.5, ev(journal.StepSucceeded, "first", dur(0.5)))
	h.l.Close()
	fmt.Fprint(lw, "after close\n")
	h.checkClean()
	want := `  info: committed before the warning
2025-06-11T10:15:00.100Z [WARN]  test: careful
2025-06-11T10:15:00.200Z [WARN]  test: twice
✓ first          0.5s  First step
◆ first done
after close`
	if got := h.screen.String(); got != want {
		t.Errorf("final screen:\n%s\nwant:\n%s", got, want)
	}
	if LogWriter(NewPlain(&bytes.Buffer{}), os.Stderr) != os.Stderr {
		t.Error("LogWriter wrapped the writer of a plain renderer")
	}
	var buf bytes.Buffer
	if LogWriter(h.l, &buf) != &buf {
		t.Error("LogWriter wrapped a writer that is not a terminal")
	}
}

func TestLiveInterruptedAndPausedGroups(t *testing.T) {
	h := newHarness(t, testRunbook(), 80, 24, false)
	h.at(0, ev(journal.StepStarted, "traffic"))
	h.at(0, ev(journal.StepStarted, "dns_server", group("traffic")))
	h.at(0, ev(journal.StepStarted, "dns_iot", group("traffic")))
	h.at(1, ev(journal.StepSucceeded, "dns_server", group("traffic"), dur(1)))
	h.at(2, ev(journal.StepInterrupted, "dns_iot", group("traffic"), func(e *engine.Event) { e.InFlight = true }))
	h.at(2, engine.Event{Type: journal.RunInterrupted, Message: "interrupted"})
	h.l.Close()
	h.checkClean()
	want := `! traffic        2.0s  parallel · interrupted
  ✓ dns_server   1.0s  dns.route53_record
  ! dns_iot      2.0s  dns.route53_record · interrupted mid-action`
	if got := h.screen.String(); got != want {
		t.Errorf("interrupted:\n%s\nwant:\n%s", got, want)
	}

	rb := &runbook.Runbook{Steps: []*runbook.Step{{ID: "g", Parallel: []*runbook.Step{
		{ID: "ask", Uses: "core.approve"}, {ID: "work", Uses: "test.echo"},
	}}}}
	h = newHarness(t, rb, 80, 24, false)
	h.at(0, ev(journal.StepStarted, "g"))
	h.at(0, ev(journal.StepStarted, "ask", group("g")))
	h.at(0, ev(journal.ApprovalRequested, "ask", group("g"), msg("ok?")))
	h.at(0, ev(journal.StepStarted, "work", group("g")))
	h.at(1, ev(journal.StepSucceeded, "work", group("g"), dur(1)))
	h.at(1, engine.Event{Type: journal.RunPaused})
	h.l.Close()
	h.checkClean()
	want = `? g          1.0s  parallel · waiting for approval
  ? ask      1.0s  core.approve · waiting for approval
  ✓ work     1.0s  test.echo`
	if got := h.screen.String(); got != want {
		t.Errorf("paused:\n%s\nwant:\n%s", got, want)
	}
}

// The real renderer: a ticker goroutine draws while events arrive and a
// prompt suspends it (run with -race).
func TestLiveWithTicker(t *testing.T) {
	var mu sync.Mutex
	var out bytes.Buffer
	w := writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return out.Write(p)
	})
	r := NewLive(w, testRunbook(), true, 80)
	r.Event(engine.Event{Type: journal.StepStarted, Step: "first", Time: time.Now()})
	time.Sleep(250 * time.Millisecond) // a few ticks
	resume := r.Suspend()
	r.Event(engine.Event{Type: journal.Progress, Step: "first", Message: "while suspended", Time: time.Now()})
	resume()
	resume() // idempotent
	r.Event(engine.Event{Type: journal.StepSucceeded, Step: "first", Time: time.Now()})
	r.Close()
	r.Event(engine.Event{Type: journal.StepStarted, Step: "flaky", Time: time.Now()}) // after Close: ignored
	mu.Lock()
	defer mu.Unlock()
	s := vt.New(80, 24)
	s.Write(out.Bytes())
	if got := s.String(); !strings.Contains(got, "✓ first") || strings.Contains(got, "flaky") {
		t.Errorf("screen:\n%s", got)
	}
}

// Text from plugins cannot move the cursor or clear the screen.
func TestLiveCleansPluginText(t *testing.T) {
	h := newHarness(t, testRunbook(), 80, 24, false)
	h.at(0, ev(journal.StepStarted, "first"))
	h.at(0.1, ev(journal.Progress, "first", msg("evil\x1b[2J\x1b[Hline\nbreak 100%s")))
	h.at(0.2, ev(journal.AttemptFailed, "first", attempt(1), delay(1), failure("E", "50% done\x07\r", true)))
	if bytes.Contains(h.raw.Bytes(), []byte("\x1b[2J")) || bytes.Contains(h.raw.Bytes(), []byte{7}) {
		t.Errorf("control sequences from a plugin reached the terminal: %q", h.raw.String())
	}
	if got := h.screenText(); !strings.Contains(got, `↻ attempt 1 failed, retrying in 1.0s: E: 50% done\x07`) {
		t.Errorf("screen:\n%s", got)
	}
	h.l.Close()
	h.checkClean()
}

// A step that calls a runbook opens with a line when it starts; the
// called runbook's steps are printed under it as they end (by their own
// ids, indented), and the call's own line closes them when it ends. Its
// steps' rollbacks are named by their paths.
func TestLiveCall(t *testing.T) {
	callee := &runbook.Runbook{Name: "region-switch", Steps: []*runbook.Step{
		{ID: "db", Uses: "aws.switch", Milestone: "database writable", Retry: runbook.Retry{Attempts: 1}},
		{ID: "dns", Uses: "dns.record", Retry: runbook.Retry{Attempts: 1}},
		{ID: "later", Uses: "test.echo", Retry: runbook.Retry{Attempts: 1}},
	}}
	rb := &runbook.Runbook{Name: "failover", Steps: []*runbook.Step{
		{ID: "check", Uses: "core.assert", Retry: runbook.Retry{Attempts: 1}},
		{ID: "switch", Name: "Fail over", Uses: "./region-switch.yaml", Call: &runbook.Call{Ref: "./region-switch.yaml", Runbook: callee}},
	}}
	h := newHarness(t, rb, 80, 24, false)
	h.at(0, engine.Event{Type: journal.RunStarted, Run: &journal.RunInfo{Runbook: "failover"}})
	h.at(0, ev(journal.StepStarted, "check", uses("core.assert")))
	h.at(0.1, ev(journal.StepSucceeded, "check", dur(0.1)))
	h.at(0.1, ev(journal.StepStarted, "switch", uses("./region-switch.yaml")))
	h.at(0.1, ev(journal.StepStarted, "switch.db", group("switch"), uses("aws.switch")))
	h.at(0.2, ev(journal.AttemptStarted, "switch.db", group("switch"), attempt(1)))
	if got := h.screenText(); !strings.Contains(got, "▸ switch  Fail over") || !regexp.MustCompile(`(?m)^  [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] db +0\.1s  aws\.switch$`).MatchString(got) {
		t.Fatalf("call opened, its running step under it:\n%s", got)
	}
	h.at(1, ev(journal.StepSucceeded, "switch.db", group("switch"), dur(0.9)))
	h.at(1, ev(journal.StepStarted, "switch.dns", group("switch"), uses("dns.record")))
	h.at(1.5, ev(journal.StepFailed, "switch.dns", group("switch"), dur(0.5), failure("Boom", "no", false)))
	h.at(1.5, ev(journal.StepFailed, "switch", dur(1.4), func(e *engine.Event) { e.Error = &journal.Error{Code: "ChildFailed", Message: "dns failed"} }))
	h.at(1.6, ev(journal.RollbackStarted, "switch.db", group("switch"), uses("aws.switch")))
	h.at(2, ev(journal.RollbackSucceeded, "switch.db", group("switch"), uses("aws.switch"), dur(0.4)))
	h.at(2, engine.Event{Type: journal.RunFinished, Status: "failed", RolledBack: true})
	h.l.Close()
	h.checkClean()
	want := `Running failover  (run r1)
✓ check      0.1s  core.assert
▸ switch  Fail over
  ✓ db       0.9s  aws.switch
◆ database writable after 1.0s
  ✗ dns      0.5s  dns.record · failed
      ✗ Boom: no
✗ switch     1.4s  Fail over · failed
Rolling back the completed steps, most recent first
  ✓ switch.db   0.4s  ↺ rolled back · aws.switch`
	if got := strings.TrimRight(h.screenText(), "\n "); got != want {
		t.Errorf("transcript:\n%s\nwant:\n%s", got, want)
	}
}
