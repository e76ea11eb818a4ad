package engine

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// runJournaled runs rb with a file journal in store.
func runJournaled(t *testing.T, ctx context.Context, store *journal.FileStore, runID string, opts Options) *Result {
	t.Helper()
	w, err := store.Create(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	opts.Journal, opts.RunID = w, runID
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	return res
}

// resumeJournaled resumes a run from store, appending to its journal.
func resumeJournaled(t *testing.T, store *journal.FileStore, runID string, opts Options, ro ResumeOptions) (*Result, error) {
	t.Helper()
	ctx := context.Background()
	j, err := store.Open(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	w, err := store.Reopen(ctx, runID)
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	opts.Journal = w
	ro.Journal = j
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	return e.Resume(ctx, ro)
}

func openJournal(t *testing.T, store *journal.FileStore, runID string) *journal.Journal {
	t.Helper()
	j, err := store.Open(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func countType(j *journal.Journal, typ, step string) int {
	n := 0
	for _, r := range j.Records {
		if r.Type == typ && (step == "" || r.Step == step) {
			n++
		}
	}
	return n
}

func approvalRunbook(t *testing.T) *runbook.Runbook {
	return build(t, rbOpts{},
		def{id: "db", uses: "x.do", rollback: &rbDef{uses: "x.undo"}},
		def{id: "confirm", uses: "core.approve", with: map[string]any{"message": "Writer is in ${{ steps.db.outputs.region }}. Switch DNS?"}},
		def{id: "dns", uses: "x.do"},
	)
}

func TestApprovalPausesThenResumesWhenApproved(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	inv := newInvoker(map[string]action{"x.do": ok(map[string]any{"region": "eu-west-3"})})
	rec := &recorder{}
	res := runJournaled(t, context.Background(), store, "r1", Options{Runbook: approvalRunbook(t), Invoker: inv, OnEvent: rec.on})
	expectStatus(t, res, StatusPaused)
	if res.ExitCode() != 3 || len(res.Waiting) != 1 || res.Waiting[0] != "confirm" {
		t.Fatalf("exit %d waiting %v", res.ExitCode(), res.Waiting)
	}
	if len(inv.callsOf("dns", false)) != 0 || len(inv.rollbackOrder()) != 0 {
		t.Fatal("a paused run went on or rolled back")
	}
	req := rec.find(journal.ApprovalRequested, "confirm")
	if len(req) != 1 || req[0].Message != "Writer is in eu-west-3. Switch DNS?" {
		t.Fatalf("approval_requested: %+v", req)
	}
	if got := openJournal(t, store, "r1").Summarize().Status; got != journal.StatusPaused {
		t.Fatalf("journal status %s", got)
	}

	// Resuming without an approval pauses again.
	res, err := resumeJournaled(t, store, "r1", Options{Runbook: approvalRunbook(t), Invoker: inv}, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusPaused)

	rec = &recorder{}
	res, err = resumeJournaled(t, store, "r1", Options{Runbook: approvalRunbook(t), Invoker: inv, OnEvent: rec.on,
		Approvals: Approvals{By: "alice"}}, ResumeOptions{Approved: map[string]bool{"confirm": true}})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded)
	if n := len(inv.callsOf("db", false)); n != 1 {
		t.Fatalf("db ran %d times; a completed step must not run again", n)
	}
	if len(inv.callsOf("dns", false)) != 1 {
		t.Fatal("dns did not run after the approval")
	}
	g := rec.find(journal.ApprovalGranted, "confirm")
	if len(g) != 1 || g[0].By != "alice" || g[0].Via != "pre-approved" || g[0].Attempt != 3 {
		t.Fatalf("approval_granted: %+v", g)
	}
	if c := stepStatus(t, res, "confirm"); c.Outputs["approved_by"] != "alice" || c.Outputs["approved_via"] != "pre-approved" || c.Outputs["approved_at"] == "" {
		t.Fatalf("approve outputs %v", c.Outputs)
	}
	if db := stepStatus(t, res, "db"); db.Status != StepSucceeded || db.Outputs["region"] != "eu-west-3" {
		t.Fatalf("db from the journal: %+v", db)
	}
	j := openJournal(t, store, "r1")
	if countType(j, journal.RunResumed, "") != 2 || j.Summarize().Status != journal.StatusSucceeded {
		t.Fatalf("journal: %d resumes, status %s", countType(j, journal.RunResumed, ""), j.Summarize().Status)
	}
	// A finished run cannot be resumed.
	_, err = resumeJournaled(t, store, "r1", Options{Runbook: approvalRunbook(t), Invoker: inv}, ResumeOptions{AutoApprove: true})
	if !errors.Is(err, ErrRunFinished) {
		t.Fatalf("resume of a finished run: %v", err)
	}
}

func TestApprover(t *testing.T) {
	cases := map[string]struct {
		answer func(ctx context.Context, req ApprovalRequest) (Decision, error)
		status Status
		code   string
	}{
		"granted": {answer: func(_ context.Context, req ApprovalRequest) (Decision, error) {
			return Decision{Approved: true, By: "bob"}, nil
		}, status: StatusSucceeded},
		"denied": {answer: func(context.Context, ApprovalRequest) (Decision, error) {
			return Decision{Approved: false, By: "bob", Reason: "writer lag too high"}, nil
		}, status: StatusFailed, code: "ApprovalDenied"},
		"deferred": {answer: func(context.Context, ApprovalRequest) (Decision, error) {
			return Decision{}, ErrApprovalDeferred
		}, status: StatusPaused},
		"timed out": {answer: func(ctx context.Context, req ApprovalRequest) (Decision, error) {
			<-ctx.Done()
			return Decision{}, ctx.Err()
		}, status: StatusFailed, code: "ApprovalTimeout"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			inv := newInvoker(map[string]action{"x.do": ok(map[string]any{"region": "eu-west-3"})})
			rb := build(t, rbOpts{},
				def{id: "db", uses: "x.do", rollback: &rbDef{uses: "x.undo"}},
				def{id: "confirm", uses: "core.approve", with: map[string]any{"message": "go?", "timeout": "20ms"}},
				def{id: "dns", uses: "x.do"})
			var asked atomic.Value
			rec := &recorder{}
			res := mustRun(t, Options{Runbook: rb, Invoker: inv, OnEvent: rec.on, Approvals: Approvals{Approver: ApproverFunc(
				func(ctx context.Context, req ApprovalRequest) (Decision, error) {
					asked.Store(req)
					return tc.answer(ctx, req)
				})}})
			expectStatus(t, res, tc.status)
			if req, _ := asked.Load().(ApprovalRequest); req.StepID != "confirm" || req.Message != "go?" || req.Timeout != 20*time.Millisecond {
				t.Fatalf("approver asked %+v", req)
			}
			switch tc.status {
			case StatusSucceeded:
				if g := rec.find(journal.ApprovalGranted, "confirm"); len(g) != 1 || g[0].By != "bob" || g[0].Via != "interactive" {
					t.Fatalf("granted: %+v", g)
				}
			case StatusFailed:
				if res.Failure.Code != tc.code || !res.RolledBack || len(inv.callsOf("dns", false)) != 0 {
					t.Fatalf("failure %+v rolled back %v", res.Failure, res.RolledBack)
				}
			}
		})
	}
}

func TestAutoApproveRecordsWho(t *testing.T) {
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: approvalRunbook(t), Invoker: newInvoker(nil), OnEvent: rec.on,
		Approvals: Approvals{AutoApprove: true, By: "ci"}})
	expectStatus(t, res, StatusSucceeded)
	if g := rec.find(journal.ApprovalGranted, "confirm"); len(g) != 1 || g[0].By != "ci" || g[0].Via != "auto-approve" {
		t.Fatalf("granted: %+v", g)
	}
}

// interruptRunbook: a, then b (which the test interrupts), then c.
func interruptRunbook(t *testing.T, bIdempotent bool) *runbook.Runbook {
	return build(t, rbOpts{},
		def{id: "a", uses: "x.do", rollback: &rbDef{uses: "x.undo"}},
		def{id: "b", uses: "x.block", spec: spec.ActionSpec{Idempotent: bIdempotent}, rollback: &rbDef{uses: "x.undo"}},
		def{id: "c", uses: "x.do"},
	)
}

// interruptedRun runs interruptRunbook and cancels the context while b's
// first attempt runs. It returns what b's action saw.
func interruptedRun(t *testing.T, store *journal.FileStore, bIdempotent bool) (*fakeInvoker, error) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var seen atomic.Value
	inv := newInvoker(map[string]action{
		"x.do": ok(map[string]any{"v": 1.0}),
		"x.block": func(actx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			if c.Attempt == 1 {
				cancel() // SIGINT arrives while the action runs
				<-actx.Done()
				seen.Store(actx.Err())
				return nil, actx.Err()
			}
			return map[string]any{"v": 2.0}, nil
		},
	})
	res := runJournaled(t, ctx, store, "r1", Options{Runbook: interruptRunbook(t, bIdempotent), Invoker: inv})
	expectStatus(t, res, StatusInterrupted)
	if res.ExitCode() != 130 || len(inv.rollbackOrder()) != 0 || len(inv.callsOf("c", false)) != 0 {
		t.Fatalf("exit %d, rollbacks %v, c calls %d", res.ExitCode(), inv.rollbackOrder(), len(inv.callsOf("c", false)))
	}
	if s := stepStatus(t, res, "b"); s.Status != StepInterrupted {
		t.Fatalf("b: %s", s.Status)
	}
	j := openJournal(t, store, "r1")
	if j.Summarize().Status != journal.StatusInterrupted || countType(j, journal.StepInterrupted, "b") != 1 {
		t.Fatalf("journal status %s", j.Summarize().Status)
	}
	err, _ := seen.Load().(error)
	return inv, err
}

func TestInterruptedIdempotentStepIsRerunOnResume(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	inv, seen := interruptedRun(t, store, true)
	if !errors.Is(seen, context.Canceled) {
		t.Fatalf("the action saw %v, want the cancellation", seen)
	}
	res, err := resumeJournaled(t, store, "r1", Options{Runbook: interruptRunbook(t, true), Invoker: inv}, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded)
	b := inv.callsOf("b", false)
	if len(b) != 2 || b[1].Attempt != 2 || b[1].IdempotencyKey != b[0].IdempotencyKey {
		t.Fatalf("b calls %+v: want attempt 2 with the same idempotency key", b)
	}
	if len(inv.callsOf("a", false)) != 1 || len(inv.callsOf("c", false)) != 1 {
		t.Fatal("a re-ran or c did not run")
	}
}

func TestInterruptedNonIdempotentStepNeedsADecision(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	inv, _ := interruptedRun(t, store, false)
	opts := Options{Runbook: interruptRunbook(t, false), Invoker: inv}

	_, err := resumeJournaled(t, store, "r1", opts, ResumeOptions{})
	var blocked *ResumeBlockedError
	if !errors.As(err, &blocked) || len(blocked.Steps) != 1 || blocked.Steps[0].ID != "b" {
		t.Fatalf("resume: %v, want a ResumeBlockedError naming b", err)
	}
	for _, want := range []string{"step b", "x.block", "--retry-step b", "--skip-step b"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not mention %q", err, want)
		}
	}
	if n := len(openJournal(t, store, "r1").Records); countType(openJournal(t, store, "r1"), journal.RunResumed, "") != 0 {
		t.Fatalf("a refused resume wrote to the journal (%d records)", n)
	}
	if _, err := resumeJournaled(t, store, "r1", opts, ResumeOptions{RetrySteps: []string{"a"}}); err == nil || !strings.Contains(err.Error(), "--retry-step a") {
		t.Fatalf("retrying a step that was not interrupted: %v", err)
	}

	res, err := resumeJournaled(t, store, "r1", opts, ResumeOptions{SkipSteps: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded)
	if b := stepStatus(t, res, "b"); b.Status != StepSkipped || !strings.Contains(b.SkipReason, "operator") {
		t.Fatalf("b: %+v", b)
	}
	if len(inv.callsOf("b", false)) != 1 || len(inv.callsOf("c", false)) != 1 {
		t.Fatal("a skipped step ran, or the run did not continue")
	}
}

func TestInterruptedNonIdempotentStepRetriedOnRequest(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	inv, _ := interruptedRun(t, store, false)
	res, err := resumeJournaled(t, store, "r1", Options{Runbook: interruptRunbook(t, false), Invoker: inv}, ResumeOptions{RetrySteps: []string{"b"}})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded)
	if b := inv.callsOf("b", false); len(b) != 2 || b[1].Attempt != 2 {
		t.Fatalf("b calls %+v", b)
	}
	j := openJournal(t, store, "r1")
	var ri *journal.ResumeInfo
	for _, r := range j.Records {
		if r.Type == journal.RunResumed {
			ri = r.Resume
		}
	}
	if ri == nil || len(ri.RetrySteps) != 1 || ri.RetrySteps[0] != "b" {
		t.Fatalf("run_resumed: %+v", ri)
	}
}

func TestResumeWithRollbackCompensatesCompletedSteps(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	inv, _ := interruptedRun(t, store, true)
	res, err := resumeJournaled(t, store, "r1", Options{Runbook: interruptRunbook(t, true), Invoker: inv}, ResumeOptions{Rollback: true})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusFailed)
	if !res.RolledBack || len(inv.callsOf("c", false)) != 0 || len(inv.callsOf("b", false)) != 1 {
		t.Fatalf("rolled back %v; b calls %d, c calls %d", res.RolledBack, len(inv.callsOf("b", false)), len(inv.callsOf("c", false)))
	}
	// b never completed: only a is compensated.
	if diff := cmp.Diff([]string{"a"}, inv.rollbackOrder()); diff != "" {
		t.Fatalf("rollbacks (-want +got):\n%s", diff)
	}
	j := openJournal(t, store, "r1")
	if countType(j, journal.Log, "b") != 1 {
		t.Fatal("no warning that the interrupted step b is not compensated")
	}
}

func TestInterruptedRollbackResumesTheRollback(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var undoCalls atomic.Int32
	inv := newInvoker(map[string]action{
		"x.do":   ok(map[string]any{"previous": "p"}),
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return nil, fatalErr("boom") },
		"x.undo": func(actx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			if c.StepID == "d" && undoCalls.Add(1) == 1 {
				cancel()
				<-actx.Done()
				return nil, actx.Err()
			}
			return nil, nil
		},
	})
	rb := func() *runbook.Runbook { return rollbackRunbook(t, runbook.OnFailureRollback) }
	res := runJournaled(t, ctx, store, "r1", Options{Runbook: rb(), Invoker: inv})
	expectStatus(t, res, StatusInterrupted)
	if got := inv.rollbackOrder(); len(got) != 1 || got[0] != "d" {
		t.Fatalf("rollbacks before the interruption: %v", got)
	}
	// The fake rollback specs are not idempotent unless said so: the
	// interrupted rollback of d needs a decision.
	_, err := resumeJournaled(t, store, "r1", Options{Runbook: rb(), Invoker: inv}, ResumeOptions{})
	var blocked *ResumeBlockedError
	if !errors.As(err, &blocked) || !blocked.Steps[0].Rollback || blocked.Steps[0].ID != "d" {
		t.Fatalf("resume: %v", err)
	}
	res, err = resumeJournaled(t, store, "r1", Options{Runbook: rb(), Invoker: inv}, ResumeOptions{RetrySteps: []string{"d"}})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusFailed)
	if !res.RolledBack {
		t.Fatal("not rolled back")
	}
	if diff := cmp.Diff([]string{"d", "d", "c2", "c1", "a"}, sortGroup(inv.rollbackOrder())); diff != "" {
		t.Fatalf("rollbacks (-want +got):\n%s", diff)
	}
	if d := inv.callsOf("d", true); d[1].Attempt != 2 {
		t.Fatalf("the rollback attempt counter did not continue: %+v", d[1])
	}
	if len(inv.callsOf("e", false)) != 1 {
		t.Fatal("the failed step ran again on resume")
	}
	if res.Failure == nil || res.Failure.Step != "e" {
		t.Fatalf("failure from the journal: %+v", res.Failure)
	}
}

// sortGroup orders c1/c2 (whose completion order is not fixed) as c2, c1.
func sortGroup(ids []string) []string {
	out := append([]string(nil), ids...)
	for i := 0; i+1 < len(out); i++ {
		if out[i] == "c1" && out[i+1] == "c2" {
			out[i], out[i+1] = "c2", "c1"
		}
	}
	return out
}

// TestCrashThenResume runs a runbook to completion, then cuts its journal
// after each record in turn (with a torn line after it, as a crash leaves),
// and resumes: what re-runs must follow the idempotency rules.
func TestCrashThenResume(t *testing.T) {
	for _, idem := range []bool{true, false} {
		dir := t.TempDir()
		store := journal.NewFileStore(dir)
		inv := newInvoker(map[string]action{"x.do": ok(map[string]any{"v": 1.0})})
		rb := func() *runbook.Runbook {
			return build(t, rbOpts{},
				def{id: "a", uses: "x.do", spec: spec.ActionSpec{Idempotent: idem}},
				def{id: "b", uses: "x.do", spec: spec.ActionSpec{Idempotent: idem}})
		}
		res := runJournaled(t, context.Background(), store, "full", Options{Runbook: rb(), Invoker: inv})
		expectStatus(t, res, StatusSucceeded)
		full, err := os.ReadFile(store.Path("full"))
		if err != nil {
			t.Fatal(err)
		}
		lines := bytes.SplitAfter(full, []byte("\n"))
		lines = lines[:len(lines)-1] // the empty tail
		// Records: run_started, step_started a, attempt_started a,
		// step_succeeded a, step_started b, attempt_started b,
		// step_succeeded b, run_finished.
		for cut := 1; cut < len(lines); cut++ {
			id := "crash-" + string(rune('a'+cut))
			// The records as run id's own: sealed again, since the
			// checksum chain covers the run id.
			copied := resealAs(t, lines[:cut+1], id)
			prefix := bytes.Join(copied[:cut], nil)
			torn := copied[cut]
			data := append(prefix, torn[:len(torn)/2]...)
			if err := os.WriteFile(store.Path(id), data, 0o600); err != nil {
				t.Fatal(err)
			}
			last := string(lines[cut-1])
			inv2 := newInvoker(map[string]action{"x.do": ok(map[string]any{"v": 2.0})})
			res, err := resumeJournaled(t, store, id, Options{Runbook: rb(), Invoker: inv2}, ResumeOptions{})
			inFlight := strings.Contains(last, `"attempt_started"`)
			if inFlight && !idem {
				var blocked *ResumeBlockedError
				if !errors.As(err, &blocked) {
					t.Fatalf("idempotent=%v cut after %s: %v, want a ResumeBlockedError", idem, last, err)
				}
				continue
			}
			if err != nil {
				t.Fatalf("idempotent=%v cut after %s: %v", idem, last, err)
			}
			expectStatus(t, res, StatusSucceeded)
			aDone := cut >= 4
			if got := len(inv2.callsOf("a", false)); (got == 0) != aDone {
				t.Fatalf("cut after %s: a ran %d times on resume", last, got)
			}
			bDone := cut >= 7
			if got := len(inv2.callsOf("b", false)); (got == 0) != bDone || got > 1 {
				t.Fatalf("cut after %s: b ran %d times on resume", last, got)
			}
			if aDone {
				if a := stepStatus(t, res, "a"); a.Outputs["v"] != 1.0 {
					t.Fatalf("a's recorded outputs were not kept: %v", a.Outputs)
				}
			}
			if inFlight {
				if c := inv2.calls[0]; c.Attempt != 2 || c.IdempotencyKey != id+"/"+c.StepID {
					t.Fatalf("re-run call %+v", c)
				}
			}
			j := openJournal(t, store, id)
			if j.TornTail != 0 || j.Summarize().Status != journal.StatusSucceeded {
				t.Fatalf("journal after resume: torn %d status %s", j.TornTail, j.Summarize().Status)
			}
		}
	}
}

func TestChangedRunbookIsRefusedUnlessForced(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	res := runJournaled(t, context.Background(), store, "r1", Options{Runbook: approvalRunbook(t), Invoker: newInvoker(nil)})
	expectStatus(t, res, StatusPaused)
	changed := approvalRunbook(t)
	changed.Hash = "hash-2"
	_, err := resumeJournaled(t, store, "r1", Options{Runbook: changed, Invoker: newInvoker(nil)}, ResumeOptions{AutoApprove: true})
	var rc *RunbookChangedError
	if !errors.As(err, &rc) || rc.Recorded != "hash-1" || rc.Current != "hash-2" {
		t.Fatalf("resume with a changed runbook: %v", err)
	}
	res, err = resumeJournaled(t, store, "r1", Options{Runbook: changed, Invoker: newInvoker(nil)}, ResumeOptions{AutoApprove: true, Force: true})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded)
	for _, r := range openJournal(t, store, "r1").Records {
		if r.Type == journal.RunResumed && (!r.Resume.Forced || r.Resume.RunbookHash != "hash-2") {
			t.Fatalf("run_resumed %+v", r.Resume)
		}
	}
}

func TestResumeInputs(t *testing.T) {
	inputs := []*runbook.Input{
		{Name: "region", Type: runbook.TypeString},
		{Name: "token", Type: runbook.TypeString, Secret: true},
	}
	mk := func() *runbook.Runbook {
		return build(t, rbOpts{inputs: inputs},
			def{id: "confirm", uses: "core.approve", with: map[string]any{"message": "ok?"}},
			def{id: "use", uses: "x.do", with: map[string]any{"region": "${{ inputs.region }}", "token": "${{ inputs.token }}"}})
	}
	store := journal.NewFileStore(t.TempDir())
	given := map[string]any{"region": "eu-west-3", "token": "tok-123456"}
	res := runJournaled(t, context.Background(), store, "r1", Options{Runbook: mk(), Invoker: newInvoker(nil), Inputs: given})
	expectStatus(t, res, StatusPaused)

	_, err := resumeJournaled(t, store, "r1", Options{Runbook: mk(), Invoker: newInvoker(nil), Inputs: map[string]any{}}, ResumeOptions{AutoApprove: true})
	if err == nil || !strings.Contains(err.Error(), "token") {
		t.Fatalf("resume without the secret input: %v", err)
	}
	_, err = resumeJournaled(t, store, "r1", Options{Runbook: mk(), Invoker: newInvoker(nil), Inputs: map[string]any{"token": "tok-123456", "region": "us-east-1"}}, ResumeOptions{AutoApprove: true})
	if err == nil || !strings.Contains(err.Error(), "region") {
		t.Fatalf("resume with a changed input: %v", err)
	}
	inv := newInvoker(nil)
	res, err = resumeJournaled(t, store, "r1", Options{Runbook: mk(), Invoker: inv, Inputs: map[string]any{"token": "tok-123456"}}, ResumeOptions{AutoApprove: true})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded)
	if c := inv.callsOf("use", false); len(c) != 1 || c[0].Params["region"] != "eu-west-3" || c[0].Params["token"] != "tok-123456" {
		t.Fatalf("params after resume: %+v", c)
	}
}

// A secret input that took its declared default takes it again on resume;
// one that was given must be given again, not silently replaced by the
// default (a notice webhook would be dropped, a token would be missing).
func TestResumeSecretDefaults(t *testing.T) {
	inputs := []*runbook.Input{{Name: "hook", Type: runbook.TypeString, Secret: true, Default: "", HasDefault: true}}
	mk := func() *runbook.Runbook {
		return build(t, rbOpts{inputs: inputs},
			def{id: "confirm", uses: "core.approve", with: map[string]any{"message": "ok?"}},
			def{id: "use", uses: "x.do", with: map[string]any{"hook": "${{ inputs.hook }}"}})
	}
	for name, tc := range map[string]struct {
		given   map[string]any
		wantErr bool
	}{
		"defaulted": {given: map[string]any{}, wantErr: false},
		"given":     {given: map[string]any{"hook": "https://hooks.example/s3cr3t"}, wantErr: true},
	} {
		t.Run(name, func(t *testing.T) {
			store := journal.NewFileStore(t.TempDir())
			res := runJournaled(t, context.Background(), store, "r1", Options{Runbook: mk(), Invoker: newInvoker(nil), Inputs: tc.given})
			expectStatus(t, res, StatusPaused)
			inv := newInvoker(nil)
			_, err := resumeJournaled(t, store, "r1", Options{Runbook: mk(), Invoker: inv, Inputs: map[string]any{}}, ResumeOptions{AutoApprove: true})
			if tc.wantErr != (err != nil) {
				t.Fatalf("resume without the secret: err = %v, want error %v", err, tc.wantErr)
			}
			if err != nil && !strings.Contains(err.Error(), "hook") {
				t.Fatalf("error does not name the input: %v", err)
			}
		})
	}
}

func TestSecretsNeverAppear(t *testing.T) {
	const (
		inputSecret   = "in-secret-9f8e7d"
		optionSecret  = "opt-secret-1a2b3c"
		literalSecret = "literal-secret-x1y2"
		outputSecret  = "output-secret-5k6l"
	)
	inv := newInvoker(map[string]action{
		"x.leaky": func(ctx context.Context, c Call, progress func(spec.Progress)) (map[string]any, error) {
			tok, _ := c.Params["token"].(string)
			key, _ := c.Params["api_key"].(string)
			progress(spec.Progress{Message: "using " + tok + " and " + key + " and " + optionSecret, Fields: map[string]any{"t": tok}})
			return map[string]any{"echo": tok, "nested": []any{map[string]any{"k": key}}, "own": outputSecret}, nil
		},
		"x.fail": func(ctx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			return nil, retryableErr("auth failed for token %s", c.Params["token"])
		},
	})
	const defaultSecret = "default-secret-q9w8"
	rb := build(t, rbOpts{
		inputs: []*runbook.Input{{Name: "token", Type: runbook.TypeString, Secret: true},
			{Name: "fallback", Type: runbook.TypeString, Secret: true, Default: defaultSecret, HasDefault: true}},
		outputs:   map[string]string{"echoed": "${{ steps.a.outputs.echo }}", "secret_out": "${{ steps.a.outputs.own }}"},
		secretOut: []string{"secret_out"},
	},
		def{id: "a", uses: "x.leaky", secretKey: "api_key", with: map[string]any{"token": "${{ inputs.token }}", "api_key": literalSecret},
			rollback: &rbDef{uses: "x.leaky", with: map[string]any{"token": "${{ inputs.token }}"}}},
		def{id: "log", uses: "core.log", with: map[string]any{"message": "token is ${{ inputs.token }}, fallback ${{ inputs.fallback }}"}},
		def{id: "b", uses: "x.fail", with: map[string]any{"token": "${{ inputs.token }}"}, retry: runbook.Retry{Attempts: 2}},
	)
	store := journal.NewFileStore(t.TempDir())
	rec := &recorder{}
	res := runJournaled(t, context.Background(), store, "r1", Options{Runbook: rb, Invoker: inv, OnEvent: rec.on,
		Inputs: map[string]any{"token": inputSecret}, Secrets: []string{optionSecret}})
	expectStatus(t, res, StatusFailed)
	if len(inv.rollbackOrder()) != 1 {
		t.Fatal("the leaky rollback did not run")
	}
	journalBytes, err := os.ReadFile(store.Path("r1"))
	if err != nil {
		t.Fatal(err)
	}
	texts := map[string]string{"journal": string(journalBytes), "events": rec.json(t), "error": res.Err.Error()}
	for _, s := range res.Steps {
		if s.Err != nil {
			texts["step error "+s.ID] = s.Err.Error()
		}
	}
	for where, text := range texts {
		for _, secret := range []string{inputSecret, optionSecret, literalSecret, defaultSecret} {
			if strings.Contains(text, secret) {
				t.Errorf("%s contains secret %q", where, secret)
			}
		}
	}
	if !strings.Contains(texts["journal"], redacted) || !strings.Contains(texts["error"], redacted) {
		t.Fatal("nothing was redacted: the test is not exercising redaction")
	}
	// The action itself got the real values.
	if c := inv.callsOf("a", false)[0]; c.Params["token"] != inputSecret || c.Params["api_key"] != literalSecret {
		t.Fatalf("params %+v", c.Params)
	}

	// A succeeded run: secret outputs are redacted in run_finished, real in
	// the Result.
	ok := build(t, rbOpts{
		inputs:  []*runbook.Input{{Name: "token", Type: runbook.TypeString, Secret: true}},
		outputs: map[string]string{"secret_out": "${{ steps.a.outputs.own }}"}, secretOut: []string{"secret_out"}},
		def{id: "a", uses: "x.leaky", with: map[string]any{"token": "${{ inputs.token }}"}})
	rec = &recorder{}
	res2 := mustRun(t, Options{Runbook: ok, Invoker: inv, OnEvent: rec.on, Inputs: map[string]any{"token": inputSecret}})
	expectStatus(t, res2, StatusSucceeded)
	if res2.Outputs["secret_out"] != outputSecret {
		t.Fatalf("result outputs %v", res2.Outputs)
	}
	if fin := rec.find(journal.RunFinished, "*"); len(fin) != 1 || fin[0].Outputs["secret_out"] != redacted {
		t.Fatalf("secret output shown in run_finished: %+v", fin)
	}
}

func TestPlanCallsPlanNeverInvoke(t *testing.T) {
	inv := newInvoker(nil)
	inv.plan = func(ctx context.Context, c PlanCall) (*spec.Plan, error) {
		return &spec.Plan{Summary: "switch " + c.StepID, Changes: []spec.Change{{Resource: "cluster", Field: "writer", Before: "us-east-1", After: c.Params["region"], Kind: spec.ChangeUpdate}}}, nil
	}
	rb := build(t, rbOpts{inputs: []*runbook.Input{
		{Name: "mode", Type: runbook.TypeString, Default: "planned", HasDefault: true},
		{Name: "token", Type: runbook.TypeString, Secret: true},
	}},
		def{id: "db", uses: "aws.switch", spec: spec.ActionSpec{SupportsPlan: true}, with: map[string]any{"region": "eu-west-3", "token": "${{ inputs.token }}"},
			rollback: &rbDef{uses: "aws.switch"}},
		def{id: "skipme", uses: "aws.switch", spec: spec.ActionSpec{SupportsPlan: true}, ifSrc: `inputs.mode == "unplanned"`},
		def{id: "dns", uses: "dns.set", spec: spec.ActionSpec{SupportsPlan: true}, ifSrc: `steps.db.status == "succeeded"`,
			with: map[string]any{"target": "${{ steps.db.outputs.endpoint }}", "ttl": 60.0, "note": "mode ${{ inputs.mode }}"}},
		def{id: "notify", uses: "notify.send", with: map[string]any{"text": "done"}},
		def{id: "confirm", uses: "core.approve", with: map[string]any{"message": "writer ${{ steps.db.outputs.writer }}?"}},
		def{id: "g", ifSrc: `inputs.mode == "unplanned"`, parallel: []def{{id: "c1", uses: "x.y", spec: spec.ActionSpec{SupportsPlan: true}}}},
	)
	e, err := New(Options{Runbook: rb, Invoker: inv, Inputs: map[string]any{"token": "tok-secret-77"}})
	if err != nil {
		t.Fatal(err)
	}
	p, err := e.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.calls) != 0 {
		t.Fatalf("plan invoked %d actions", len(inv.calls))
	}
	byID := map[string]PlanStep{}
	for _, s := range p.Steps {
		byID[s.ID] = s
	}
	if len(p.Steps) != 7 {
		t.Fatalf("%d plan steps", len(p.Steps))
	}
	db := byID["db"]
	if db.Decision != PlanRun || db.Plan == nil || db.Plan.Changes[0].After != "eu-west-3" || db.Params["token"] != redacted || db.Rollback != "aws.switch" {
		t.Fatalf("db: %+v", db)
	}
	if s := byID["skipme"]; s.Decision != PlanSkip || s.Plan != nil || s.SkipReason == "" {
		t.Fatalf("skipme: %+v", s)
	}
	dns := byID["dns"]
	if dns.Decision != PlanConditional || dns.Condition != `steps.db.status == "succeeded"` {
		t.Fatalf("dns: %+v", dns)
	}
	if diff := cmp.Diff([]string{"/target"}, dns.Unknown); diff != "" || dns.Params["note"] != "mode planned" || dns.Params["target"] != nil {
		t.Fatalf("dns params %v unknown %v", dns.Params, dns.Unknown)
	}
	if n := byID["notify"]; !n.NoPlanSupport || n.Plan != nil {
		t.Fatalf("notify: %+v", n)
	}
	if c := byID["confirm"]; c.Plan == nil || !strings.Contains(c.Plan.Summary, "approval") || !strings.Contains(c.Plan.Summary, "run time") {
		t.Fatalf("confirm: %+v", c.Plan)
	}
	if c := byID["c1"]; c.Decision != PlanSkip || c.Group != "g" {
		t.Fatalf("child of a skipped group: %+v", c)
	}
	// Plan calls: db and dns only, with unknowns passed along.
	if len(inv.plans) != 2 || inv.plans[1].StepID != "dns" || len(inv.plans[1].Unknown) != 1 {
		t.Fatalf("plan calls %+v", inv.plans)
	}
	if inv.plans[0].Params["token"] != "tok-secret-77" {
		t.Fatal("the plugin's Plan must get real parameter values")
	}
	if p.HasErrors() {
		t.Fatal("plan has errors")
	}
}

func TestPlanRecordsPluginErrors(t *testing.T) {
	inv := newInvoker(nil)
	inv.plan = func(context.Context, PlanCall) (*spec.Plan, error) {
		return nil, errors.New("describe failed: AccessDenied")
	}
	rb := build(t, rbOpts{}, def{id: "a", uses: "x.a", spec: spec.ActionSpec{SupportsPlan: true}}, def{id: "b", uses: "x.b", spec: spec.ActionSpec{SupportsPlan: true}})
	e, _ := New(Options{Runbook: rb, Invoker: inv})
	p, err := e.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if !p.HasErrors() || !strings.Contains(p.Steps[0].Err, "AccessDenied") || len(inv.plans) != 2 {
		t.Fatalf("plan %+v", p.Steps)
	}
}

// groupRunbook: a, then group g (c1, c2, c3 with max_parallel 2), then z.
func groupRunbook(t *testing.T) *runbook.Runbook {
	undo := &rbDef{uses: "x.undo"}
	return build(t, rbOpts{},
		def{id: "a", uses: "x.do", rollback: undo},
		def{id: "g", maxPar: 2, parallel: []def{
			{id: "c1", uses: "x.c1", spec: spec.ActionSpec{Idempotent: true}, rollback: undo},
			{id: "c2", uses: "x.c2", spec: spec.ActionSpec{Idempotent: true}, rollback: undo},
			{id: "c3", uses: "x.do", rollback: undo},
		}},
		def{id: "z", uses: "x.do"},
	)
}

func TestResumeInsideAParallelGroup(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c2Running := make(chan struct{})
	inv := newInvoker(map[string]action{
		"x.do": ok(nil),
		"x.c1": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			<-c2Running
			return map[string]any{"done": true}, nil
		},
		"x.c2": func(actx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			if c.Attempt == 1 {
				close(c2Running)
				<-actx.Done() // interrupted once its sibling c1 has completed
				return nil, actx.Err()
			}
			return nil, nil
		},
	})
	res := runJournaled(t, ctx, store, "r1", Options{Runbook: groupRunbook(t), Invoker: inv, OnEvent: func(ev Event) {
		if ev.Type == journal.StepSucceeded && ev.Step == "c1" {
			cancel()
		}
	}})
	expectStatus(t, res, StatusInterrupted)
	if len(inv.callsOf("c3", false)) != 0 {
		t.Fatal("c3 started after the interruption")
	}
	res, err := resumeJournaled(t, store, "r1", Options{Runbook: groupRunbook(t), Invoker: inv}, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded)
	for id, want := range map[string]int{"a": 1, "c1": 1, "c2": 2, "c3": 1, "z": 1} {
		if got := len(inv.callsOf(id, false)); got != want {
			t.Errorf("%s ran %d times, want %d", id, got, want)
		}
	}
	j := openJournal(t, store, "r1")
	if countType(j, journal.StepStarted, "g") != 1 || countType(j, journal.StepSucceeded, "g") != 1 {
		t.Fatal("the group was started twice or never finished")
	}
}

func TestResumeAfterAChildFailedCompletesRunningSiblingsAndRollsBack(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c2Running := make(chan struct{})
	inv := newInvoker(map[string]action{
		"x.do": ok(nil),
		"x.c1": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			<-c2Running
			return nil, fatalErr("c1 broke")
		},
		"x.c2": func(actx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			if c.Attempt == 1 {
				close(c2Running)
				<-actx.Done() // still running when the run is interrupted
				return nil, actx.Err()
			}
			return map[string]any{"v": 1.0}, nil
		},
	})
	res := runJournaled(t, ctx, store, "r1", Options{Runbook: groupRunbook(t), Invoker: inv, OnEvent: func(ev Event) {
		if ev.Type == journal.StepFailed && ev.Step == "c1" {
			cancel()
		}
	}})
	expectStatus(t, res, StatusInterrupted)
	res, err := resumeJournaled(t, store, "r1", Options{Runbook: groupRunbook(t), Invoker: inv}, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusFailed)
	if got := len(inv.callsOf("c1", false)); got != 1 {
		t.Fatalf("the failed child ran %d times", got)
	}
	if got := len(inv.callsOf("c2", false)); got != 2 {
		t.Fatalf("the interrupted child ran %d times, want 2 (finish, then be compensated)", got)
	}
	if len(inv.callsOf("c3", false)) != 0 || len(inv.callsOf("z", false)) != 0 {
		t.Fatal("a pending child or a later step started after a failure")
	}
	if diff := cmp.Diff([]string{"c2", "a"}, inv.rollbackOrder()); diff != "" {
		t.Fatalf("rollbacks (-want +got):\n%s", diff)
	}
	if res.Failure == nil || res.Failure.Step != "g" {
		t.Fatalf("failure %+v", res.Failure)
	}
}

func TestApprovalGrantedBeforeACrashStands(t *testing.T) {
	store := journal.NewFileStore(t.TempDir())
	res := runJournaled(t, context.Background(), store, "r1", Options{Runbook: approvalRunbook(t), Invoker: newInvoker(nil),
		Approvals: Approvals{AutoApprove: true, By: "carol"}})
	expectStatus(t, res, StatusSucceeded)
	// Crash right after approval_granted was synced.
	data, err := os.ReadFile(store.Path("r1"))
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(data, []byte(`"type":"approval_granted"`))
	end := i + bytes.IndexByte(data[i:], '\n') + 1
	if err := os.WriteFile(store.Path("r1"), data[:end], 0o600); err != nil {
		t.Fatal(err)
	}
	inv := newInvoker(nil)
	res, err = resumeJournaled(t, store, "r1", Options{Runbook: approvalRunbook(t), Invoker: inv}, ResumeOptions{})
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded) // not paused: nobody is asked again
	if c := stepStatus(t, res, "confirm"); c.Outputs["approved_by"] != "carol" || c.Outputs["approved_via"] != "auto-approve" {
		t.Fatalf("approve outputs %v", c.Outputs)
	}
	if len(inv.callsOf("db", false)) != 0 || len(inv.callsOf("dns", false)) != 1 {
		t.Fatal("wrong steps ran on resume")
	}
}

// Read-only actions run during the plan, so later steps plan with their
// outputs; nothing else is invoked.
func TestPlanRunsReadOnlyActions(t *testing.T) {
	inv := newInvoker(map[string]action{
		"aws.status": func(ctx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			return map[string]any{"endpoint": "abc-ats.iot.eu-west-3.amazonaws.com"}, nil
		},
	})
	rb := build(t, rbOpts{},
		def{id: "status", uses: "aws.status", spec: spec.ActionSpec{ReadOnly: true, Idempotent: true}},
		def{id: "dns", uses: "dns.set", spec: spec.ActionSpec{SupportsPlan: true}, ifSrc: `steps.status.outputs.endpoint != ""`,
			with: map[string]any{"target": "${{ steps.status.outputs.endpoint }}"}},
		def{id: "change", uses: "aws.change", spec: spec.ActionSpec{SupportsPlan: true}},
		def{id: "after", uses: "dns.set", spec: spec.ActionSpec{SupportsPlan: true}, with: map[string]any{"v": "${{ steps.change.outputs.x }}"}},
	)
	e, _ := New(Options{Runbook: rb, Invoker: inv})
	p, err := e.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if len(inv.calls) != 1 || inv.calls[0].StepID != "status" {
		t.Fatalf("invoked %+v, want only the read-only step", inv.calls)
	}
	byID := map[string]PlanStep{}
	for _, s := range p.Steps {
		byID[s.ID] = s
	}
	if s := byID["status"]; !s.Read || s.Outputs["endpoint"] != "abc-ats.iot.eu-west-3.amazonaws.com" {
		t.Fatalf("status: %+v", s)
	}
	if d := byID["dns"]; d.Decision != PlanRun || len(d.Unknown) != 0 || d.Params["target"] != "abc-ats.iot.eu-west-3.amazonaws.com" {
		t.Fatalf("dns: %+v", d)
	}
	if a := byID["after"]; len(a.Unknown) != 1 {
		t.Fatalf("after: %+v", a)
	}
}

// A failed run still reports the outputs that read only steps which
// finished: what was done, what is left.
func TestFailedRunRendersWhatOutputsItCan(t *testing.T) {
	inv := newInvoker(map[string]action{
		"x.ok": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			return map[string]any{"v": "done"}, nil
		},
		"x.bad": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			return nil, spec.FatalCode("Boom", "boom")
		},
	})
	rb := build(t, rbOpts{outputs: map[string]string{"first": "${{ steps.a.outputs.v }}", "second": "${{ steps.b.outputs.v }}"}},
		def{id: "a", uses: "x.ok"}, def{id: "b", uses: "x.bad"})
	e, _ := New(Options{Runbook: rb, Invoker: inv})
	res, _ := e.Run(context.Background())
	expectStatus(t, res, StatusFailed)
	if res.Outputs["first"] != "done" {
		t.Fatalf("outputs = %v", res.Outputs)
	}
	if _, ok := res.Outputs["second"]; ok {
		t.Fatalf("an output of a failed step was rendered: %v", res.Outputs)
	}
}

// resealAs returns journal lines as the records of run id, each sealed
// again in order (see journal.Seal).
func resealAs(t *testing.T, lines [][]byte, id string) [][]byte {
	t.Helper()
	var out [][]byte
	prev := ""
	for _, l := range lines {
		var r journal.Record
		if err := json.Unmarshal(l, &r); err != nil {
			t.Fatal(err)
		}
		r.RunID, r.Sum = id, ""
		line, sum, err := journal.Seal(prev, r, false)
		if err != nil {
			t.Fatal(err)
		}
		out, prev = append(out, line), sum
	}
	return out
}
