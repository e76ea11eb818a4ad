package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/internal/report"
	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// The journals in these tests are written by the real engine running real
// (parsed and validated) runbooks; only the plugin is in-process.

const secretToken = "tok-s3cr3t-0123456789"

// testCatalog describes a plugin "test" whose actions take any parameters.
type testCatalog struct{}

func (testCatalog) Plugin(name string) (*spec.Description, error) {
	if name != "test" {
		return nil, fmt.Errorf("no plugin %s", name)
	}
	open := func() *schema.Schema { return &schema.Schema{Type: schema.Object} }
	var actions []spec.ActionSpec
	for _, a := range []string{"echo", "fail", "fatal", "block"} {
		actions = append(actions, spec.ActionSpec{Name: a, Params: open(), Outputs: open(), Idempotent: a != "fatal", SupportsPlan: true})
	}
	return &spec.Description{Name: "test", Version: "1", ProtocolVersion: 1, Actions: actions}, nil
}

func parseRunbook(t *testing.T, src string) *runbook.Runbook {
	t.Helper()
	path := filepath.Join(t.TempDir(), "rb.yaml")
	if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	rb, diags := runbook.Parse(path, []byte(src), runbook.Options{Catalog: func([]*runbook.PluginRef) runbook.Catalog { return testCatalog{} }})
	if diags.HasErrors() || rb == nil {
		t.Fatalf("runbook: %v", diags)
	}
	return rb
}

// testInvoker runs the test plugin's actions in-process.
type testInvoker struct {
	mu      sync.Mutex
	block   chan struct{} // block waits until this is closed (or ctx ends)
	started chan string   // receives the step id when block starts
}

func (f *testInvoker) Invoke(ctx context.Context, c engine.Call, progress func(spec.Progress)) (map[string]any, error) {
	switch c.Action {
	case "echo":
		if m, ok := c.Params["msg"].(string); ok {
			progress(spec.Progress{Time: time.Now(), Message: m, Fields: map[string]any{"step": c.StepID}})
		}
		return c.Params, nil
	case "fail":
		times, _ := c.Params["times"].(float64)
		if times == 0 || c.Attempt <= int(times) {
			return nil, &spec.Error{Code: "Throttling", Message: fmt.Sprintf("slow down (attempt %d)", c.Attempt), Retryable: true}
		}
		return map[string]any{"attempt": c.Attempt}, nil
	case "fatal":
		return nil, &spec.Error{Code: "Broken", Message: "it broke, token " + fmt.Sprint(c.Params["token"])}
	case "block":
		progress(spec.Progress{Time: time.Now(), Message: "working"})
		if f.started != nil {
			f.started <- c.StepID
		}
		select {
		case <-f.block:
			return map[string]any{}, nil
		case <-ctx.Done():
			return nil, ctx.Err()
		}
	}
	return nil, fmt.Errorf("no action %s", c.Action)
}

func (f *testInvoker) Plan(context.Context, engine.PlanCall) (*spec.Plan, error) {
	return &spec.Plan{}, nil
}

type runOpts struct {
	runID     string
	inputs    map[string]any
	approvals engine.Approvals
	resume    *engine.ResumeOptions
	invoker   engine.Invoker
}

// runEngine runs (or resumes) rb with a journal in store.
func runEngine(t *testing.T, store *journal.FileStore, rb *runbook.Runbook, o runOpts) *engine.Result {
	t.Helper()
	ctx := context.Background()
	var w journal.Writer
	var err error
	if o.resume != nil {
		w, err = store.Reopen(ctx, o.runID)
	} else {
		w, err = store.Create(ctx, o.runID)
	}
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	inv := o.invoker
	if inv == nil {
		inv = &testInvoker{}
	}
	eng, err := engine.New(engine.Options{Runbook: rb, Inputs: o.inputs, Invoker: inv, Journal: w, RunID: o.runID,
		Approvals: o.approvals, EngineVersion: "test"})
	if err != nil {
		t.Fatal(err)
	}
	var res *engine.Result
	if o.resume != nil {
		res, err = eng.Resume(ctx, *o.resume)
	} else {
		res, err = eng.Run(ctx)
	}
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func openJournal(t *testing.T, store *journal.FileStore, runID string) *journal.Journal {
	t.Helper()
	j, err := store.Open(context.Background(), runID)
	if err != nil {
		t.Fatal(err)
	}
	return j
}

func renderBoth(t *testing.T, r *report.Run) (md, html string) {
	t.Helper()
	var a, b bytes.Buffer
	if err := report.Markdown(&a, r); err != nil {
		t.Fatalf("markdown: %v", err)
	}
	if err := report.HTML(&b, r); err != nil {
		t.Fatalf("html: %v", err)
	}
	return a.String(), b.String()
}

func stepOf(t *testing.T, r *report.Run, id string) report.Step {
	t.Helper()
	for _, s := range r.Steps {
		if s.ID == id {
			return s
		}
	}
	t.Fatalf("no step %s in the report", id)
	return report.Step{}
}

const successRunbook = `version: 1
name: report-success
inputs:
  token: { type: string, secret: true }
plugins:
  test: { command: runbook-plugin-test }
steps:
  - id: first
    name: First step
    uses: test.echo
    with: { msg: "using ${{ inputs.token }}", token: "${{ inputs.token }}" }
    milestone: first done
  - id: flaky
    uses: test.fail
    with: { times: 2 }
    retry: { attempts: 3, delay: 100ms, jitter: false }
  - id: traffic
    parallel:
      - { id: dns_a, uses: test.echo, with: { msg: a }, milestone: traffic switched, if: 'inputs.token != ""' }
      - { id: dns_b, uses: test.echo, with: { msg: b }, milestone: traffic switched, if: 'inputs.token != ""' }
  - id: unplanned
    if: inputs.token == ""
    uses: test.echo
  - id: confirm
    uses: core.approve
    with: { message: "Go on with ${{ inputs.token }}?" }
  - id: last
    uses: test.echo
outputs:
  secret_out: ${{ inputs.token }}
  plain: "${{ steps.flaky.status }}"
`

func TestReportOfASuccessfulRun(t *testing.T) {
	rb := parseRunbook(t, successRunbook)
	store := journal.NewFileStore(t.TempDir())
	store.NoSync = true
	const id = "20250611T101500Z-00000001"
	res := runEngine(t, store, rb, runOpts{runID: id, inputs: map[string]any{"token": secretToken},
		approvals: engine.Approvals{AutoApprove: true, By: "alice"}})
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("run %s: %v", res.Status, res.Err)
	}
	j := openJournal(t, store, id)
	r := reportRun(j, rb, false)
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if r.Status != report.RunSucceeded || r.Finished.IsZero() || r.Runbook != "report-success" || r.RunbookHash != rb.Hash {
		t.Errorf("run: status %s finished %v runbook %s hash %s", r.Status, r.Finished, r.Runbook, r.RunbookHash)
	}
	var ids []string
	for _, s := range r.Steps {
		ids = append(ids, s.ID+":"+s.Group+":"+string(s.Status))
	}
	want := "first::succeeded flaky::succeeded traffic::succeeded dns_a:traffic:succeeded dns_b:traffic:succeeded unplanned::skipped confirm::succeeded last::succeeded"
	if got := strings.Join(ids, " "); got != want {
		t.Errorf("steps:\n %s\nwant\n %s", got, want)
	}
	if g := stepOf(t, r, "traffic"); !g.Parallel || g.Uses != "" {
		t.Errorf("group: %+v", g)
	}
	flaky := stepOf(t, r, "flaky")
	if len(flaky.Attempts) != 3 {
		t.Fatalf("flaky attempts: %+v", flaky.Attempts)
	}
	for i, a := range flaky.Attempts {
		if a.N != i+1 || a.Started.IsZero() || a.Finished.Before(a.Started) {
			t.Errorf("attempt %d: %+v", i+1, a)
		}
		if (a.Error != "") != (i < 2) || (i < 2 && (!a.Retryable || !strings.Contains(a.Error, "Throttling: slow down"))) {
			t.Errorf("attempt %d error %q retryable %v", i+1, a.Error, a.Retryable)
		}
	}
	if flaky.Attempts[2].Finished != flaky.Finished {
		t.Errorf("last attempt should end when the step succeeded")
	}
	if s := stepOf(t, r, "unplanned"); s.SkipReason == "" || s.Started.IsZero() {
		t.Errorf("skipped step: %+v", s)
	}
	// One approval, answered by --auto-approve on alice's behalf.
	if len(r.Approvals) != 1 || r.Approvals[0].Step != "confirm" || r.Approvals[0].GrantedAt.IsZero() || r.Approvals[0].By != "--auto-approve (alice)" {
		t.Errorf("approvals: %+v", r.Approvals)
	}
	// Milestones: the first of the alternatives to succeed marks it.
	if len(r.Milestones) != 2 || r.Milestones[0].Name != "first done" || r.Milestones[1].Name != "traffic switched" {
		t.Fatalf("milestones: %+v", r.Milestones)
	}
	a, b := stepOf(t, r, "dns_a"), stepOf(t, r, "dns_b")
	first := a
	if b.Finished.Before(a.Finished) {
		first = b
	}
	if r.Milestones[1].Step != first.ID || !r.Milestones[1].At.Equal(first.Finished) {
		t.Errorf("traffic switched marked by %s at %v, want %s at %v", r.Milestones[1].Step, r.Milestones[1].At, first.ID, first.Finished)
	}
	// Inputs and outputs: secrets as ***.
	if len(r.Inputs) != 1 || r.Inputs[0].Value != "***" || !r.Inputs[0].Secret {
		t.Errorf("inputs: %+v", r.Inputs)
	}
	outs := map[string]report.Output{}
	for _, o := range r.Outputs {
		outs[o.Name] = o
	}
	if !outs["secret_out"].Secret || outs["plain"].Value != "succeeded" {
		t.Errorf("outputs: %+v", r.Outputs)
	}
	if len(r.Events) != len(j.Records) {
		t.Errorf("%d events for %d records", len(r.Events), len(j.Records))
	}
	md, html := renderBoth(t, r)
	for name, text := range map[string]string{"markdown": md, "html": html} {
		if strings.Contains(text, secretToken) {
			t.Errorf("the secret appears in the %s report", name)
		}
		for _, want := range []string{"flaky", "dns_b", "traffic switched", "Throttling: slow down (attempt 1)"} {
			if !strings.Contains(text, want) {
				t.Errorf("%s report lacks %q", name, want)
			}
		}
	}
	if !strings.Contains(md, "using ***") {
		t.Error("the redacted progress message is not in the appendix")
	}
}

const failingRunbook = `version: 1
name: report-failure
plugins:
  test: { command: runbook-plugin-test }
steps:
  - id: db
    uses: test.echo
    rollback: { uses: test.fatal, with: { token: x } }
  - id: svc
    uses: test.echo
    rollback: { uses: test.echo }
  - id: broken
    uses: test.fail
    with: { times: 0 }
    retry: { attempts: 2, delay: 100ms, jitter: false }
  - id: never
    uses: test.echo
`

func TestReportOfAFailedRunWithAFailedRollback(t *testing.T) {
	rb := parseRunbook(t, failingRunbook)
	store := journal.NewFileStore(t.TempDir())
	store.NoSync = true
	const id = "20250611T101500Z-00000002"
	res := runEngine(t, store, rb, runOpts{runID: id})
	if res.Status != engine.StatusRollbackFailed {
		t.Fatalf("run %s", res.Status)
	}
	r := reportRun(openJournal(t, store, id), rb, false)
	if r.Status != report.RunRollbackFailed || !strings.Contains(r.Error, "step broken failed") && !strings.Contains(r.Error, "Throttling") {
		t.Errorf("status %s error %q", r.Status, r.Error)
	}
	if !strings.Contains(r.Error, "the rollback of db failed") {
		t.Errorf("error does not name the failed rollback: %q", r.Error)
	}
	if s := stepOf(t, r, "never"); s.Status != report.StepPending || !s.Started.IsZero() {
		t.Errorf("a step that never ran: %+v", s)
	}
	broken := stepOf(t, r, "broken")
	if broken.Status != report.StepFailed || len(broken.Attempts) != 2 || broken.Error == "" || broken.Attempts[1].Error == "" {
		t.Errorf("failed step: %+v", broken)
	}
	db, svc := stepOf(t, r, "db"), stepOf(t, r, "svc")
	if db.Rollback == nil || db.Rollback.Status != report.StepFailed || !strings.Contains(db.Rollback.Error, "Broken: it broke") {
		t.Errorf("db rollback: %+v", db.Rollback)
	}
	if svc.Rollback == nil || svc.Rollback.Status != report.StepSucceeded || svc.Rollback.Finished.After(db.Rollback.Started) {
		t.Errorf("svc rollback (runs before db's): %+v", svc.Rollback)
	}
	if broken.Rollback != nil {
		t.Errorf("the failed step was not compensated, got %+v", broken.Rollback)
	}
	md, _ := renderBoth(t, r)
	for _, want := range []string{"rollback failed", "never"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q", want)
		}
	}
}

const pausingRunbook = `version: 1
name: report-paused
plugins:
  test: { command: runbook-plugin-test }
steps:
  - id: before
    uses: test.echo
  - id: confirm
    uses: core.approve
    with: { message: "Switch?" }
  - id: work
    uses: test.block
  - id: after
    uses: test.echo
`

// A run that pauses for approval, is resumed and approved, crashes in the
// middle of an attempt, and is resumed again.
func TestReportOfAPausedCrashedAndResumedRun(t *testing.T) {
	rb := parseRunbook(t, pausingRunbook)
	dir := t.TempDir()
	store := journal.NewFileStore(dir)
	store.NoSync = true
	const id = "20250611T101500Z-00000003"
	if res := runEngine(t, store, rb, runOpts{runID: id}); res.Status != engine.StatusPaused {
		t.Fatalf("first run %s", res.Status)
	}
	r := reportRun(openJournal(t, store, id), rb, false)
	if r.Status != report.RunPaused || !r.Finished.IsZero() || stepOf(t, r, "confirm").Status != report.StepWaiting {
		t.Errorf("paused: status %s finished %v confirm %s", r.Status, r.Finished, stepOf(t, r, "confirm").Status)
	}
	if len(r.Approvals) != 1 || !r.Approvals[0].GrantedAt.IsZero() {
		t.Errorf("pending approval: %+v", r.Approvals)
	}

	// Resume with the approval; "work" blocks until we simulate a crash by
	// keeping only the records written so far.
	inv := &testInvoker{block: make(chan struct{}), started: make(chan string, 1)}
	done := make(chan *engine.Result)
	go func() {
		done <- runEngine(t, store, rb, runOpts{runID: id, invoker: inv,
			resume: &engine.ResumeOptions{Journal: openJournal(t, store, id), Approved: map[string]bool{"confirm": true}}})
	}()
	<-inv.started
	path := filepath.Join(dir, "runs", id+".jsonl")
	crashed, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	close(inv.block)
	<-done
	if err := os.WriteFile(path, crashed, 0o600); err != nil {
		t.Fatal(err)
	}
	j := openJournal(t, store, id)
	if last := j.Records[len(j.Records)-1]; last.Type != journal.Progress || last.Step != "work" {
		t.Fatalf("the simulated crash should leave work's attempt open after a progress record, last record %s %s", last.Type, last.Step)
	}
	r = reportRun(j, rb, false)
	if r.Status != report.RunIncomplete || !r.Finished.IsZero() {
		t.Errorf("crashed: status %s finished %v", r.Status, r.Finished)
	}
	if live := reportRun(j, rb, true); live.Status != report.RunRunning {
		t.Errorf("with the lock held: status %s", live.Status)
	}
	if w := stepOf(t, r, "work"); w.Status != report.StepRunning || len(w.Attempts) != 1 || !w.Attempts[0].Finished.IsZero() {
		t.Errorf("work, cut off: %+v", w)
	}

	// Resume after the crash: the idempotent action runs again.
	if res := runEngine(t, store, rb, runOpts{runID: id, invoker: &testInvoker{block: closed()},
		resume: &engine.ResumeOptions{Journal: openJournal(t, store, id)}}); res.Status != engine.StatusSucceeded {
		t.Fatalf("last resume %s: %v", res.Status, res.Err)
	}
	j = openJournal(t, store, id)
	r = reportRun(j, rb, false)
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	if r.Status != report.RunSucceeded || len(r.Resumes) != 2 {
		t.Errorf("status %s, %d resumes", r.Status, len(r.Resumes))
	}
	if len(r.Approvals) != 1 || r.Approvals[0].GrantedAt.IsZero() || r.Approvals[0].By != "--approve confirm" && !strings.HasPrefix(r.Approvals[0].By, "--approve confirm") {
		t.Errorf("approval asked again after the pause is one approval: %+v", r.Approvals)
	}
	if !r.Approvals[0].GrantedAt.After(r.Resumes[0]) || !r.Approvals[0].RequestedAt.Before(r.Resumes[0]) {
		t.Errorf("approval requested before the resume and granted after it: %+v, resumes %v", r.Approvals[0], r.Resumes)
	}
	w := stepOf(t, r, "work")
	if w.Status != report.StepSucceeded || len(w.Attempts) != 2 {
		t.Fatalf("work: %+v", w)
	}
	// The cut-off attempt ends at the last record before the second resume.
	var before time.Time
	for i, rec := range j.Records {
		if rec.Type == journal.RunResumed && rec.Time.Equal(r.Resumes[1]) {
			before = j.Records[i-1].Time
		}
	}
	if a := w.Attempts[0]; !a.Finished.Equal(before) || !a.Finished.After(a.Started) || !strings.Contains(a.Error, "cut off") {
		t.Errorf("cut-off attempt %+v, want it to end at %v", a, before)
	}
	if a := w.Attempts[1]; a.N != 2 || a.Error != "" || a.Finished.IsZero() {
		t.Errorf("second attempt %+v", a)
	}
	if _, html := renderBoth(t, r); !strings.Contains(html, "cut off") {
		t.Error("the HTML report does not say the attempt was cut off")
	}
}

func closed() chan struct{} {
	c := make(chan struct{})
	close(c)
	return c
}

func TestReportWithoutTheRunbook(t *testing.T) {
	rb := parseRunbook(t, successRunbook)
	store := journal.NewFileStore(t.TempDir())
	store.NoSync = true
	const id = "20250611T101500Z-00000004"
	runEngine(t, store, rb, runOpts{runID: id, inputs: map[string]any{"token": secretToken}, approvals: engine.Approvals{AutoApprove: true}})
	r := reportRun(openJournal(t, store, id), nil, false)
	if err := r.Check(); err != nil {
		t.Fatal(err)
	}
	var ids []string
	for _, s := range r.Steps {
		ids = append(ids, s.ID)
	}
	// Document order as the journal first mentions the steps; children
	// after their group (their order is whichever started first).
	got := strings.Join(ids, " ")
	if !strings.HasPrefix(got, "first flaky traffic dns_") || !strings.HasSuffix(got, " unplanned confirm last") {
		t.Errorf("steps %s", got)
	}
	if g := stepOf(t, r, "traffic"); !g.Parallel {
		t.Errorf("group not recognised: %+v", g)
	}
	if s := stepOf(t, r, "first"); s.Uses != "test.echo" {
		t.Errorf("uses: %q", s.Uses)
	}
	// Without the runbook there are no milestones, and outputs cannot be
	// known secret, but the engine already wrote them as ***.
	if len(r.Milestones) != 0 {
		t.Errorf("milestones without a runbook: %+v", r.Milestones)
	}
	md, html := renderBoth(t, r)
	if strings.Contains(md+html, secretToken) {
		t.Error("secret in the report")
	}
}

// The command itself: a runbook of built-ins only (no plugin process), run
// through the CLI, then reported in both formats.
func TestReportCommand(t *testing.T) {
	dir := t.TempDir()
	rbPath := filepath.Join(dir, "rb.yaml")
	src := `version: 1
name: cli-report
inputs:
  key: { type: string, secret: true }
steps:
  - id: hello
    uses: core.log
    with: { message: "hello ${{ inputs.key }}" }
    milestone: said hello
  - id: wait
    uses: core.sleep
    with: { duration: 10ms }
  - id: ok
    uses: core.approve
    with: { message: "fine?" }
`
	if err := os.WriteFile(rbPath, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	ctx := context.Background()
	io, _, out, errOut := TestStreams()
	const id = "20250611T101500Z-0000abcd"
	if code := Run(ctx, io, []string{"run", rbPath, "--state", state, "--run-id", id, "--auto-approve", "--var", "key=" + secretToken}); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}

	io, _, out, errOut = TestStreams()
	if code := Run(ctx, io, []string{"report", id, "--state", state}); code != 0 {
		t.Fatalf("report: exit %d\n%s", code, errOut)
	}
	md := out.String()
	for _, want := range []string{"# Run " + id + ": cli-report", "said hello", "`wait`", "`key` (secret)"} {
		if !strings.Contains(md, want) {
			t.Errorf("markdown lacks %q:\n%s", want, md)
		}
	}
	if strings.Contains(md, secretToken) {
		t.Error("secret in the report")
	}

	htmlPath := filepath.Join(dir, "report.html")
	io, _, out, errOut = TestStreams()
	if code := Run(ctx, io, []string{"report", id, "--state", state, "-o", htmlPath}); code != 0 {
		t.Fatalf("report -o: exit %d\n%s", code, errOut)
	}
	page, err := os.ReadFile(htmlPath)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.HasPrefix(page, []byte("<!DOCTYPE html>")) && !bytes.HasPrefix(bytes.ToLower(page), []byte("<!doctype html>")) {
		t.Errorf("not an HTML page: %.80s", page)
	}
	if out.Len() != 0 || !strings.Contains(errOut.String(), "wrote "+htmlPath) {
		t.Errorf("stdout %q stderr %q", out, errOut)
	}

	// The runbook moved away: the report still renders from the journal.
	if err := os.Rename(rbPath, rbPath+".moved"); err != nil {
		t.Fatal(err)
	}
	io, _, out, errOut = TestStreams()
	if code := Run(ctx, io, []string{"report", id, "--state", state, "--format", "markdown"}); code != 0 {
		t.Fatalf("report without runbook: exit %d\n%s", code, errOut)
	}
	if !strings.Contains(errOut.String(), "could not be loaded") || !strings.Contains(out.String(), "`hello`") {
		t.Errorf("stderr %q\n%s", errOut, out)
	}
	io, _, out, errOut = TestStreams()
	if code := Run(ctx, io, []string{"report", id, "--state", state, "--runbook", rbPath + ".moved"}); code != 0 || !strings.Contains(out.String(), "said hello") {
		t.Errorf("--runbook: exit %d\n%s%s", code, out, errOut)
	}

	for _, args := range [][]string{
		{"report", "20250611T101500Z-ffffffff", "--state", state},
		{"report", id, "--state", state, "--format", "pdf"},
		{"report"},
	} {
		io, _, _, errOut = TestStreams()
		if code := Run(ctx, io, args); code != ExitUsage {
			t.Errorf("%v: exit %d, want %d\n%s", args, code, ExitUsage, errOut)
		}
	}
}

// The adapter's output for the report package is plain data: make sure it
// survives a JSON round trip without surprises (no channels, funcs...).
func TestReportRunIsPlainData(t *testing.T) {
	rb := parseRunbook(t, failingRunbook)
	store := journal.NewFileStore(t.TempDir())
	store.NoSync = true
	runEngine(t, store, rb, runOpts{runID: "20250611T101500Z-00000005"})
	r := reportRun(openJournal(t, store, "20250611T101500Z-00000005"), rb, false)
	if _, err := json.Marshal(r); err != nil {
		t.Fatal(err)
	}
}
