package journal

import (
	"bytes"
	"context"
	"errors"
	"os"
	"strings"
	"testing"
)

// chained writes a run_started, a step with outputs and a granted approval
// through the file store and returns the store and the journal's path.
func chained(t *testing.T) (*FileStore, string) {
	t.Helper()
	s := NewFileStore(t.TempDir())
	out := rec(2, StepSucceeded)
	out.Step, out.Outputs = "db", map[string]any{"writer_region": "eu-west-3"}
	ask := rec(3, ApprovalRequested)
	ask.Step, ask.Message = "approve", "Switch traffic to eu-west-3?"
	ok := rec(4, ApprovalGranted)
	ok.Step, ok.By, ok.Via = "approve", "alice@host", "interactive"
	writeRecords(t, s, rec(1, RunStarted), out, ask, ok, rec(5, StepStarted))
	return s, s.Path("r1")
}

func edit(t *testing.T, path, old, new string) {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Count(data, []byte(old)) != 1 {
		t.Fatalf("%q occurs %d times in the journal", old, bytes.Count(data, []byte(old)))
	}
	if err := os.WriteFile(path, bytes.Replace(data, []byte(old), []byte(new), 1), 0o600); err != nil {
		t.Fatal(err)
	}
}

func TestChainReadsBackAndContinuesOnReopen(t *testing.T) {
	s, path := chained(t)
	data, _ := os.ReadFile(path)
	if n := bytes.Count(data, []byte(`,"sum":"`)); n != 5 {
		t.Fatalf("%d of 5 records carry a sum:\n%s", n, data)
	}
	w, err := s.Reopen(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(rec(6, RunInterrupted)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	j, err := s.Open(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if len(j.Records) != 6 || j.Unchecked {
		t.Fatalf("%d records, unchecked %v", len(j.Records), j.Unchecked)
	}
	for _, r := range j.Records {
		if r.Sum != "" {
			t.Fatalf("record %d read back with its sum", r.Seq)
		}
	}
}

// Every edit of a sealed journal is found at the record edited, and the
// reader says what kind of change it is.
func TestChainDetectsEdits(t *testing.T) {
	cases := []struct {
		name, old, new string
		line           int
		want           string
	}{
		{"an edited output", `"writer_region":"eu-west-3"`, `"writer_region":"eu-west-1"`, 2, "does not match its checksum"},
		{"a forged approver", `"by":"alice@host"`, `"by":"mallory@hst"`, 4, "does not match its checksum"},
		{"a flipped byte in a number", `"seq":3,`, `"seq":3 ,`, 3, "does not match its checksum"},
		{"a denied approval turned granted", `Switch traffic`, `Switch-traffic`, 3, "does not match its checksum"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			s, path := chained(t)
			edit(t, path, c.old, c.new)
			_, err := s.Open(context.Background(), "r1")
			var ce *CorruptError
			if !errors.As(err, &ce) || ce.Line != c.line || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Open after %s: %v (want a CorruptError at line %d saying %q)", c.name, err, c.line, c.want)
			}
			if _, err := s.Reopen(context.Background(), "r1"); !errors.As(err, &ce) {
				t.Fatalf("Reopen of an edited journal: %v", err)
			}
		})
	}
}

func TestChainDetectsStrippedAndAddedRecords(t *testing.T) {
	s, path := chained(t)
	data, _ := os.ReadFile(path)
	lines := strings.SplitAfter(string(data), "\n")
	// The last record's sum removed: it could be anything now.
	last := lines[4]
	i := strings.Index(last, `,"sum":"`)
	lines[4] = last[:i] + "}\n"
	os.WriteFile(path, []byte(strings.Join(lines, "")), 0o600)
	if _, err := s.Open(context.Background(), "r1"); err == nil || !strings.Contains(err.Error(), "has no checksum") {
		t.Fatalf("a record without its sum: %v", err)
	}

	// Every sum removed, one record sealed: a replaced prefix.
	s2 := NewFileStore(t.TempDir())
	writeRecords(t, s2, rec(1, RunStarted), rec(2, StepStarted))
	data, _ = os.ReadFile(s2.Path("r1"))
	lines = strings.SplitAfter(string(data), "\n")
	i = strings.Index(lines[0], `,"sum":"`)
	lines[0] = lines[0][:i] + "}\n"
	os.WriteFile(s2.Path("r1"), []byte(strings.Join(lines, "")), 0o600)
	if _, err := s2.Open(context.Background(), "r1"); err == nil || !strings.Contains(err.Error(), "records before it do not") {
		t.Fatalf("sums after a record without one: %v", err)
	}
}

// A journal written before checksums is still read (and marked), and a
// resume continues it in the same form.
func TestChainLegacyJournal(t *testing.T) {
	s := NewFileStore(t.TempDir())
	if err := s.ensureDirs(); err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, r := range []Record{rec(1, RunStarted), rec(2, RunPaused)} {
		line, _, err := Seal("", r, true)
		if err != nil {
			t.Fatal(err)
		}
		b.Write(line)
	}
	if err := os.WriteFile(s.Path("r1"), b.Bytes(), 0o600); err != nil {
		t.Fatal(err)
	}
	w, err := s.Reopen(context.Background(), "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(rec(3, RunResumed)); err != nil {
		t.Fatal(err)
	}
	w.Close()
	j, err := s.Open(context.Background(), "r1")
	if err != nil || !j.Unchecked || len(j.Records) != 3 {
		t.Fatalf("legacy journal: %v (unchecked %v)", err, j != nil && j.Unchecked)
	}
}
