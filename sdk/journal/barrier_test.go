package journal

import (
	"context"
	"testing"
	"time"
)

// Records that are not barriers are written at once (only their fsync is
// deferred): a reader, and a resume after the process (not the machine)
// crashed, sees every record appended so far.
func TestDeferredRecordsAreWrittenAtOnce(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	w, err := s.Create(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	for i, typ := range []string{RunStarted, StepStarted, Progress, StepSucceeded} {
		if Barrier(typ) {
			t.Fatalf("%s should not be a barrier", typ)
		}
		if err := w.Append(rec(int64(i+1), typ)); err != nil {
			t.Fatal(err)
		}
	}
	j, err := s.Open(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Records) != 4 {
		t.Fatalf("read %d records, want 4", len(j.Records))
	}
	// The deferred flush runs after FlushDelay without disturbing later
	// appends.
	time.Sleep(2 * FlushDelay)
	if err := w.Append(rec(5, AttemptStarted)); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	if err := w.Append(rec(6, StepSucceeded)); err == nil {
		t.Fatal("append after close succeeded")
	}
}

// Every record after which the engine acts or stops is a barrier.
func TestBarriers(t *testing.T) {
	for _, typ := range []string{AttemptStarted, ApprovalGranted, ApprovalDenied, ApprovalRequested, RunPaused, RunInterrupted, RunFinished} {
		if !Barrier(typ) {
			t.Errorf("%s is not a barrier", typ)
		}
	}
}
