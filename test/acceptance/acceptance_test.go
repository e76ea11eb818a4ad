package acceptance_test

import (
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/runbookhq/runbook/sdk/journal"
)

const header = `version: 1
name: acceptance
plugins:
  test: { command: runbook-plugin-test }
  hello: { command: runbook-plugin-hello }
defaults:
  retry: { attempts: 1, delay: 100ms }
`

func want(t *testing.T, what string, got, expected []string) {
	t.Helper()
	if !slices.Equal(got, expected) {
		t.Errorf("%s = %v, want %v", what, got, expected)
	}
}

func TestSuccess(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
steps:
  - id: greet
    uses: hello.greet
    with: { name: ops }
  - id: a
    uses: test.record
    with: { file: "@record", line: "a-${{ steps.greet.outputs.greeting == 'Hello, ops!' }}" }
outputs:
  greeting: ${{ steps.greet.outputs.greeting }}
`)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	want(t, "effects", w.effects(), []string{"a-true"})
	fin := res.of("", journal.RunFinished)
	if len(fin) != 1 || fin[0].Outputs["greeting"] != "Hello, ops!" {
		t.Errorf("run_finished = %+v", fin)
	}
}

func TestIfSkips(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
inputs:
  mode: { type: string, enum: [planned, unplanned], default: planned }
steps:
  - id: planned
    if: inputs.mode == "planned"
    uses: test.record
    with: { file: "@record", line: planned }
  - id: unplanned
    if: inputs.mode == "unplanned"
    uses: test.record
    with: { file: "@record", line: unplanned }
  - id: after
    if: steps.unplanned.status == "skipped"
    uses: test.record
    with: { file: "@record", line: after }
`)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	want(t, "effects", w.effects(), []string{"planned", "after"})
	if len(res.of("unplanned", journal.StepSkipped)) != 1 {
		t.Errorf("no step_skipped for unplanned")
	}
}

func TestRetryThenSuccess(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
steps:
  - id: flaky
    uses: test.fail
    with: { mode: retryable, times: 2 }
    retry: { attempts: 3, delay: 100ms, max_delay: 100ms }
  - id: fatal_once
    uses: test.fail
    with: { mode: fatal, times: 1 }
    retry: { attempts: 3, delay: 100ms }
    continue_on_error: true
`)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if got := len(res.of("flaky", journal.AttemptStarted)); got != 3 {
		t.Errorf("flaky: %d attempts, want 3", got)
	}
	ok := res.of("flaky", journal.StepSucceeded)
	if len(ok) != 1 || ok[0].Outputs["attempt"] != 3.0 {
		t.Errorf("flaky step_succeeded = %+v", ok)
	}
	// A fatal error is not retried, whatever the policy.
	if got := len(res.of("fatal_once", journal.AttemptStarted)); got != 1 {
		t.Errorf("fatal_once: %d attempts, want 1", got)
	}
	if f := res.of("fatal_once", journal.StepFailed); len(f) != 1 || !f[0].Continued {
		t.Errorf("fatal_once step_failed = %+v", f)
	}
}

const rollbackSteps = `
  - id: a
    uses: test.record
    with: { file: "@record", line: a }
    rollback: { uses: test.record, with: { file: "@record", line: undo-a } }
  - id: b
    uses: test.record
    with: { file: "@record", line: b }
    rollback: { uses: test.record, with: { file: "@record", line: undo-b } }
`

func TestFailureRollsBackInReverseOrder(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+"steps:"+rollbackSteps+`
  - id: boom
    uses: test.fail
    with: { mode: fatal, message: the disk is on fire }
  - id: never
    uses: test.record
    with: { file: "@record", line: never }
`)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 1 {
		t.Fatalf("exit %d, want 1: %s", res.code, res.stderr)
	}
	want(t, "effects", w.effects(), []string{"a", "b", "undo-b", "undo-a"})
	f := res.of("boom", journal.StepFailed)
	if len(f) != 1 || f[0].Error == nil || !strings.Contains(f[0].Error.Message, "the disk is on fire") {
		t.Errorf("step_failed = %+v", f)
	}
	// Text mode names the failure in the summary.
	w2 := newWorkspace(t)
	rb2 := w2.write("rb.yaml", header+"steps:"+rollbackSteps+`
  - id: boom
    uses: test.fail
    with: { mode: fatal, message: the disk is on fire }
`)
	res = w2.run(nil, "run", rb2)
	if res.code != 1 || !strings.Contains(res.stdout, "the disk is on fire") || !strings.Contains(res.stdout, "rolled back") {
		t.Errorf("exit %d, summary:\n%s", res.code, res.stdout)
	}
}

func TestFailingRollbackExitCode4(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
steps:
  - id: a
    uses: test.record
    with: { file: "@record", line: a }
    rollback: { uses: test.record, with: { file: "@record", line: undo-a } }
  - id: b
    uses: test.record
    with: { file: "@record", line: b }
    rollback: { uses: test.fail, with: { mode: fatal, message: cannot undo b } }
  - id: boom
    uses: test.fail
    with: { mode: fatal }
`)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 4 {
		t.Fatalf("exit %d, want 4: %s", res.code, res.stderr)
	}
	// The failing rollback did not stop the others.
	want(t, "effects", w.effects(), []string{"a", "b", "undo-a"})
}

func TestParallelGroupWithOneFailingChild(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
steps:
  - id: a
    uses: test.record
    with: { file: "@record", line: a }
    rollback: { uses: test.record, with: { file: "@record", line: undo-a } }
  - id: group
    parallel:
      - id: ok
        uses: test.record
        with: { file: "@record", line: ok }
        rollback: { uses: test.record, with: { file: "@record", line: undo-ok } }
      - id: bad
        uses: test.fail
        with: { mode: fatal }
  - id: never
    uses: test.record
    with: { file: "@record", line: never }
`)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 1 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	got := w.effects()
	if !slices.Contains(got, "ok") || slices.Contains(got, "never") {
		t.Fatalf("effects = %v", got)
	}
	// Completed children are compensated, then the earlier steps.
	tail := got[len(got)-2:]
	want(t, "rollbacks", tail, []string{"undo-ok", "undo-a"})
}

func TestApprovalPausesThenResumes(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
steps:
  - id: a
    uses: test.record
    with: { file: "@record", line: a }
  - id: confirm
    uses: core.approve
    with: { message: "Go on after ${{ steps.a.outputs.lines }} line(s)?" }
  - id: b
    uses: test.record
    with: { file: "@record", line: b }
`)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 3 {
		t.Fatalf("exit %d, want 3 (paused): %s", res.code, res.stderr)
	}
	want(t, "effects after pause", w.effects(), []string{"a"})
	id := res.runID()
	// Resuming without the approval pauses again; with it, the run ends.
	if res := w.run(nil, "resume", id, "-o", "json"); res.code != 3 {
		t.Fatalf("resume without approval: exit %d: %s", res.code, res.stderr)
	}
	res = w.run(nil, "resume", id, "--approve", "confirm", "-o", "json")
	if res.code != 0 {
		t.Fatalf("resume: exit %d: %s", res.code, res.stderr)
	}
	want(t, "effects", w.effects(), []string{"a", "b"})
	g := res.of("confirm", journal.ApprovalGranted)
	if len(g) != 1 || g[0].By == "" {
		t.Errorf("approval_granted = %+v", g)
	}
	// A finished run cannot be resumed.
	if res := w.run(nil, "resume", id); res.code != 2 || !strings.Contains(res.stderr, "cannot be resumed") {
		t.Errorf("resume of a finished run: exit %d: %s", res.code, res.stderr)
	}
}

const crashSteps = "\nsteps:" + stepA + `
  - id: wait
    uses: test.sleep
    with: { duration: 3s }` + stepB

// stepA and stepB record "a" and "b": the first and last steps of most
// runbooks here.
const (
	stepA = `
  - id: a
    uses: test.record
    with: { file: "@record", line: a }`
	stepB = `
  - id: b
    uses: test.record
    with: { file: "@record", line: b }
`
)

func TestKill9MidRunThenResume(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+crashSteps)
	res := w.run(func(e journal.Record, p *os.Process) {
		if e.Type == journal.Progress && e.Step == "wait" {
			_ = p.Signal(syscall.SIGKILL)
		}
	}, "run", rb, "-o", "json")
	if res.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want killed: %s", res.code, res.stderr)
	}
	// The plugins die with the runbook process (parent-death signal).
	w.assertNoProcessLeft()
	want(t, "effects after the crash", w.effects(), []string{"a"})
	id := res.runID()
	// A new run is refused: the dead run's lock is not taken over by
	// another run, and the error says how to continue the dead one.
	if r := w.run(nil, "run", rb); r.code != 1 || !strings.Contains(r.stderr, id) || !strings.Contains(r.stderr, "no longer exists") || !strings.Contains(r.stderr, "resume "+id) {
		t.Fatalf("run with the dead run's lock: exit %d: %s", r.code, r.stderr)
	}
	// Resume takes over the lock of its holder, provably dead (this host,
	// this boot, its pid gone), with a notice; no unlock needed. It says
	// how the run stopped.
	res = w.run(nil, "resume", id, "-o", "json")
	if res.code != 0 {
		t.Fatalf("resume: exit %d: %s", res.code, res.stderr)
	}
	for _, s := range []string{"notice: took over the lock", id, "no longer exists", "stopped without recording why"} {
		if !strings.Contains(res.stderr, s) {
			t.Errorf("resume's notice lacks %q:\n%s", s, res.stderr)
		}
	}
	// a ran once; the interrupted sleep (idempotent) ran again; b once.
	want(t, "effects", w.effects(), []string{"a", "b"})
	if got := len(w.journal(id).Records); got == 0 {
		t.Fatal("empty journal")
	}
}

func TestKill9DuringNonIdempotentStepNeedsAChoice(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
steps:
  - id: slow_record
    uses: test.crash
    with: { mode: exit, after: 30s }
  - id: b
    uses: test.record
    with: { file: "@record", line: b }
`)
	res := w.run(func(e journal.Record, p *os.Process) {
		if e.Type == journal.AttemptStarted && e.Step == "slow_record" {
			_ = p.Signal(syscall.SIGKILL)
		}
	}, "run", rb, "-o", "json")
	if res.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want killed", res.code)
	}
	w.assertNoProcessLeft()
	id := res.runID()
	if res := w.run(nil, "unlock"); res.code != 0 {
		t.Fatalf("unlock: exit %d: %s", res.code, res.stderr)
	}
	res = w.run(nil, "resume", id)
	if res.code != 2 || !strings.Contains(res.stderr, "--retry-step") || !strings.Contains(res.stderr, "--skip-step") || !strings.Contains(res.stderr, "slow_record") {
		t.Fatalf("resume without a choice: exit %d: %s", res.code, res.stderr)
	}
	res = w.run(nil, "resume", id, "--skip-step", "slow_record", "-o", "json")
	if res.code != 0 {
		t.Fatalf("resume --skip-step: exit %d: %s", res.code, res.stderr)
	}
	want(t, "effects", w.effects(), []string{"b"})
}

func TestPluginKilledMidAction(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
steps:
  - id: a
    uses: test.record
    with: { file: "@record", line: a }
    rollback: { uses: test.record, with: { file: "@record", line: undo-a } }
  - id: wait
    uses: test.sleep
    with: { duration: 30s }
`)
	killed := false
	res := w.run(func(e journal.Record, _ *os.Process) {
		if e.Type == journal.Progress && e.Step == "wait" && !killed {
			if pid, ok := e.Fields["pid"].(float64); ok {
				killed = syscall.Kill(int(pid), syscall.SIGKILL) == nil
			}
		}
	}, "run", rb, "-o", "json")
	if !killed {
		t.Fatal("never saw the plugin's pid")
	}
	if res.code != 1 {
		t.Fatalf("exit %d, want 1: %s", res.code, res.stderr)
	}
	f := res.of("wait", journal.StepFailed)
	if len(f) != 1 || f[0].Error == nil || f[0].Error.Code != "PluginExited" || !strings.Contains(f[0].Error.Message, "test") {
		t.Errorf("step_failed = %+v", f)
	}
	// The rollback restarted the plugin and ran.
	want(t, "effects", w.effects(), []string{"a", "undo-a"})
}

func TestInterruptStopsCleanlyThenResumes(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+crashSteps)
	res := w.run(func(e journal.Record, p *os.Process) {
		if e.Type == journal.Progress && e.Step == "wait" {
			_ = p.Signal(syscall.SIGINT)
		}
	}, "run", rb, "-o", "json")
	if res.code != 130 {
		t.Fatalf("exit %d, want 130: %s", res.code, res.stderr)
	}
	if len(res.of("", journal.RunInterrupted)) != 1 {
		t.Errorf("no run_interrupted event")
	}
	w.assertNoProcessLeft()
	res = w.run(nil, "resume", res.runID(), "-o", "json")
	if res.code != 0 {
		t.Fatalf("resume: exit %d: %s", res.code, res.stderr)
	}
	want(t, "effects", w.effects(), []string{"a", "b"})
}

func TestSecondRunIsRefusedWhileTheFirstHoldsTheLock(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+crashSteps)
	var second result
	res := w.run(func(e journal.Record, p *os.Process) {
		if e.Type == journal.Progress && e.Step == "wait" && second.stderr == "" {
			second = w.run(nil, "run", rb)
			_ = p.Signal(syscall.SIGINT)
		}
	}, "run", rb, "-o", "json")
	if res.code != 130 {
		t.Fatalf("first run: exit %d", res.code)
	}
	if second.code == 0 || !strings.Contains(second.stderr, "lock") || !strings.Contains(second.stderr, res.runID()) {
		t.Errorf("second run: exit %d: %s", second.code, second.stderr)
	}
}

func TestValidateReportsEveryMistake(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
inputs:
  mode: { type: strin }
steps:
  - id: A
    uses: test.record
    with: { file: "@record", lnie: a }
  - id: b
    uses: test.nope
  - id: c
    uses: core.log
    timeout: soon
    with: { message: "${{ steps.zz.outputs.x }}" }
`)
	res := w.run(nil, "validate", rb)
	if res.code != 2 {
		t.Fatalf("exit %d, want 2", res.code)
	}
	lines := 0
	for _, l := range strings.Split(res.stderr, "\n") {
		if strings.HasPrefix(l, rb+":") {
			lines++
		}
	}
	if lines < 6 {
		t.Errorf("%d positioned diagnostics, want at least 6:\n%s", lines, res.stderr)
	}
	if len(w.effects()) != 0 {
		t.Error("validate ran an action")
	}
	if _, err := os.Stat(w.dir + "/state"); !os.IsNotExist(err) {
		t.Error("validate wrote state")
	}
}

// A runbook that calls another, killed (kill -9) in the middle of the
// called runbook's steps, resumed, and rolled back across the boundary:
// the called steps that finished do not run again, the cut-off one
// (idempotent) does, and when a step after the call fails, every completed
// step is compensated most recent first, the callee's between the caller's.
func TestNestedRunbookCrashedMidChildResumedAndRolledBack(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	w.write("child.yaml", `version: 1
name: child
inputs:
  tag: { type: string, required: true }
plugins:
  test: { command: runbook-plugin-test }
steps:
  - id: c1
    uses: test.record
    with: { file: "@record", line: "c1-${{ inputs.tag }}" }
    rollback: { uses: test.record, with: { file: "@record", line: "undo-c1-${{ inputs.tag }}" } }
  - id: wait
    uses: test.sleep
    with: { duration: 3s }
  - id: c2
    uses: test.record
    with: { file: "@record", line: c2 }
    rollback: { uses: test.record, with: { file: "@record", line: undo-c2 } }
outputs:
  tag: ${{ inputs.tag }}
`)
	rb := w.write("main.yaml", header+`
steps:
  - id: a
    uses: test.record
    with: { file: "@record", line: a }
    rollback: { uses: test.record, with: { file: "@record", line: undo-a } }
  - id: child
    uses: ./child.yaml
    with: { tag: x }
  - id: after
    uses: test.fail
    with: { mode: fatal, message: "after ${{ steps.child.outputs.tag }}" }
`)
	res := w.run(func(e journal.Record, p *os.Process) {
		if e.Type == journal.Progress && e.Step == "child.wait" {
			_ = p.Signal(syscall.SIGKILL)
		}
	}, "run", rb, "-o", "json")
	if res.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want killed: %s", res.code, res.stderr)
	}
	w.assertNoProcessLeft()
	want(t, "effects after the crash", w.effects(), []string{"a", "c1-x"})
	if got := res.of("child.c1", journal.StepSucceeded); len(got) != 1 || got[0].Group != "child" {
		t.Fatalf("the callee's step in the journal: %+v", got)
	}
	id := res.runID()
	if res := w.run(nil, "unlock"); res.code != 0 {
		t.Fatalf("unlock: exit %d: %s", res.code, res.stderr)
	}
	res = w.run(nil, "resume", id, "-o", "json")
	if res.code != 1 {
		t.Fatalf("resume: exit %d, want 1 (failed, rolled back): %s", res.code, res.stderr)
	}
	want(t, "effects", w.effects(), []string{"a", "c1-x", "c2", "undo-c2", "undo-c1-x", "undo-a"})
	if f := res.of("after", journal.StepFailed); len(f) != 1 || f[0].Error == nil || !strings.Contains(f[0].Error.Message, "after x") {
		t.Fatalf("after: %+v", f)
	}
	fin := res.of("", journal.RunFinished)
	if len(fin) != 1 || fin[0].Status != journal.StatusFailed || !fin[0].RolledBack {
		t.Fatalf("run_finished: %+v", fin)
	}
	// The report shows the call with its steps under it.
	res = w.run(nil, "report", id, "-o", "report.md")
	md, err := os.ReadFile(w.dir + "/report.md")
	if res.code != 0 || err != nil || !strings.Contains(string(md), "calls `./child.yaml`") || !strings.Contains(string(md), "`child.c2`") {
		t.Fatalf("report: exit %d %v: %s\n%s", res.code, err, res.stderr, md)
	}
}
