package journal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

func rec(seq int64, typ string) Record {
	r := Record{Seq: seq, Type: typ, RunID: "r1", Time: time.Date(2025, 6, 1, 10, 0, int(seq), 0, time.UTC)}
	if typ == RunStarted {
		r.Run = &RunInfo{Runbook: "failover", RunbookHash: "abc", EngineVersion: "test",
			Inputs: []Input{{Name: "region", Value: "eu-west-3"}, {Name: "token", Value: "***", Secret: true}}}
	}
	return r
}

func writeRecords(t *testing.T, s *FileStore, recs ...Record) {
	t.Helper()
	w, err := s.Create(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range recs {
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
}

func TestRoundTrip(t *testing.T) {
	s := NewFileStore(t.TempDir())
	r2 := rec(2, StepSucceeded)
	r2.Step, r2.Outputs, r2.Duration = "db", map[string]any{"writer": "eu-west-3", "n": 2.0}, Duration(1500*time.Millisecond)
	r3 := rec(3, AttemptFailed)
	r3.Error = &Error{Message: "throttled", Code: "Throttling", Retryable: true, Class: ClassAction}
	r3.NextDelay = Duration(2 * time.Second)
	want := []Record{rec(1, RunStarted), r2, r3}
	writeRecords(t, s, want...)

	j, err := s.Open(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if diff := cmp.Diff(want, j.Records); diff != "" {
		t.Fatalf("records differ (-want +got):\n%s", diff)
	}
	data, _ := os.ReadFile(s.Path("r1"))
	if !strings.Contains(string(data), `"next_delay":"2s"`) || !strings.Contains(string(data), `"duration":"1.5s"`) {
		t.Fatalf("durations are not written as duration strings:\n%s", data)
	}
	if fi, _ := os.Stat(s.Path("r1")); fi.Mode().Perm() != 0o600 {
		t.Fatalf("journal mode %v, want 0600", fi.Mode().Perm())
	}
	if _, err := s.Create(context.Background(), "r1"); !errors.Is(err, ErrExists) {
		t.Fatalf("second Create: %v, want ErrExists", err)
	}
}

func TestParseTolerance(t *testing.T) {
	good := func(n int) string {
		var b strings.Builder
		for i := 1; i <= n; i++ {
			typ := StepStarted
			if i == 1 {
				typ = RunStarted
			}
			line, _ := encodeRecord(rec(int64(i), typ))
			b.Write(line)
		}
		return b.String()
	}
	last, _ := encodeRecord(rec(4, StepStarted))
	cases := map[string]struct {
		data      string
		records   int
		torn      int
		corruptAt int // 0: no error
	}{
		"clean":                          {data: good(3), records: 3},
		"torn final line":                {data: good(3) + `{"seq":4,"type":"step_sta`, records: 3, torn: 25},
		"torn final line of zeros":       {data: good(3) + "\x00\x00\x00\x00", records: 3, torn: 4},
		"whole final record, no newline": {data: good(3) + strings.TrimSuffix(string(last), "\n"), records: 4},
		"garbage in the middle":          {data: good(2) + "{not json}\n" + good(3)[len(good(2)):], corruptAt: 3},
		"missing record":                 {data: good(2) + string(last), corruptAt: 3},
		"empty line in the middle":       {data: good(2) + "\n" + good(3)[len(good(2)):], corruptAt: 3},
		"complete invalid final line":    {data: good(3) + "{\"seq\":4,\n", corruptAt: 4},
		"only a torn line":               {data: `{"seq":1,"ty`, corruptAt: 1},
		"first record not run_started":   {data: strings.Replace(good(2), RunStarted, StepStarted, 1), corruptAt: 1},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			j, err := Parse("r1", []byte(tc.data))
			if tc.corruptAt != 0 {
				var ce *CorruptError
				if !errors.As(err, &ce) || ce.Line != tc.corruptAt {
					t.Fatalf("err = %v, want corruption at line %d", err, tc.corruptAt)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(j.Records) != tc.records || j.TornTail != tc.torn {
				t.Fatalf("got %d records, torn %d; want %d, %d", len(j.Records), j.TornTail, tc.records, tc.torn)
			}
		})
	}
}

func TestReopenRepairsTornTail(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	writeRecords(t, s, rec(1, RunStarted), rec(2, StepStarted))
	f, err := os.OpenFile(s.Path("r1"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	f.WriteString(`{"seq":3,"type":"attempt_st`)
	f.Close()

	j, err := s.Open(ctx, "r1")
	if err != nil || len(j.Records) != 2 || j.TornTail == 0 {
		t.Fatalf("open: %v, %d records, torn %d", err, len(j.Records), j.TornTail)
	}
	w, err := s.Reopen(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(rec(3, RunResumed)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	j, err = s.Open(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Records) != 3 || j.Records[2].Type != RunResumed || j.TornTail != 0 {
		t.Fatalf("after reopen: %+v (torn %d)", j.Records, j.TornTail)
	}

	// A whole final record without its newline is kept and terminated.
	data, _ := os.ReadFile(s.Path("r1"))
	os.WriteFile(s.Path("r1"), []byte(strings.TrimSuffix(string(data), "\n")), 0o600)
	w, err = s.Reopen(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	w.Append(rec(4, RunPaused))
	w.Close()
	j, err = s.Open(ctx, "r1")
	if err != nil || len(j.Records) != 4 {
		t.Fatalf("after newline repair: %v, %d records", err, len(j.Records))
	}

	// A corrupt journal is never appended to.
	os.WriteFile(s.Path("r1"), append([]byte("garbage\n"), data...), 0o600)
	if _, err := s.Reopen(ctx, "r1"); err == nil {
		t.Fatal("Reopen of a corrupt journal succeeded")
	}
}

func TestListStatuses(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	mk := func(id string, types ...string) {
		w, err := s.Create(ctx, id)
		if err != nil {
			t.Fatal(err)
		}
		for i, typ := range append([]string{RunStarted}, types...) {
			r := rec(int64(i+1), typ)
			r.RunID = id
			if typ == RunFinished {
				r.Status = StatusRollbackFailed
			}
			if err := w.Append(r); err != nil {
				t.Fatal(err)
			}
		}
		w.Close()
	}
	mk("a-finished", StepStarted, RunFinished)
	mk("b-paused", RunPaused)
	mk("c-resumed", RunPaused, RunResumed, RunInterrupted)
	mk("d-crashed", StepStarted)
	mk("e-live", StepStarted)
	lock, err := s.Lock(ctx, CurrentHolder("e-live", "run"))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Release()
	os.WriteFile(s.Path("f-broken"), []byte("nope\n"), 0o600)

	runs, err := s.List(ctx)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]string{}
	for _, r := range runs {
		got[r.RunID] = r.Status
		if r.Err == "" && r.Runbook != "failover" {
			t.Errorf("%s: runbook %q", r.RunID, r.Runbook)
		}
	}
	want := map[string]string{"a-finished": StatusRollbackFailed, "b-paused": StatusPaused, "c-resumed": StatusInterrupted,
		"d-crashed": StatusIncomplete, "e-live": StatusRunning, "f-broken": "unreadable"}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Fatalf("statuses (-want +got):\n%s", diff)
	}
}

func TestLockContentionNamesHolder(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	h := CurrentHolder("run-1", "run failover.yaml")
	lock, err := s.Lock(ctx, h)
	if err != nil {
		t.Fatal(err)
	}
	_, err = s.Lock(ctx, CurrentHolder("run-2", "run failback.yaml"))
	var le *LockedError
	if !errors.As(err, &le) || !errors.Is(err, ErrLocked) {
		t.Fatalf("second lock: %v, want *LockedError", err)
	}
	for _, want := range []string{"run-1", h.Host, "pid", "run failover.yaml"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("error %q does not name %q", err, want)
		}
	}
	if le.Stale {
		t.Error("a live holder is reported stale")
	}
	// Unlock refuses a live holder unless forced.
	if _, err := s.Unlock(ctx, false); err == nil {
		t.Fatal("Unlock removed a live holder's lock")
	}
	if err := lock.Release(); err != nil {
		t.Fatal(err)
	}
	if err := lock.Release(); err != nil {
		t.Fatalf("second release: %v", err)
	}
	if cur, _ := s.LockHolder(ctx); cur != nil {
		t.Fatalf("lock still held by %v", cur)
	}
	lock2, err := s.Lock(ctx, CurrentHolder("run-2", ""))
	if err != nil {
		t.Fatalf("lock after release: %v", err)
	}
	lock2.Release()
}

func TestConcurrentLockOneWinner(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	var wg sync.WaitGroup
	var mu sync.Mutex
	won, lost := 0, 0
	for i := 0; i < 16; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, err := s.Lock(ctx, CurrentHolder("r", ""))
			mu.Lock()
			defer mu.Unlock()
			if err == nil {
				won++
			} else if errors.Is(err, ErrLocked) {
				lost++
			} else {
				t.Errorf("unexpected error: %v", err)
			}
		}()
	}
	wg.Wait()
	if won != 1 || lost != 15 {
		t.Fatalf("won %d, lost %d", won, lost)
	}
}

func TestStaleLockReportedNotTakenOver(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run `true`:", err)
	}
	h := CurrentHolder("old-run", "run")
	h.PID = cmd.Process.Pid // exited and reaped: not alive
	if _, err := s.Lock(ctx, h); err != nil {
		t.Fatal(err)
	}
	_, err := s.Lock(ctx, CurrentHolder("new-run", "run"))
	var le *LockedError
	if !errors.As(err, &le) || !le.Stale || !strings.Contains(err.Error(), "runbook unlock") {
		t.Fatalf("err = %v, want a stale *LockedError suggesting runbook unlock", err)
	}
	if cur, _ := s.LockHolder(ctx); cur == nil || cur.RunID != "old-run" {
		t.Fatalf("stale lock was taken over: %v", cur)
	}
	removed, err := s.Unlock(ctx, false)
	if err != nil || removed == nil || removed.RunID != "old-run" {
		t.Fatalf("Unlock of a stale lock: %v, %v", removed, err)
	}
}

func TestForeignHostNeedsForce(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	h := CurrentHolder("remote", "run")
	h.Host = "another-host.invalid"
	if _, err := s.Lock(ctx, h); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unlock(ctx, false); err == nil || !strings.Contains(err.Error(), "another host") {
		t.Fatalf("Unlock without force: %v", err)
	}
	if _, err := s.Unlock(ctx, true); err != nil {
		t.Fatal(err)
	}
}

func TestReleaseLeavesSomeoneElsesLock(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	mine, err := s.Lock(ctx, CurrentHolder("mine", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := s.Unlock(ctx, true); err != nil {
		t.Fatal(err)
	}
	theirs, err := s.Lock(ctx, CurrentHolder("theirs", ""))
	if err != nil {
		t.Fatal(err)
	}
	if err := mine.Release(); err == nil || !strings.Contains(err.Error(), "theirs") {
		t.Fatalf("release of a lock taken over: %v", err)
	}
	if cur, _ := s.LockHolder(ctx); cur == nil || cur.RunID != "theirs" {
		t.Fatalf("release removed another run's lock: %v", cur)
	}
	theirs.Release()
}

func TestInvalidRunIDs(t *testing.T) {
	s := NewFileStore(t.TempDir())
	for _, id := range []string{"", "../x", "a/b", ".hidden", strings.Repeat("a", 200)} {
		if _, err := s.Create(context.Background(), id); err == nil {
			t.Errorf("Create(%q) succeeded", id)
		}
	}
	if _, err := os.Stat(filepath.Join(s.Dir(), "x.jsonl")); err == nil {
		t.Fatal("path traversal created a file")
	}
	if _, err := s.Open(context.Background(), "nope"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("Open of a missing run: %v", err)
	}
}
