package acceptance_test

import (
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// Every terminating signal is an interruption, not a crash: the running
// attempt is cancelled, run_interrupted names the signal, the plugins are
// stopped, the lock is released, the exit code is 130, and resume goes on.
func TestSignalsInterruptCleanly(t *testing.T) {
	t.Parallel()
	for _, c := range []struct {
		sig  syscall.Signal
		name string
	}{
		{syscall.SIGINT, "SIGINT"},
		{syscall.SIGTERM, "SIGTERM"},
		{syscall.SIGHUP, "SIGHUP"},
		{syscall.SIGQUIT, "SIGQUIT"},
	} {
		t.Run(c.name, func(t *testing.T) {
			t.Parallel()
			w := newWorkspace(t)
			rb := w.write("rb.yaml", header+crashSteps)
			sent := false
			res := w.run(func(e journal.Record, p *os.Process) {
				if e.Type == journal.Progress && e.Step == "wait" && !sent {
					sent = p.Signal(c.sig) == nil
				}
			}, "run", rb, "-o", "json")
			if !sent || res.code != 130 {
				t.Fatalf("exit %d, want 130 (signal sent: %v): %s", res.code, sent, res.stderr)
			}
			intr := res.of("", journal.RunInterrupted)
			if len(intr) != 1 || !strings.Contains(intr[0].Message, "interrupted by "+c.name) {
				t.Fatalf("run_interrupted = %+v, want it to name %s", intr, c.name)
			}
			j := w.journal(res.runID())
			if last := j.Records[len(j.Records)-1]; last.Type != journal.RunInterrupted || !strings.Contains(last.Message, c.name) {
				t.Errorf("the journal ends with %s %q", last.Type, last.Message)
			}
			if _, err := os.Stat(filepath.Join(w.dir, "state", "lock")); !os.IsNotExist(err) {
				t.Errorf("the lock was not released: %v", err)
			}
			w.assertNoProcessLeft()
			res = w.run(nil, "resume", res.runID(), "-o", "json")
			if res.code != 0 || !strings.Contains(res.stderr, "was interrupted: interrupted by "+c.name) {
				t.Fatalf("resume: exit %d: %s", res.code, res.stderr)
			}
			want(t, "effects", w.effects(), []string{"a", "b"})
		})
	}
}

// A standard output that closes (piped into a `head` that quit) neither
// kills nor stops the run: it goes on to the end, its events in the
// journal; so does a SIGPIPE sent to it.
func TestClosedStdoutDoesNotStopTheRun(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+"\nsteps:"+stepA+`
  - id: wait
    uses: test.sleep
    with: { duration: 1s }`+stepB)
	cmd := w.command("run", rb) // text output: a line per event
	r, wr, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	r.Close() // the reader is gone before the first line
	cmd.Stdout = wr
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	wr.Close()
	// And an explicit SIGPIPE while it runs.
	time.Sleep(300 * time.Millisecond)
	_ = cmd.Process.Signal(syscall.SIGPIPE)
	err = cmd.Wait()
	if err != nil {
		t.Fatalf("run with a closed stdout: %v (%s)\n%s", err, cmd.ProcessState, stderr.String())
	}
	if !strings.Contains(stderr.String(), "standard output is gone") {
		t.Errorf("no warning about the closed stdout:\n%s", stderr.String())
	}
	want(t, "effects", w.effects(), []string{"a", "b"})
	runs, _ := filepath.Glob(filepath.Join(w.dir, "state", "runs", "*.jsonl"))
	if len(runs) != 1 {
		t.Fatalf("journals: %v", runs)
	}
	id := strings.TrimSuffix(filepath.Base(runs[0]), ".jsonl")
	j := w.journal(id)
	if fin, ok := j.Finished(); !ok || fin.Status != "succeeded" {
		t.Errorf("the journal does not end with the run's success: %+v", j.Records[len(j.Records)-1])
	}
}
