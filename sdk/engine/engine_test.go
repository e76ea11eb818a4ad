package engine

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

func TestSuccessPassesOutputsAlong(t *testing.T) {
	inv := newInvoker(map[string]action{
		"aws.promote": ok(map[string]any{"writer_region": "eu-west-3", "arn": "arn:db"}),
	})
	rb := build(t, rbOpts{
		inputs:  []*runbook.Input{{Name: "region", Type: runbook.TypeString, Default: "eu-west-3", HasDefault: true}},
		outputs: map[string]string{"writer": "${{ steps.db.outputs.arn }}", "took": "${{ steps.dns.status }}"},
	},
		def{id: "db", uses: "aws.promote", with: map[string]any{"region": "${{ inputs.region }}", "n": 2.0}},
		def{id: "dns", uses: "dns.switch", with: map[string]any{"target": "db in ${{ steps.db.outputs.writer_region }}"}},
	)
	rec := &recorder{}
	mem := &memWriter{}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, OnEvent: rec.on, Journal: mem, RunID: "run-1"})
	expectStatus(t, res, StatusSucceeded)
	if res.ExitCode() != 0 {
		t.Fatalf("exit code %d", res.ExitCode())
	}
	if diff := cmp.Diff(map[string]any{"writer": "arn:db", "took": "succeeded"}, res.Outputs); diff != "" {
		t.Fatalf("outputs (-want +got):\n%s", diff)
	}
	db := inv.callsOf("db", false)
	dns := inv.callsOf("dns", false)
	if len(db) != 1 || len(dns) != 1 {
		t.Fatalf("calls: db %d, dns %d", len(db), len(dns))
	}
	if diff := cmp.Diff(map[string]any{"region": "eu-west-3", "n": 2.0}, db[0].Params); diff != "" {
		t.Fatalf("db params (-want +got):\n%s", diff)
	}
	if got := dns[0].Params["target"]; got != "db in eu-west-3" {
		t.Fatalf("dns target %q", got)
	}
	if db[0].Attempt != 1 || db[0].IdempotencyKey != "run-1/db" || db[0].RunID != "run-1" {
		t.Fatalf("call identity: %+v", db[0])
	}
	want := []string{journal.RunStarted,
		journal.StepStarted, journal.AttemptStarted, journal.StepSucceeded,
		journal.StepStarted, journal.AttemptStarted, journal.StepSucceeded,
		journal.RunFinished}
	if diff := cmp.Diff(want, rec.types("*")); diff != "" {
		t.Fatalf("events (-want +got):\n%s", diff)
	}
	// The journal got the same records, numbered without gaps.
	if len(mem.records) != len(want) {
		t.Fatalf("journal has %d records, want %d", len(mem.records), len(want))
	}
	for i, r := range mem.records {
		if r.Seq != int64(i+1) || r.RunID != "run-1" {
			t.Fatalf("record %d: seq %d run %s", i, r.Seq, r.RunID)
		}
	}
	start := mem.records[0].Run
	if start == nil || start.RunbookHash != "hash-1" || start.Inputs[0].Value != "eu-west-3" || start.EngineVersion == "" {
		t.Fatalf("run_started payload: %+v", start)
	}
	if got := mem.records[3].Outputs["arn"]; got != "arn:db" {
		t.Fatalf("step_succeeded outputs: %v", mem.records[3].Outputs)
	}
}

func TestGeneratedRunIDsSortByTime(t *testing.T) {
	a := NewRunID(time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC))
	b := NewRunID(time.Date(2025, 1, 2, 3, 4, 6, 0, time.UTC))
	if !(a < b) || journal.ValidRunID(a) != nil {
		t.Fatalf("%s, %s", a, b)
	}
	if NewRunID(time.Now()) == NewRunID(time.Now()) {
		t.Fatal("two run ids in the same second are equal")
	}
}

func TestIfSkipIsVisibleToLaterSteps(t *testing.T) {
	inv := newInvoker(nil)
	rb := build(t, rbOpts{inputs: []*runbook.Input{{Name: "mode", Type: runbook.TypeString, Default: "unplanned", HasDefault: true}}},
		def{id: "a", uses: "x.a", ifSrc: `inputs.mode == "planned"`},
		def{id: "b", uses: "x.b", ifSrc: `steps.a.status == "skipped"`},
		def{id: "c", uses: "x.c", ifSrc: `steps.a.status == "succeeded"`},
	)
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, OnEvent: rec.on})
	expectStatus(t, res, StatusSucceeded)
	for id, want := range map[string]StepStatus{"a": StepSkipped, "b": StepSucceeded, "c": StepSkipped} {
		if got := stepStatus(t, res, id).Status; got != want {
			t.Errorf("%s: %s, want %s", id, got, want)
		}
	}
	if len(inv.callsOf("a", false)) != 0 || len(inv.callsOf("b", false)) != 1 {
		t.Fatal("a skipped step was invoked, or a running one was not")
	}
	sk := rec.find(journal.StepSkipped, "a")
	if len(sk) != 1 || sk[0].Message == "" {
		t.Fatalf("step_skipped: %+v", sk)
	}
	if got := rec.types("a"); len(got) != 1 {
		t.Fatalf("a skipped step has events %v (want only step_skipped)", got)
	}
}

func TestRetryThenSuccessWithBackoff(t *testing.T) {
	var n atomic.Int32
	inv := newInvoker(map[string]action{"x.flaky": func(ctx context.Context, c Call, p func(spec.Progress)) (map[string]any, error) {
		if n.Add(1) < 4 {
			return nil, retryableErr("throttled %d", c.Attempt)
		}
		return map[string]any{"ok": true}, nil
	}})
	rb := build(t, rbOpts{}, def{id: "a", uses: "x.flaky",
		retry: runbook.Retry{Attempts: 5, Delay: time.Millisecond, MaxDelay: 3 * time.Millisecond}})
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, OnEvent: rec.on})
	expectStatus(t, res, StatusSucceeded)
	calls := inv.callsOf("a", false)
	if len(calls) != 4 || stepStatus(t, res, "a").Attempts != 4 {
		t.Fatalf("%d calls, %d attempts; want 4", len(calls), stepStatus(t, res, "a").Attempts)
	}
	for i, c := range calls {
		if c.Attempt != i+1 || c.IdempotencyKey != calls[0].IdempotencyKey {
			t.Fatalf("call %d: attempt %d key %q", i, c.Attempt, c.IdempotencyKey)
		}
	}
	var delays []time.Duration
	for _, ev := range rec.find(journal.AttemptFailed, "a") {
		if ev.Error == nil || !ev.Error.Retryable || ev.Error.Class != journal.ClassAction || ev.Error.Code != "Throttled" {
			t.Fatalf("attempt_failed error: %+v", ev.Error)
		}
		delays = append(delays, ev.NextDelay.Std())
	}
	// Exponential from 1ms, capped at 3ms, no jitter.
	if diff := cmp.Diff([]time.Duration{time.Millisecond, 2 * time.Millisecond, 3 * time.Millisecond}, delays); diff != "" {
		t.Fatalf("backoff delays (-want +got):\n%s", diff)
	}
}

func TestBackoff(t *testing.T) {
	r := runbook.Retry{Delay: 100 * time.Millisecond, MaxDelay: time.Second}
	for n, want := range map[int]time.Duration{1: 100 * time.Millisecond, 2: 200 * time.Millisecond, 4: 800 * time.Millisecond, 5: time.Second, 60: time.Second} {
		if got := backoff(r, n); got != want {
			t.Errorf("backoff(%d) = %s, want %s", n, got, want)
		}
	}
	if got := backoff(runbook.Retry{Delay: time.Second}, 200); got <= 0 {
		t.Errorf("uncapped backoff overflowed: %s", got)
	}
	r.Jitter = true
	seen := map[time.Duration]bool{}
	for range 200 {
		d := backoff(r, 3) // cap 400ms
		if d < 0 || d > 400*time.Millisecond {
			t.Fatalf("jittered delay %s outside [0, 400ms]", d)
		}
		seen[d] = true
	}
	if len(seen) < 10 {
		t.Fatalf("jitter produced only %d distinct delays", len(seen))
	}
}

func TestFatalErrorIsNotRetried(t *testing.T) {
	inv := newInvoker(map[string]action{"x.bad": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
		return nil, fatalErr("cluster arn:x is not a global cluster member")
	}})
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
		def{id: "a", uses: "x.bad", retry: runbook.Retry{Attempts: 5, Delay: time.Millisecond}},
		def{id: "b", uses: "x.next"})
	res := mustRun(t, Options{Runbook: rb, Invoker: inv})
	expectStatus(t, res, StatusFailed)
	if n := len(inv.callsOf("a", false)); n != 1 {
		t.Fatalf("fatal error attempted %d times", n)
	}
	if len(inv.callsOf("b", false)) != 0 || stepStatus(t, res, "b").Status != StepPending {
		t.Fatal("a step after a failure ran")
	}
	if res.ExitCode() != 1 || res.Failure == nil || res.Failure.Step != "a" || res.Failure.Code != "Invalid" {
		t.Fatalf("exit %d failure %+v", res.ExitCode(), res.Failure)
	}
}

func TestTransportErrorsRetriedOnlyForIdempotentActions(t *testing.T) {
	for _, idem := range []bool{true, false} {
		t.Run(fmt.Sprint("idempotent=", idem), func(t *testing.T) {
			inv := newInvoker(map[string]action{"x.a": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
				return nil, errors.New("rpc error: connection reset")
			}})
			rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
				def{id: "a", uses: "x.a", retry: runbook.Retry{Attempts: 3}, spec: spec.ActionSpec{Idempotent: idem}})
			res := mustRun(t, Options{Runbook: rb, Invoker: inv})
			expectStatus(t, res, StatusFailed)
			want := 1
			if idem {
				want = 3
			}
			if n := len(inv.callsOf("a", false)); n != want {
				t.Fatalf("%d attempts, want %d", n, want)
			}
			if res.Failure.Class != journal.ClassTransport {
				t.Fatalf("class %s", res.Failure.Class)
			}
		})
	}
}

// A plugin process that dies mid-action leaves unknown whether the attempt
// took effect, like a broken connection: retried for idempotent actions only.
func TestPluginExitedRetriedOnlyForIdempotentActions(t *testing.T) {
	for _, idem := range []bool{true, false} {
		t.Run(fmt.Sprint("idempotent=", idem), func(t *testing.T) {
			calls := 0
			inv := newInvoker(map[string]action{"x.a": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
				calls++
				if calls == 1 {
					return nil, &spec.Error{Code: CodePluginExited, Message: "plugin x exited during action a (signal: killed)"}
				}
				return map[string]any{"ok": true}, nil
			}})
			rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
				def{id: "a", uses: "x.a", retry: runbook.Retry{Attempts: 3}, spec: spec.ActionSpec{Idempotent: idem}})
			res := mustRun(t, Options{Runbook: rb, Invoker: inv})
			if idem {
				expectStatus(t, res, StatusSucceeded)
				if n := len(inv.callsOf("a", false)); n != 2 {
					t.Fatalf("%d attempts, want 2", n)
				}
				return
			}
			expectStatus(t, res, StatusFailed)
			if n := len(inv.callsOf("a", false)); n != 1 {
				t.Fatalf("%d attempts, want 1", n)
			}
			f := res.Failure
			if f.Code != CodePluginExited || f.Class != journal.ClassTransport || f.Retryable ||
				!strings.Contains(f.Message, "plugin x exited during action a") || !strings.Contains(f.Message, "not declared idempotent") {
				t.Fatalf("failure %+v", f)
			}
		})
	}
}

func TestTimeoutCancelsTheAttempt(t *testing.T) {
	var mu sync.Mutex
	var errs []error
	var deadlines []time.Time
	inv := newInvoker(map[string]action{"x.hang": func(ctx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
		<-ctx.Done()
		mu.Lock()
		errs = append(errs, ctx.Err())
		deadlines = append(deadlines, c.Deadline)
		mu.Unlock()
		return nil, ctx.Err()
	}})
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
		def{id: "a", uses: "x.hang", timeout: 20 * time.Millisecond, retry: runbook.Retry{Attempts: 2}, spec: spec.ActionSpec{Idempotent: true}})
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, OnEvent: rec.on})
	expectStatus(t, res, StatusFailed)
	if len(errs) != 2 {
		t.Fatalf("%d attempts, want 2 (a timed-out idempotent action is retried)", len(errs))
	}
	for i, err := range errs {
		if !errors.Is(err, context.DeadlineExceeded) || deadlines[i].IsZero() {
			t.Fatalf("attempt %d: ctx err %v, deadline %v", i+1, err, deadlines[i])
		}
	}
	if res.Failure.Class != journal.ClassTimeout || res.Failure.Code != "Timeout" {
		t.Fatalf("failure %+v", res.Failure)
	}
	if len(rec.find(journal.AttemptFailed, "a")) != 2 {
		t.Fatal("want two attempt_failed events")
	}
}

// A plugin that reports its own timeout (code Timeout) when the step's
// timeout fires: the failure says "timed out" once with the code, not
// "Timeout: attempt timed out ... (Timeout: ...)".
func TestTimeoutCodeNotRepeated(t *testing.T) {
	inv := newInvoker(map[string]action{"x.hang": func(ctx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
		<-ctx.Done()
		return nil, &spec.Error{Code: "Timeout", Message: "no answer in time", Retryable: true}
	}})
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
		def{id: "a", uses: "x.hang", timeout: 20 * time.Millisecond})
	res := mustRun(t, Options{Runbook: rb, Invoker: inv})
	expectStatus(t, res, StatusFailed)
	text := res.Failure.Code + ": " + res.Failure.Message
	if strings.Count(text, "Timeout") != 1 || !strings.Contains(text, "attempt timed out after 20ms (no answer in time)") {
		t.Fatalf("failure reads %q", text)
	}
}

func TestUntilPollsUntilTheConditionHolds(t *testing.T) {
	var n atomic.Int32
	inv := newInvoker(map[string]action{"x.status": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
		return map[string]any{"writer_region": map[bool]string{true: "eu-west-3", false: "us-east-1"}[n.Add(1) >= 3]}, nil
	}})
	rb := build(t, rbOpts{},
		def{id: "a", uses: "x.status", until: `outputs.writer_region == "eu-west-3"`, interval: time.Millisecond, untilFor: time.Minute})
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, OnEvent: rec.on})
	expectStatus(t, res, StatusSucceeded)
	if a := stepStatus(t, res, "a"); a.Attempts != 3 || a.Outputs["writer_region"] != "eu-west-3" {
		t.Fatalf("attempts %d outputs %v", a.Attempts, a.Outputs)
	}
	unmet := rec.find(journal.UntilUnmet, "a")
	if len(unmet) != 2 || unmet[0].Outputs["writer_region"] != "us-east-1" || unmet[0].NextDelay.Std() != time.Millisecond {
		t.Fatalf("until_unmet events: %+v", unmet)
	}
	if len(rec.find(journal.AttemptStarted, "a")) != 3 {
		t.Fatal("each poll must be an attempt")
	}
}

func TestUntilTimeoutFailsTheStep(t *testing.T) {
	inv := newInvoker(map[string]action{"x.status": ok(map[string]any{"ready": false})})
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
		def{id: "a", uses: "x.status", until: `outputs.ready`, interval: 2 * time.Millisecond, untilFor: 20 * time.Millisecond})
	res := mustRun(t, Options{Runbook: rb, Invoker: inv})
	expectStatus(t, res, StatusFailed)
	if res.Failure.Code != "UntilTimeout" || len(inv.callsOf("a", false)) < 2 {
		t.Fatalf("failure %+v after %d polls", res.Failure, len(inv.callsOf("a", false)))
	}
}

func TestUntilTimeoutBoundsRetries(t *testing.T) {
	inv := newInvoker(map[string]action{"x.status": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
		return nil, retryableErr("endpoint not ready")
	}})
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
		def{id: "a", uses: "x.status", until: `outputs.ready`, interval: time.Millisecond, untilFor: 30 * time.Millisecond,
			retry: runbook.Retry{Attempts: 100, Delay: 10 * time.Millisecond}})
	res := mustRun(t, Options{Runbook: rb, Invoker: inv})
	expectStatus(t, res, StatusFailed)
	if res.Failure.Code != "UntilTimeout" || !strings.Contains(res.Failure.Message, "endpoint not ready") {
		t.Fatalf("failure %+v", res.Failure)
	}
	if n := len(inv.callsOf("a", false)); n >= 100 {
		t.Fatalf("%d attempts: retries were not bounded by until.timeout", n)
	}
}

func TestContinueOnError(t *testing.T) {
	inv := newInvoker(map[string]action{"x.bad": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
		return nil, fatalErr("nope")
	}})
	rb := build(t, rbOpts{},
		def{id: "a", uses: "x.bad", cont: true, rollback: &rbDef{uses: "x.undo"}},
		def{id: "b", uses: "x.good", ifSrc: `steps.a.status == "failed"`},
	)
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, OnEvent: rec.on})
	expectStatus(t, res, StatusSucceeded)
	a := stepStatus(t, res, "a")
	if a.Status != StepFailed || !a.Continued || a.Err == nil {
		t.Fatalf("a: %+v", a)
	}
	if len(inv.callsOf("b", false)) != 1 {
		t.Fatal("the run did not go on after a continued failure")
	}
	if ev := rec.find(journal.StepFailed, "a"); len(ev) != 1 || !ev[0].Continued {
		t.Fatalf("step_failed: %+v", ev)
	}
	if len(inv.rollbackOrder()) != 0 {
		t.Fatal("a successful run rolled back")
	}
}

// rollbackRunbook: a, then a parallel group (c1, c2), then d, then e which
// fails. Every completed step has a rollback that reads its own outputs.
func rollbackRunbook(t *testing.T, policy runbook.FailurePolicy) *runbook.Runbook {
	undo := func(id string) *rbDef {
		return &rbDef{uses: "x.undo", with: map[string]any{"restore": "${{ steps." + id + ".outputs.previous }}", "own": "${{ outputs.previous }}"}}
	}
	return build(t, rbOpts{onFailure: policy},
		def{id: "a", uses: "x.do", rollback: undo("a")},
		def{id: "g", parallel: []def{
			{id: "c1", uses: "x.do", rollback: undo("c1")},
			{id: "c2", uses: "x.do", rollback: undo("c2")},
		}},
		def{id: "d", uses: "x.do", rollback: undo("d")},
		def{id: "e", uses: "x.fail", rollback: undo("e")},
	)
}

func TestFailureRollsBackInReverseCompletionOrder(t *testing.T) {
	c1Done := make(chan struct{})
	inv := newInvoker(map[string]action{
		"x.do": func(ctx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			if c.StepID == "c2" {
				<-c1Done // c2 completes after c1
			}
			return map[string]any{"previous": "before-" + c.StepID}, nil
		},
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return nil, fatalErr("boom") },
	})
	rec := &recorder{}
	var once sync.Once
	onEvent := func(ev Event) {
		rec.on(ev)
		if ev.Type == journal.StepSucceeded && ev.Step == "c1" {
			once.Do(func() { close(c1Done) })
		}
	}
	res := mustRun(t, Options{Runbook: rollbackRunbook(t, ""), Invoker: inv, OnEvent: onEvent, RunID: "r"})
	expectStatus(t, res, StatusFailed)
	if !res.RolledBack || res.ExitCode() != 1 {
		t.Fatalf("rolled back %v, exit %d", res.RolledBack, res.ExitCode())
	}
	if diff := cmp.Diff([]string{"d", "c2", "c1", "a"}, inv.rollbackOrder()); diff != "" {
		t.Fatalf("rollback order (-want +got):\n%s", diff)
	}
	for _, id := range []string{"a", "c1", "c2", "d"} {
		c := inv.callsOf(id, true)[0]
		if c.Params["restore"] != "before-"+id || c.Params["own"] != "before-"+id {
			t.Errorf("rollback of %s params %v", id, c.Params)
		}
		if c.IdempotencyKey != "r/"+id+"/rollback" || !c.Rollback || c.Attempt != 1 {
			t.Errorf("rollback call %+v", c)
		}
		if r := stepStatus(t, res, id).Rollback; r == nil || r.Status != StepSucceeded {
			t.Errorf("%s rollback result %+v", id, r)
		}
	}
	if len(inv.callsOf("e", true)) != 0 {
		t.Fatal("the failed step's own rollback ran")
	}
	if ev := rec.find(journal.RunFinished, "*"); len(ev) != 1 || ev[0].Status != "failed" || !ev[0].RolledBack || ev[0].Error == nil {
		t.Fatalf("run_finished: %+v", ev)
	}
	if len(rec.find(journal.RollbackStarted, "*")) != 4 || len(rec.find(journal.RollbackSucceeded, "*")) != 4 {
		t.Fatal("want 4 rollback_started and 4 rollback_succeeded")
	}
}

// A rollback with `when: attempted` also compensates its step when the step
// failed after an attempt started (an action may change something and then
// fail), in the place of its failure in the reverse order; a failed step
// whose rollback says nothing is not compensated, nor a step that never ran.
func TestRollbackWhenAttemptedCompensatesAFailedStep(t *testing.T) {
	undo := func(attempted bool) *rbDef {
		return &rbDef{uses: "x.undo", with: map[string]any{"restore": "${{ inputs.n }}"}, attempted: attempted}
	}
	inv := newInvoker(map[string]action{
		"x.do": ok(map[string]any{}),
		"x.half": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			return nil, fatalErr("changed one of two records, then failed")
		},
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return nil, fatalErr("boom") },
	})
	rb := build(t, rbOpts{inputs: []*runbook.Input{{Name: "n", Type: runbook.TypeNumber, Default: 1.0}}},
		def{id: "a", uses: "x.do", rollback: undo(false)},
		def{id: "tolerated", uses: "x.half", cont: true, rollback: undo(true)},
		def{id: "quiet", uses: "x.half", cont: true, rollback: undo(false)},
		def{id: "g", parallel: []def{
			{id: "ok", uses: "x.do", rollback: undo(false)},
			{id: "half", uses: "x.half", rollback: undo(true)},
		}},
		def{id: "never", uses: "x.fail", rollback: undo(true)},
	)
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, RunID: "r"})
	expectStatus(t, res, StatusFailed)
	if diff := cmp.Diff([]string{"half", "ok", "tolerated", "a"}, sortedByGroupOrder(inv.rollbackOrder(), "half", "ok")); diff != "" {
		t.Fatalf("rollback order (-want +got):\n%s", diff)
	}
	for _, id := range []string{"half", "tolerated"} {
		if r := stepStatus(t, res, id); r.Status != StepFailed || r.Rollback == nil || r.Rollback.Status != StepSucceeded {
			t.Errorf("%s: status %s, rollback %+v; want failed and compensated", id, r.Status, r.Rollback)
		}
	}
	if len(inv.callsOf("quiet", true)) != 0 || len(inv.callsOf("never", true)) != 0 {
		t.Fatal("a failed step was compensated without when: attempted, or one that was never attempted")
	}
}

// sortedByGroupOrder puts a and b, siblings whose relative completion order
// the test does not fix, in the order given, where both appear.
func sortedByGroupOrder(order []string, a, b string) []string {
	out := slices.Clone(order)
	i, j := slices.Index(out, a), slices.Index(out, b)
	if i >= 0 && j >= 0 && i > j {
		out[i], out[j] = out[j], out[i]
	}
	return out
}

func TestFailingRollbackIsRecordedAndOthersStillRun(t *testing.T) {
	inv := newInvoker(map[string]action{
		"x.do":   ok(map[string]any{"previous": "p"}),
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return nil, fatalErr("boom") },
		"x.undo": func(ctx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			if c.StepID == "c1" {
				return nil, fatalErr("cannot restore c1")
			}
			return nil, nil
		},
	})
	res := mustRun(t, Options{Runbook: rollbackRunbook(t, runbook.OnFailureRollback), Invoker: inv})
	expectStatus(t, res, StatusRollbackFailed)
	if res.ExitCode() != 4 || res.RolledBack {
		t.Fatalf("exit %d rolledBack %v", res.ExitCode(), res.RolledBack)
	}
	if got := inv.rollbackOrder(); len(got) != 4 || got[3] != "a" {
		t.Fatalf("rollbacks after the failing one did not run: %v", got)
	}
	if len(res.RollbackFailures) != 1 || res.RollbackFailures[0].Step != "c1" || !res.RollbackFailures[0].Rollback {
		t.Fatalf("rollback failures %+v", res.RollbackFailures)
	}
	if r := stepStatus(t, res, "c1").Rollback; r.Status != StepFailed || r.Err == nil {
		t.Fatalf("c1 rollback %+v", r)
	}
	if res.Err == nil {
		t.Fatal("no run error")
	}
}

func TestOnFailureStopDoesNotCompensate(t *testing.T) {
	inv := newInvoker(map[string]action{
		"x.do":   ok(map[string]any{"previous": "p"}),
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return nil, fatalErr("boom") },
	})
	res := mustRun(t, Options{Runbook: rollbackRunbook(t, runbook.OnFailureStop), Invoker: inv})
	expectStatus(t, res, StatusFailed)
	if res.RolledBack || len(inv.rollbackOrder()) != 0 || res.ExitCode() != 1 {
		t.Fatalf("stop policy rolled back: %v", inv.rollbackOrder())
	}
}

func TestParallelGroupWithOneFailingChild(t *testing.T) {
	release := make(chan struct{})
	var slowCtxErr atomic.Value
	inv := newInvoker(map[string]action{
		"x.slow": func(ctx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
			<-release // finishes only after its sibling failed
			slowCtxErr.Store(fmt.Sprint(ctx.Err()))
			return map[string]any{"previous": c.StepID}, nil
		},
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			return nil, fatalErr("child broke")
		},
	})
	rb := build(t, rbOpts{},
		def{id: "g", parallel: []def{
			{id: "c1", uses: "x.slow", rollback: &rbDef{uses: "x.undo"}},
			{id: "c2", uses: "x.fail", rollback: &rbDef{uses: "x.undo"}},
			{id: "c3", uses: "x.slow", rollback: &rbDef{uses: "x.undo"}},
		}},
		def{id: "after", uses: "x.next"},
	)
	var once sync.Once
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, OnEvent: func(ev Event) {
		if ev.Type == journal.StepFailed && ev.Step == "c2" {
			once.Do(func() { close(release) })
		}
	}})
	expectStatus(t, res, StatusFailed)
	if got := slowCtxErr.Load(); got != "<nil>" {
		t.Fatalf("a running sibling's context was cancelled: %v", got)
	}
	for id, want := range map[string]StepStatus{"g": StepFailed, "c1": StepSucceeded, "c2": StepFailed, "c3": StepSucceeded, "after": StepPending} {
		if got := stepStatus(t, res, id); got.Status != want || (id != "g" && id != "after" && got.Group != "g") {
			t.Errorf("%s: %s (group %q), want %s", id, got.Status, got.Group, want)
		}
	}
	got := inv.rollbackOrder()
	if len(got) != 2 || got[0] == "c2" || got[1] == "c2" {
		t.Fatalf("compensated %v, want c1 and c3", got)
	}
	if res.Failure.Step != "g" || res.Failure.Code != "ChildFailed" {
		t.Fatalf("failure %+v", res.Failure)
	}
}

func TestNoChildStartsAfterASiblingFailed(t *testing.T) {
	inv := newInvoker(map[string]action{
		"x.fail": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
			return nil, fatalErr("broke")
		},
	})
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
		def{id: "g", maxPar: 1, parallel: []def{{id: "c1", uses: "x.ok"}, {id: "c2", uses: "x.fail"}, {id: "c3", uses: "x.ok"}}})
	res := mustRun(t, Options{Runbook: rb, Invoker: inv})
	expectStatus(t, res, StatusFailed)
	if len(inv.callsOf("c3", false)) != 0 || stepStatus(t, res, "c3").Status != StepPending {
		t.Fatal("a child started after its sibling failed")
	}
}

func TestMaxParallelIsRespected(t *testing.T) {
	var running, peak atomic.Int32
	release := make(chan struct{})
	inv := newInvoker(map[string]action{"x.work": func(ctx context.Context, c Call, _ func(spec.Progress)) (map[string]any, error) {
		now := running.Add(1)
		defer running.Add(-1)
		for {
			p := peak.Load()
			if now <= p || peak.CompareAndSwap(p, now) {
				break
			}
		}
		<-release
		return nil, nil
	}})
	var children []def
	for i := range 7 {
		children = append(children, def{id: fmt.Sprintf("c%d", i), uses: "x.work"})
	}
	rb := build(t, rbOpts{}, def{id: "g", maxPar: 2, parallel: children})
	e, err := New(Options{Runbook: rb, Invoker: inv})
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan *Result)
	go func() { res, _ := e.Run(context.Background()); done <- res }()
	// Hold the first children until two run at once, then give an engine
	// that ignored the limit time to start more before releasing them.
	for waited := 0; running.Load() < 2; waited++ {
		if waited > 10000 {
			close(release)
			t.Fatalf("two children never ran at once (peak %d)", peak.Load())
		}
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	close(release)
	res := <-done
	expectStatus(t, res, StatusSucceeded)
	if p := peak.Load(); p != 2 {
		t.Fatalf("peak concurrency %d, want 2", p)
	}
	if len(inv.calls) != 7 {
		t.Fatalf("%d children ran", len(inv.calls))
	}
}

func TestProgressEventsAreForwarded(t *testing.T) {
	inv := newInvoker(map[string]action{"x.a": func(ctx context.Context, c Call, progress func(spec.Progress)) (map[string]any, error) {
		progress(spec.Progress{Message: "switching over", Fields: map[string]any{"status": "switching-over"}})
		return nil, nil
	}})
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: build(t, rbOpts{}, def{id: "a", uses: "x.a"}), Invoker: inv, OnEvent: rec.on})
	expectStatus(t, res, StatusSucceeded)
	p := rec.find(journal.Progress, "a")
	if len(p) != 1 || p[0].Message != "switching over" || p[0].Fields["status"] != "switching-over" || p[0].Attempt != 1 {
		t.Fatalf("progress events %+v", p)
	}
}

func TestCoreBuiltins(t *testing.T) {
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop, inputs: []*runbook.Input{{Name: "n", Type: runbook.TypeNumber, Default: 2.0, HasDefault: true}}},
		def{id: "l", uses: "core.log", with: map[string]any{"message": "n is ${{ inputs.n }}", "level": "warn"}},
		def{id: "s", uses: "core.sleep", with: map[string]any{"duration": "1ms"}},
		def{id: "ok", uses: "core.assert", with: map[string]any{"that": "${{ inputs.n == 2 }}", "message": "n must be 2"}},
		def{id: "bad", uses: "core.assert", with: map[string]any{"that": "${{ inputs.n > 5 }}", "message": "n must exceed 5"}, retry: runbook.Retry{Attempts: 3}},
	)
	rec := &recorder{}
	res := mustRun(t, Options{Runbook: rb, OnEvent: rec.on}) // no Invoker needed
	expectStatus(t, res, StatusFailed)
	if l := rec.find(journal.Log, "l"); len(l) != 1 || l[0].Message != "n is 2" || l[0].Level != "warn" {
		t.Fatalf("log events %+v", l)
	}
	for _, id := range []string{"l", "s", "ok"} {
		if stepStatus(t, res, id).Status != StepSucceeded {
			t.Errorf("%s: %s", id, stepStatus(t, res, id).Status)
		}
	}
	bad := stepStatus(t, res, "bad")
	if bad.Err == nil || bad.Err.Code != "AssertionFailed" || bad.Err.Message != "AssertionFailed: n must exceed 5" || bad.Attempts != 1 {
		t.Fatalf("failed assertion: %+v", bad.Err)
	}
	if _, err := New(Options{Runbook: build(t, rbOpts{}, def{id: "a", uses: "aws.x"})}); err == nil {
		t.Fatal("New accepted a plugin step without an Invoker")
	}
}

func TestSleepIsBoundedByTheStepTimeout(t *testing.T) {
	rb := build(t, rbOpts{onFailure: runbook.OnFailureStop},
		def{id: "s", uses: "core.sleep", with: map[string]any{"duration": "1h"}, timeout: 10 * time.Millisecond})
	res := mustRun(t, Options{Runbook: rb})
	expectStatus(t, res, StatusFailed)
	if res.Failure.Class != journal.ClassTimeout {
		t.Fatalf("failure %+v", res.Failure)
	}
}

func TestJournalFailureStopsTheRun(t *testing.T) {
	inv := newInvoker(nil)
	rb := build(t, rbOpts{}, def{id: "a", uses: "x.a"}, def{id: "b", uses: "x.b"})
	// Records: run_started, step_started a, attempt_started a,
	// step_succeeded a, step_started b (5th, fails).
	mem := &memWriter{failAt: 5}
	res := mustRun(t, Options{Runbook: rb, Invoker: inv, Journal: mem})
	expectStatus(t, res, StatusInterrupted)
	if len(inv.callsOf("b", false)) != 0 {
		t.Fatal("an action ran after its start could not be journaled")
	}
	if res.Err == nil || !strings.Contains(res.Err.Error(), "disk full") {
		t.Fatalf("err %v", res.Err)
	}
	if len(inv.rollbackOrder()) != 0 {
		t.Fatal("a journal failure triggered a rollback")
	}
	// A journal that cannot record the start fails Run itself.
	e, _ := New(Options{Runbook: rb, Invoker: inv, Journal: &memWriter{failAt: 1}})
	if _, err := e.Run(context.Background()); err == nil {
		t.Fatal("Run started without a journaled run_started")
	}
}

func TestInvokerPanicFailsTheStepNotTheEngine(t *testing.T) {
	inv := newInvoker(map[string]action{"x.a": func(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
		panic("nil map")
	}})
	res := mustRun(t, Options{Runbook: build(t, rbOpts{}, def{id: "a", uses: "x.a"}), Invoker: inv})
	expectStatus(t, res, StatusFailed)
	if res.Failure.Code != "Panic" {
		t.Fatalf("failure %+v", res.Failure)
	}
}

func TestEngineRunsOnce(t *testing.T) {
	e, err := New(Options{Runbook: build(t, rbOpts{}, def{id: "a", uses: "core.log", with: map[string]any{"message": "x"}})})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
	if _, err := e.Run(context.Background()); err == nil {
		t.Fatal("second Run accepted")
	}
}

func TestRequiredInputs(t *testing.T) {
	rb := build(t, rbOpts{inputs: []*runbook.Input{{Name: "target", Type: runbook.TypeString, Required: true}}}, def{id: "a", uses: "core.log"})
	e, _ := New(Options{Runbook: rb})
	if _, err := e.Run(context.Background()); err == nil || !strings.Contains(err.Error(), "target") {
		t.Fatalf("missing required input: %v", err)
	}
}
