package s3store_test

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/journal/s3store"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sim/emulator"
)

// emu is one emulator shared by the package's tests; each test works in a
// bucket of its own.
var emu *emulator.Emulator

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	var log bytes.Buffer
	e, err := emulator.Start(ctx, emulator.Options{Log: &log})
	if err != nil {
		fmt.Fprintf(os.Stderr, "starting the emulator: %v\n%s", err, log.String())
		return 1
	}
	defer e.Stop()
	emu = e
	return m.Run()
}

const region = "eu-west-1"

// client is a fresh S3 client on the emulator, as another process or
// machine would have.
func client() *s3.Client {
	return s3.NewFromConfig(emu.Config(region), func(o *s3.Options) {
		o.UsePathStyle = true
		o.DisableLogOutputChecksumValidationSkipped = true
	})
}

// newBucket creates a bucket for one test.
func newBucket(t *testing.T) string {
	t.Helper()
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	name := "state-" + hex.EncodeToString(b)
	_, err := client().CreateBucket(context.Background(), &s3.CreateBucketInput{
		Bucket:                    aws.String(name),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)},
	})
	if err != nil {
		t.Fatal(err)
	}
	return name
}

// store is a new Store object on bucket/team/dr with a client of its own.
func store(bucket string, opts s3store.Options) *s3store.Store {
	return s3store.New(client(), bucket, "team/dr", opts)
}

func holder(runID, host string) journal.Holder {
	return journal.Holder{RunID: runID, PID: 4242, Host: host, User: "oncall", Command: "run failover.yaml"}
}

func ctxT(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	t.Cleanup(cancel)
	return ctx
}

// records is a small but complete run's journal.
func records(runID string) []journal.Record {
	t0 := time.Date(2025, 6, 11, 10, 15, 0, 0, time.UTC)
	return []journal.Record{
		{Seq: 1, Type: journal.RunStarted, Time: t0, RunID: runID, Run: &journal.RunInfo{
			Runbook: "spacelift-failover", RunbookPath: "/srv/runbooks/failover.yaml", RunbookHash: "9b1c", EngineVersion: "test",
			Inputs: []journal.Input{{Name: "dr_region", Value: "eu-west-3"}, {Name: "slack_webhook", Value: "***", Secret: true}},
		}},
		{Seq: 2, Type: journal.StepStarted, Time: t0.Add(time.Millisecond), RunID: runID, Step: "db", Uses: "aws.aurora_global_switchover"},
		{Seq: 3, Type: journal.AttemptStarted, Time: t0.Add(2 * time.Millisecond), RunID: runID, Step: "db", Uses: "aws.aurora_global_switchover", Attempt: 1},
		{Seq: 4, Type: journal.Progress, Time: t0.Add(time.Second), RunID: runID, Step: "db", Attempt: 1, Message: "switching over", Fields: map[string]any{"status": "switching-over"}},
		{Seq: 5, Type: journal.StepSucceeded, Time: t0.Add(70 * time.Second), RunID: runID, Step: "db", Attempt: 1,
			Duration: journal.Duration(70 * time.Second), Outputs: map[string]any{"writer_region": "eu-west-3", "members": []any{"a", "b"}}},
		{Seq: 6, Type: journal.ApprovalRequested, Time: t0.Add(71 * time.Second), RunID: runID, Step: "confirm", Uses: "core.approve", Attempt: 1, Message: "Switch DNS?"},
		{Seq: 7, Type: journal.RunPaused, Time: t0.Add(71 * time.Second), RunID: runID, Message: "waiting for approval of confirm"},
	}
}

// normalize passes records through JSON, as the journal stores them.
func normalize(t *testing.T, recs []journal.Record) []journal.Record {
	t.Helper()
	out := make([]journal.Record, len(recs))
	for i, r := range recs {
		b, err := json.Marshal(r)
		if err != nil {
			t.Fatal(err)
		}
		if err := json.Unmarshal(b, &out[i]); err != nil {
			t.Fatal(err)
		}
	}
	return out
}

func appendAll(t *testing.T, w journal.Writer, recs []journal.Record) {
	t.Helper()
	for _, r := range recs {
		if err := w.Append(r); err != nil {
			t.Fatalf("append %d (%s): %v", r.Seq, r.Type, err)
		}
	}
}

func TestParseURL(t *testing.T) {
	t.Parallel()
	good := map[string]struct{ bucket, prefix, region string }{
		"s3://team-state/dr/spacelift":               {"team-state", "dr/spacelift", ""},
		"s3://team-state/dr/spacelift/":              {"team-state", "dr/spacelift", ""},
		"s3://team-state":                            {"team-state", "", ""},
		"s3://team.state.example/x?region=eu-west-3": {"team.state.example", "x", "eu-west-3"},
	}
	for raw, want := range good {
		b, p, q, err := s3store.ParseURL(raw)
		if err != nil {
			t.Errorf("%s: %v", raw, err)
			continue
		}
		if b != want.bucket || p != want.prefix || q.Get("region") != want.region {
			t.Errorf("%s: got %q %q %q, want %+v", raw, b, p, q.Get("region"), want)
		}
	}
	bad := map[string]string{
		"https://team-state/dr":      "scheme",
		"s3://Team_State/dr":         "not a valid bucket name",
		"s3://ab/dr":                 "not a valid bucket name",
		"s3://team-state/dr//x":      "empty",
		"s3://team-state/dr/../x":    "'..'",
		"s3://team-state/dr?lease=1": "unknown parameter",
		"s3://user@team-state/dr":    "no user",
	}
	for raw, want := range bad {
		_, _, _, err := s3store.ParseURL(raw)
		if err == nil || !errors.Is(err, s3store.ErrBadURL) || !strings.Contains(err.Error(), want) {
			t.Errorf("%s: got %v, want an ErrBadURL mentioning %q", raw, err, want)
		}
	}
}

func TestJournalRoundTrip(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	bucket := newBucket(t)
	st := store(bucket, s3store.Options{})
	const id = "20250611T101500Z-3f9a2c1d"
	recs := records(id)

	w, err := st.Create(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, w, recs[:5])
	if err := w.Append(recs[6]); err == nil {
		t.Error("a record out of sequence was accepted")
	}
	other := recs[5]
	other.RunID = "20250611T101500Z-00000000"
	if err := w.Append(other); err == nil {
		t.Error("a record of another run was accepted")
	}
	appendAll(t, w, recs[5:])
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if _, err := st.Create(ctx, id); !errors.Is(err, journal.ErrExists) {
		t.Errorf("Create of an existing run: %v, want ErrExists", err)
	}

	// One object per record, named by its number.
	keys := listKeys(t, bucket, "team/dr/runs/"+id+"/")
	if len(keys) != len(recs) || keys[0] != "team/dr/runs/"+id+"/0000000001.json" {
		t.Errorf("objects: %v", keys)
	}

	// Read back by another store object, as another machine would.
	j, err := store(bucket, s3store.Options{}).Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalize(t, recs), j.Records); diff != "" {
		t.Errorf("records (-want +got):\n%s", diff)
	}
	runs, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(runs) != 1 || runs[0].RunID != id || runs[0].Status != journal.StatusPaused || runs[0].Runbook != "spacelift-failover" || !runs[0].Started.Equal(recs[0].Time) {
		t.Errorf("List: %+v", runs)
	}

	// Resume appends after the last record.
	w2, err := st.Reopen(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	t1 := recs[6].Time.Add(time.Hour)
	more := []journal.Record{
		{Seq: 8, Type: journal.RunResumed, Time: t1, RunID: id, Resume: &journal.ResumeInfo{RunbookHash: "9b1c"}},
		{Seq: 9, Type: journal.ApprovalGranted, Time: t1, RunID: id, Step: "confirm", By: "oncall", Via: "pre-approved"},
		{Seq: 10, Type: journal.RunFinished, Time: t1.Add(time.Second), RunID: id, Status: journal.StatusSucceeded},
	}
	appendAll(t, w2, more)
	j, err = st.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(normalize(t, append(recs, more...)), j.Records); diff != "" {
		t.Errorf("records after resume (-want +got):\n%s", diff)
	}
	runs, _ = st.List(ctx)
	if len(runs) != 1 || runs[0].Status != journal.StatusSucceeded || !runs[0].Finished.Equal(more[2].Time) {
		t.Errorf("List after resume: %+v", runs)
	}

	if _, err := st.Open(ctx, "20990101T000000Z-00000000"); !errors.Is(err, journal.ErrNotFound) {
		t.Errorf("Open of a missing run: %v", err)
	}
	if _, err := st.Open(ctx, "../lock"); err == nil {
		t.Error("Open accepted an invalid run id")
	}
}

func listKeys(t *testing.T, bucket, prefix string) []string {
	t.Helper()
	out, err := client().ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	return keys
}

func putRaw(t *testing.T, bucket, key, body string) {
	t.Helper()
	_, err := client().PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: strings.NewReader(body)})
	if err != nil {
		t.Fatal(err)
	}
}

func TestCorruptJournalsRefused(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	bucket := newBucket(t)
	st := store(bucket, s3store.Options{})
	line := func(r journal.Record) string {
		b, _ := json.Marshal(r)
		return string(b) + "\n"
	}
	cases := map[string]func(id string){
		"gap": func(id string) {
			recs := records(id)
			putRaw(t, bucket, fmt.Sprintf("team/dr/runs/%s/%010d.json", id, 1), line(recs[0]))
			putRaw(t, bucket, fmt.Sprintf("team/dr/runs/%s/%010d.json", id, 3), line(recs[2]))
		},
		"name and content disagree": func(id string) {
			recs := records(id)
			putRaw(t, bucket, fmt.Sprintf("team/dr/runs/%s/%010d.json", id, 1), line(recs[0]))
			putRaw(t, bucket, fmt.Sprintf("team/dr/runs/%s/%010d.json", id, 2), line(recs[2]))
		},
		"two records in one object": func(id string) {
			recs := records(id)
			putRaw(t, bucket, fmt.Sprintf("team/dr/runs/%s/%010d.json", id, 1), line(recs[0])+line(recs[1]))
		},
		"stray object": func(id string) {
			recs := records(id)
			putRaw(t, bucket, fmt.Sprintf("team/dr/runs/%s/%010d.json", id, 1), line(recs[0]))
			putRaw(t, bucket, fmt.Sprintf("team/dr/runs/%s/notes.txt", id), "hello")
		},
		"not JSON": func(id string) {
			putRaw(t, bucket, fmt.Sprintf("team/dr/runs/%s/%010d.json", id, 1), "{\"seq\":1,\n")
		},
	}
	i := 0
	for name, plant := range cases {
		i++
		id := fmt.Sprintf("20250611T10150%dZ-0000000%d", i, i)
		plant(id)
		_, err := st.Open(ctx, id)
		var ce *journal.CorruptError
		if !errors.As(err, &ce) {
			t.Errorf("%s: Open: %v, want a *journal.CorruptError", name, err)
		}
		if _, err := st.Reopen(ctx, id); err == nil {
			t.Errorf("%s: Reopen accepted a corrupt journal", name)
		}
	}
	runs, err := st.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	unreadable := 0
	for _, r := range runs {
		if r.Err != "" {
			unreadable++
		}
	}
	// List reads only the first and last records: a gap and a stray
	// object show in the names alone; the others need a full read.
	if unreadable < 2 {
		t.Errorf("List reported %d unreadable runs: %+v", unreadable, runs)
	}
}

// Two processes appending to one run (two resumes at once): for each record
// number exactly one write lands, the other process learns it and stops.
func TestAppendNeverOverwrites(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	bucket := newBucket(t)
	const id = "20250611T101500Z-aaaaaaaa"
	recs := records(id)
	w, err := store(bucket, s3store.Options{}).Create(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	appendAll(t, w, recs[:3])

	a, err := store(bucket, s3store.Options{}).Reopen(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	b, err := store(bucket, s3store.Options{}).Reopen(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	ra, rb := recs[3], recs[3]
	ra.Message, rb.Message = "written by a", "written by b"
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := make(chan struct{})
	for i, pair := range []struct {
		w journal.Writer
		r journal.Record
	}{{a, ra}, {b, rb}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			errs[i] = pair.w.Append(pair.r)
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		var ce *s3store.ConflictError
		switch {
		case err == nil:
			won++
		case errors.As(err, &ce):
			if ce.Seq != 4 || !strings.Contains(err.Error(), "another process") {
				t.Errorf("conflict error: %v", err)
			}
		default:
			t.Errorf("unexpected error: %v", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d writers wrote record 4, want exactly 1 (errors: %v)", won, errs)
	}
	j, err := store(bucket, s3store.Options{}).Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	winner := "written by a"
	if errs[0] != nil {
		winner = "written by b"
	}
	if got := j.Records[3].Message; got != winner {
		t.Errorf("record 4 holds %q, want the winner's %q", got, winner)
	}
	// The loser stays stopped, even for the next number.
	loser := a
	if errs[0] == nil {
		loser = b
	}
	if err := loser.Append(recs[4]); err == nil {
		t.Error("the losing writer went on writing")
	}

	// A retried write of the very same bytes (the SDK retrying a PUT whose
	// answer was lost) is recognised as our own.
	c, err := store(bucket, s3store.Options{}).Reopen(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	d, err := store(bucket, s3store.Options{}).Reopen(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Append(recs[4]); err != nil {
		t.Fatal(err)
	}
	if err := d.Append(recs[4]); err != nil {
		t.Errorf("rewriting identical bytes: %v", err)
	}
}

// Many contenders released together, each with its own client: exactly one
// takes the lock; every other one is told who holds it.
func TestConcurrentLockOneWinner(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	bucket := newBucket(t)
	for round := range 5 {
		const n = 12
		prefix := fmt.Sprintf("round-%d", round)
		var wg sync.WaitGroup
		start := make(chan struct{})
		locks := make([]journal.Lock, n)
		errs := make([]error, n)
		for i := range n {
			st := s3store.New(client(), bucket, prefix, s3store.Options{})
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				locks[i], errs[i] = st.Lock(ctx, holder(fmt.Sprintf("run-%02d", i), fmt.Sprintf("host-%02d", i)))
			}()
		}
		close(start)
		wg.Wait()
		winner := -1
		for i := range n {
			if errs[i] == nil {
				if winner >= 0 {
					t.Fatalf("round %d: runs %d and %d both took the lock", round, winner, i)
				}
				winner = i
			}
		}
		if winner < 0 {
			t.Fatalf("round %d: nobody took the lock: %v", round, errs)
		}
		for i, err := range errs {
			if i == winner {
				continue
			}
			var le *journal.LockedError
			if !errors.As(err, &le) || !errors.Is(err, journal.ErrLocked) {
				t.Errorf("round %d: contender %d: %v, want a *journal.LockedError", round, i, err)
				continue
			}
			w := fmt.Sprintf("run-%02d", winner)
			if le.Holder.RunID != w || le.Stale || !strings.Contains(err.Error(), w) || !strings.Contains(err.Error(), fmt.Sprintf("host-%02d", winner)) {
				t.Errorf("round %d: contender %d: %v (holder %+v), want it to name %s", round, i, err, le.Holder, w)
			}
		}
		if err := locks[winner].Release(); err != nil {
			t.Errorf("release: %v", err)
		}
		if h, err := s3store.New(client(), bucket, prefix, s3store.Options{}).LockHolder(ctx); err != nil || h != nil {
			t.Errorf("after release: holder %v, %v", h, err)
		}
	}
}

// A run started on one machine, paused for approval, and resumed on another
// (a fresh store and client, another holder host), through the engine.
func TestResumeOnAnotherMachine(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	bucket := newBucket(t)
	src := []byte(`version: 1
name: two-machines
inputs:
  region: { type: string, default: eu-west-3 }
  token:  { type: string, secret: true }
steps:
  - id: before
    uses: core.log
    with: { message: "before the approval in ${{ inputs.region }}" }
  - id: confirm
    uses: core.approve
    with: { message: "Go on?" }
  - id: after
    uses: core.assert
    with: { that: '${{ inputs.token == "hunter2-secret" }}', message: "the secret input came back" }
outputs:
  region: ${{ inputs.region }}
`)
	rb, diags := runbook.Parse("/srv/runbooks/two-machines.yaml", src, runbook.Options{})
	if diags.HasErrors() {
		t.Fatal(diags)
	}

	// Machine A.
	a := store(bucket, s3store.Options{})
	id := engine.NewRunID(time.Now())
	lockA, err := a.Lock(ctx, holder(id, "machine-a"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.Create(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	e, err := engine.New(engine.Options{Runbook: rb, Inputs: map[string]any{"token": "hunter2-secret"}, Journal: w, RunID: id})
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != engine.StatusPaused {
		t.Fatalf("status %s, want paused", res.Status)
	}
	w.Close()
	if err := lockA.Release(); err != nil {
		t.Fatal(err)
	}

	// Machine B: knows only the bucket.
	b := store(bucket, s3store.Options{})
	runs, err := b.List(ctx)
	if err != nil || len(runs) != 1 || runs[0].RunID != id || runs[0].Status != journal.StatusPaused {
		t.Fatalf("B lists %+v, %v", runs, err)
	}
	lockB, err := b.Lock(ctx, holder(id, "machine-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer lockB.Release()
	j, err := b.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	w2, err := b.Reopen(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	e2, err := engine.New(engine.Options{Runbook: rb, Inputs: map[string]any{"token": "hunter2-secret"}, Journal: w2, RunID: id})
	if err != nil {
		t.Fatal(err)
	}
	res, err = e2.Resume(ctx, engine.ResumeOptions{Journal: j, Approved: map[string]bool{"confirm": true}})
	if err != nil {
		t.Fatal(err)
	}
	if res.Status != engine.StatusSucceeded {
		t.Fatalf("resumed run: %s (%v)", res.Status, res.Err)
	}
	j, err = a.Open(ctx, id) // A sees B's records
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, r := range j.Records {
		types = append(types, r.Type)
		if bytes.Contains(mustJSON(t, r), []byte("hunter2-secret")) {
			t.Errorf("the secret input is in record %d: %s", r.Seq, mustJSON(t, r))
		}
	}
	if fin, ok := j.Finished(); !ok || fin.Status != journal.StatusSucceeded {
		t.Errorf("journal does not end succeeded: %v", types)
	}
	if !containsSeq(types, journal.RunPaused, journal.RunResumed) {
		t.Errorf("records %v, want a pause then a resume", types)
	}
}

func mustJSON(t *testing.T, v any) []byte {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func containsSeq(have []string, want ...string) bool {
	i := 0
	for _, h := range have {
		if i < len(want) && h == want[i] {
			i++
		}
	}
	return i == len(want)
}

// A lock whose holder stopped renewing it (it crashed) is reported stale,
// never taken over; unlock removes it without force only once it expired.
func TestStaleLockRefusedThenUnlocked(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	bucket := newBucket(t)
	// What a holder with a one-second lease leaves behind when killed.
	now := time.Now().UTC()
	putRaw(t, bucket, "team/dr/lock.json", fmt.Sprintf(`{"run_id":"20250611T101500Z-deadbeef","pid":4242,"host":"machine-a","user":"oncall",
"started":%q,"command":"run failover.yaml","token":"abc","lease":"1s","renewed":%q,"expires":%q}`,
		now.Format(time.RFC3339Nano), now.Format(time.RFC3339Nano), now.Add(time.Second).Format(time.RFC3339Nano)))
	other := store(bucket, s3store.Options{})

	// Before it expires: not stale; unlock needs force.
	_, err := other.Lock(ctx, holder("20250611T101600Z-00000001", "machine-b"))
	var le *s3store.LockedError
	if !errors.As(err, &le) {
		t.Fatalf("Lock: %v, want *s3store.LockedError", err)
	}
	if !le.Stale {
		if _, err := other.Unlock(ctx, false); err == nil || !strings.Contains(err.Error(), "20250611T101500Z-deadbeef") {
			t.Errorf("Unlock of a current lease: %v, want a refusal naming the holder", err)
		}
	}

	// Wait for the lease (and the one-second resolution of S3's clock).
	deadline := time.Now().Add(30 * time.Second)
	for {
		_, err = other.Lock(ctx, holder("20250611T101600Z-00000001", "machine-b"))
		if errors.As(err, &le) && le.Stale {
			break
		}
		if err == nil {
			t.Fatal("a stale lock was taken over")
		}
		if time.Now().After(deadline) {
			t.Fatalf("the lease never expired: %v", err)
		}
		time.Sleep(200 * time.Millisecond)
	}
	var jle *journal.LockedError
	if !errors.As(err, &jle) || jle.Holder.RunID != "20250611T101500Z-deadbeef" || !strings.Contains(err.Error(), "runbook unlock") || !strings.Contains(err.Error(), "expired") {
		t.Errorf("stale lock error: %v", err)
	}
	if h, err := other.LockHolder(ctx); err != nil || h == nil || h.RunID != "20250611T101500Z-deadbeef" {
		t.Errorf("the stale lock is still in place: %v, %v", h, err)
	}
	h, err := other.Unlock(ctx, false)
	if err != nil || h == nil || h.RunID != "20250611T101500Z-deadbeef" || h.Host != "machine-a" {
		t.Fatalf("Unlock of an expired lease: %v, %v", h, err)
	}
	l, err := other.Lock(ctx, holder("20250611T101600Z-00000001", "machine-b"))
	if err != nil {
		t.Fatalf("Lock after unlock: %v", err)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if h, err := other.Unlock(ctx, false); err != nil || h != nil {
		t.Errorf("Unlock of a free lock: %v, %v", h, err)
	}
}

// A live holder renews its lease: however long it runs, others see it
// current, and its lock object keeps the same token.
func TestLeaseRenewed(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	bucket := newBucket(t)
	a := s3store.New(client(), bucket, "team/dr", s3store.Options{Lease: time.Second, RenewEvery: 150 * time.Millisecond})
	l, err := a.Lock(ctx, holder("20250611T101500Z-11111111", "machine-a"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.Create(ctx, "20250611T101500Z-11111111")
	if err != nil {
		t.Fatal(err)
	}
	recs := records("20250611T101500Z-11111111")
	other := store(bucket, s3store.Options{})
	// Three lease lengths (more than a lease plus S3's one-second clock
	// resolution) later, still held.
	for i := range 3 {
		time.Sleep(time.Second)
		_, err := other.Lock(ctx, holder("20250611T101600Z-22222222", "machine-b"))
		var le *s3store.LockedError
		if !errors.As(err, &le) || le.Stale {
			t.Fatalf("after %ds: %v, want a current lock", i+1, err)
		}
		if err := w.Append(recs[i]); err != nil {
			t.Fatalf("the holder could not write: %v", err)
		}
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	if h, _ := other.LockHolder(ctx); h != nil {
		t.Errorf("lock still held after release: %v", h)
	}
}

// A holder whose lock was removed (runbook unlock --force) and taken by
// another run notices at its next renewal: its journal writes are refused
// and its release leaves the new holder's lock alone.
func TestLostLockStopsTheWriter(t *testing.T) {
	t.Parallel()
	ctx := ctxT(t)
	bucket := newBucket(t)
	const id = "20250611T101500Z-33333333"
	a := s3store.New(client(), bucket, "team/dr", s3store.Options{Lease: 5 * time.Second, RenewEvery: 100 * time.Millisecond})
	la, err := a.Lock(ctx, holder(id, "machine-a"))
	if err != nil {
		t.Fatal(err)
	}
	w, err := a.Create(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	recs := records(id)
	appendAll(t, w, recs[:2])

	b := store(bucket, s3store.Options{})
	if _, err := b.Unlock(ctx, false); err == nil {
		t.Fatal("a current lease was unlocked without force")
	}
	if h, err := b.Unlock(ctx, true); err != nil || h == nil || h.RunID != id {
		t.Fatalf("forced unlock: %v, %v", h, err)
	}
	lb, err := b.Lock(ctx, holder("20250611T101600Z-44444444", "machine-b"))
	if err != nil {
		t.Fatal(err)
	}
	defer lb.Release()

	// A's renewal finds the lock replaced; from then on it writes nothing.
	deadline := time.Now().Add(30 * time.Second)
	seq := 2
	for {
		err = w.Append(recs[seq])
		if err != nil {
			break
		}
		seq++
		if seq == len(recs) || time.Now().After(deadline) {
			t.Fatal("the writer kept writing after its lock was taken by another run")
		}
		time.Sleep(150 * time.Millisecond)
	}
	var lost *s3store.LostError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), "20250611T101600Z-44444444") {
		t.Errorf("append after losing the lock: %v, want a LostError naming the new holder", err)
	}
	if err := la.Release(); err == nil {
		t.Error("Release of a lost lock reported success")
	}
	if h, err := b.LockHolder(ctx); err != nil || h == nil || h.RunID != "20250611T101600Z-44444444" {
		t.Errorf("B's lock after A's release: %v, %v", h, err)
	}
	j, err := b.Open(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	if int(j.LastSeq()) != seq {
		t.Errorf("journal has %d records, want %d (the ones written while the lock was held)", j.LastSeq(), seq)
	}
}

// Open builds its client from the environment, as the CLI does.
func TestOpenFromEnvironment(t *testing.T) {
	bucket := newBucket(t)
	t.Setenv("AWS_ENDPOINT_URL", emu.URL)
	t.Setenv("AWS_REGION", region)
	t.Setenv("AWS_ACCESS_KEY_ID", emulator.AccessKeyID)
	t.Setenv("AWS_SECRET_ACCESS_KEY", emulator.SecretAccessKey)
	t.Setenv("AWS_EC2_METADATA_DISABLED", "true")
	t.Setenv("AWS_CONFIG_FILE", os.DevNull)
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", os.DevNull)
	ctx := ctxT(t)
	st, err := s3store.Open(ctx, "s3://"+bucket+"/team/dr/", s3store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	if st.Location() != "s3://"+bucket+"/team/dr" {
		t.Errorf("Location %q", st.Location())
	}
	l, err := st.Lock(ctx, holder("20250611T101500Z-55555555", "machine-a"))
	if err != nil {
		t.Fatal(err)
	}
	if keys := listKeys(t, bucket, "team/dr/"); len(keys) != 1 || keys[0] != "team/dr/lock.json" {
		t.Errorf("objects: %v", keys)
	}
	if err := l.Release(); err != nil {
		t.Fatal(err)
	}
	_, err = s3store.Open(ctx, "s3://no-such-bucket-here/x", s3store.Options{})
	if err == nil || !strings.Contains(err.Error(), "does not exist") {
		t.Errorf("missing bucket: %v", err)
	}
	t.Setenv("AWS_REGION", "")
	t.Setenv("AWS_DEFAULT_REGION", "")
	_, err = s3store.Open(ctx, "s3://"+bucket+"/team/dr", s3store.Options{})
	if err == nil || !strings.Contains(err.Error(), "region") {
		t.Errorf("no region: %v", err)
	}
	if _, err := s3store.Open(ctx, "s3://"+bucket+"/team/dr?region="+region, s3store.Options{}); err != nil {
		t.Errorf("?region=: %v", err)
	}
}
