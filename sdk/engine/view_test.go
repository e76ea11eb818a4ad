package engine

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/google/go-cmp/cmp/cmpopts"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// The engine's state is the view its events were applied to; resume
// rebuilds it by replaying the journal. Both must say the same thing about
// every step, whatever happened: retries, until polls, a parallel group, a
// continued failure, a failure rolled back (a completed step and an
// attempted one), a failing rollback, approvals.
func TestLiveStateEqualsReplayedJournal(t *testing.T) {
	flaky := 0
	inv := newInvoker(map[string]action{
		"x.do": ok(map[string]any{"v": "done"}),
		"x.flaky": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			if flaky++; flaky < 3 {
				return nil, retryableErr("not yet")
			}
			return map[string]any{"n": float64(flaky)}, nil
		},
		"x.poll": func(_ context.Context, c Call, progress func(spec.Progress)) (map[string]any, error) {
			progress(spec.Progress{Time: time.Now(), Message: "polling", Fields: map[string]any{"attempt": float64(c.Attempt)}})
			return map[string]any{"ready": c.Attempt >= 2}, nil
		},
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return nil, fatalErr("boom") },
		"x.undo": ok(map[string]any{}),
		"x.badundo": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			return nil, fatalErr("cannot undo")
		},
		"x.optional": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			return nil, fatalErr("optional failed")
		},
	})
	undo := &rbDef{uses: "x.undo"}
	rb := build(t, rbOpts{},
		def{id: "first", uses: "x.do", rollback: undo},
		def{id: "approve", uses: "core.approve", with: map[string]any{"message": "go?"}},
		def{id: "retried", uses: "x.flaky", retry: runbook.Retry{Attempts: 5}, rollback: &rbDef{uses: "x.badundo"}},
		def{id: "polled", uses: "x.poll", until: "outputs.ready", interval: time.Millisecond, untilFor: time.Minute},
		def{id: "skipped", uses: "x.do", ifSrc: "false"},
		def{id: "group", parallel: []def{
			{id: "child_a", uses: "x.do", rollback: undo},
			{id: "child_b", uses: "x.optional", cont: true},
		}},
		def{id: "attempted", uses: "x.fail", rollback: &rbDef{uses: "x.undo", attempted: true}},
		def{id: "never", uses: "x.do"},
	)
	w := &memWriter{}
	e, err := New(Options{Runbook: rb, Invoker: inv, Journal: w, RunID: "r1", Approvals: Approvals{AutoApprove: true, By: "ops"}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusRollbackFailed)

	replayed := NewView(rb, "r1")
	replayed.ApplyAll(w.records)
	opts := cmp.Options{cmpopts.IgnoreUnexported(journal.View{}, journal.StepView{}), cmpopts.EquateEmpty()}
	if diff := cmp.Diff(e.view, replayed, opts); diff != "" {
		t.Fatalf("the engine's state and the replayed journal differ (-live +replayed):\n%s", diff)
	}
	// And they say what happened.
	for id, want := range map[string]journal.StepState{
		"first": journal.StateSucceeded, "approve": journal.StateSucceeded, "retried": journal.StateSucceeded,
		"polled": journal.StateSucceeded, "skipped": journal.StateSkipped, "group": journal.StateSucceeded,
		"child_a": journal.StateSucceeded, "child_b": journal.StateFailed, "attempted": journal.StateFailed,
		"never": journal.StatePending,
	} {
		if got := replayed.Step(id).Status; got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	if s := replayed.Step("retried"); s.Attempt != 3 || len(s.Attempts) != 3 || !s.Attempts[0].Retryable || s.Rollback.Status != journal.StateFailed {
		t.Errorf("retried: %+v", s)
	}
	if s := replayed.Step("polled"); s.Attempt != 2 || s.Attempts[0].Error != nil || s.Outputs["ready"] != true {
		t.Errorf("polled: %+v", s)
	}
	if s := replayed.Step("approve"); s.Granted == nil || s.Granted.By != "ops" || s.Granted.Via != "auto-approve" {
		t.Errorf("approve: %+v", s)
	}
	if f := replayed.Failure; f == nil || f.Path != "attempted" || f.Error == nil || f.Error.Code != "Invalid" {
		t.Errorf("failure: %+v", f)
	}
	for _, id := range []string{"first", "child_a", "attempted"} {
		if rb := replayed.Step(id).Rollback; rb == nil || rb.Status != journal.StateSucceeded {
			t.Errorf("%s rollback: %+v", id, rb)
		}
	}
	if replayed.Status != journal.StatusRollbackFailed || replayed.Finished.IsZero() {
		t.Errorf("run: %s at %s", replayed.Status, replayed.Finished)
	}
}

// Approvals.Identity is asked for every answer and journaled with it,
// secrets redacted, and the view carries it.
func TestApprovalIdentityIsJournaled(t *testing.T) {
	inv := newInvoker(map[string]action{"x.do": ok(map[string]any{})})
	rb := build(t, rbOpts{}, def{id: "approve", uses: "core.approve", with: map[string]any{"message": "go?"}}, def{id: "after", uses: "x.do"})
	w := &memWriter{}
	calls := 0
	e, err := New(Options{Runbook: rb, Invoker: inv, Journal: w, RunID: "r1", Redactor: redact.New("hunter2-secret"),
		Approvals: Approvals{Approved: map[string]bool{"approve": true}, By: "ops", Identity: func(context.Context) *journal.Identity {
			calls++
			return &journal.Identity{OSUser: "ops", Host: "bastion", Stated: "ticket hunter2-secret",
				AWS: &journal.AWSIdentity{ARN: "arn:aws:sts::123456789012:assumed-role/DR/ops", Account: "123456789012"}}
		}}})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	expectStatus(t, res, StatusSucceeded)
	if calls != 1 {
		t.Errorf("Identity called %d times, want 1", calls)
	}
	var got *journal.Identity
	for _, r := range w.records {
		if r.Type == journal.ApprovalGranted {
			got = r.Approver
		}
	}
	if got == nil || got.AWS == nil || got.AWS.ARN != "arn:aws:sts::123456789012:assumed-role/DR/ops" || got.Host != "bastion" {
		t.Fatalf("journaled approver %+v", got)
	}
	if got.Stated != "ticket "+redact.Mask {
		t.Errorf("stated %q: the secret is not redacted", got.Stated)
	}
	if a := e.view.Approvals; len(a) != 1 || a[0].Approver == nil || !strings.HasSuffix(a[0].Approver.String(), "; AWS arn:aws:sts::123456789012:assumed-role/DR/ops; OS ops@bastion") {
		t.Errorf("view approvals %+v", a[0].Approver)
	}
}
