package cli

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

func TestCompletionScripts(t *testing.T) {
	for shell, marker := range map[string]string{
		"bash": "__start_runbook",
		"zsh":  "#compdef runbook",
		"fish": "complete -c runbook",
	} {
		io, _, out, errOut := TestStreams()
		if code := Run(context.Background(), io, []string{"completion", shell}); code != 0 {
			t.Fatalf("completion %s: exit %d\n%s", shell, code, errOut)
		}
		script := out.String()
		if !strings.Contains(script, marker) {
			t.Errorf("%s script lacks %q", shell, marker)
		}
		// Each shell checks its own syntax when it is installed.
		check := map[string][]string{"bash": {"bash", "-n"}, "zsh": {"zsh", "-n"}, "fish": {"fish", "--no-execute"}}[shell]
		if _, err := exec.LookPath(check[0]); err != nil {
			if shell == "bash" {
				t.Fatalf("bash not found: %v", err)
			}
			t.Logf("%s not installed: its script's syntax is not checked", shell)
			continue
		}
		path := filepath.Join(t.TempDir(), "runbook."+shell)
		if err := os.WriteFile(path, []byte(script), 0o644); err != nil {
			t.Fatal(err)
		}
		if out, err := exec.Command(check[0], append(check[1:], path)...).CombinedOutput(); err != nil {
			t.Errorf("%s rejects the script: %v\n%s", shell, err, out)
		}
	}
}

// complete asks the command line what to complete, as the shell scripts do.
func complete(t *testing.T, args ...string) []string {
	t.Helper()
	io, _, out, errOut := TestStreams()
	if code := Run(context.Background(), io, append([]string{"__complete"}, args...)); code != 0 {
		t.Fatalf("__complete %v: exit %d\n%s", args, code, errOut)
	}
	var got []string
	for _, l := range strings.Split(strings.TrimSpace(out.String()), "\n") {
		if !strings.HasPrefix(l, ":") { // the last line is the directive
			got = append(got, l)
		}
	}
	return got
}

func TestDynamicCompletion(t *testing.T) {
	dir := t.TempDir()
	rb := filepath.Join(dir, "rb.yaml")
	src := `version: 1
name: completion
steps:
  - id: hello
    uses: core.log
    with: { message: hi }
  - id: confirm
    name: Confirm the switch
    uses: core.approve
    with: { message: "go?" }
  - id: group
    parallel:
      - id: later
        uses: core.approve
        with: { message: "again?" }
      - id: undo
        uses: core.log
        with: { message: x }
        rollback: { uses: core.approve, with: { message: "undo?" } }
`
	if err := os.WriteFile(rb, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(dir, "state")
	ctx := context.Background()
	// Not a terminal: the run pauses at the first approval (exit 3).
	io, _, out, errOut := TestStreams()
	if code := Run(ctx, io, []string{"run", rb, "--state", state, "--run-id", "20250611T101500Z-00000aaa"}); code != ExitPaused {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}
	io, _, out, errOut = TestStreams()
	if code := Run(ctx, io, []string{"run", rb, "--state", state, "--run-id", "20250611T101501Z-00000bbb", "--auto-approve"}); code != 0 {
		t.Fatalf("run: exit %d\n%s%s", code, out, errOut)
	}

	if got := complete(t, "resume", "--state", state, ""); len(got) != 1 || got[0] != "20250611T101500Z-00000aaa\tcompletion, paused" {
		t.Errorf("resume completes %q", got)
	}
	if got := complete(t, "report", "--state", state, ""); len(got) != 2 || !strings.HasPrefix(got[0], "20250611T101501Z-00000bbb\t") {
		t.Errorf("report completes %q (newest first)", got)
	}
	if got := complete(t, "resume", "20250611T101500Z-00000aaa", "--state", state, "--approve", ""); strings.Join(got, "|") !=
		"confirm\twaiting for approval|later\tapproval step, not reached yet|undo\tapproval step, not reached yet" {
		t.Errorf("resume --approve completes %q", got)
	}
	if got := complete(t, "run", rb, "--approve", ""); strings.Join(got, "|") != "confirm\tConfirm the switch|later\tapproval|undo\tapproval" {
		t.Errorf("run --approve completes %q", got)
	}
	if got := complete(t, "resume", "20250611T101500Z-00000aaa", "--state", state, "--retry-step", ""); len(got) != 0 {
		t.Errorf("--retry-step completes %q for a run waiting for approval", got)
	}
	// A run cut off in the middle of an attempt (as a crash leaves it).
	store := journal.NewFileStore(state)
	w, err := store.Create(ctx, "20250611T101502Z-00000ccc")
	if err != nil {
		t.Fatal(err)
	}
	at := time.Now().UTC()
	for i, r := range []journal.Record{
		{Type: journal.RunStarted, Run: &journal.RunInfo{Runbook: "completion", RunbookPath: rb}},
		{Type: journal.StepStarted, Step: "hello", Uses: "core.log"},
		{Type: journal.StepSucceeded, Step: "hello", Uses: "core.log"},
		{Type: journal.StepStarted, Step: "group"},
		{Type: journal.StepStarted, Step: "undo", Group: "group", Uses: "core.log"},
		{Type: journal.AttemptStarted, Step: "undo", Group: "group", Uses: "core.log", Attempt: 1},
	} {
		r.Seq, r.Time, r.RunID = int64(i+1), at, "20250611T101502Z-00000ccc"
		if err := w.Append(r); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	for _, flag := range []string{"--retry-step", "--skip-step"} {
		if got := complete(t, "resume", "20250611T101502Z-00000ccc", "--state", state, flag, ""); strings.Join(got, "|") != "undo\tstarted, not finished" {
			t.Errorf("%s completes %q", flag, got)
		}
	}
	if got := complete(t, "resume", "--state", state, ""); len(got) != 2 || !strings.HasPrefix(got[0], "20250611T101502Z-00000ccc\tcompletion, incomplete") {
		t.Errorf("resume completes %q", got)
	}
	if got := complete(t, "run", "--output", ""); strings.Join(got, " ") != "text json" {
		t.Errorf("--output completes %q", got)
	}
	if got := complete(t, "report", "x", "--format", ""); strings.Join(got, " ") != "markdown html" {
		t.Errorf("report --format completes %q", got)
	}
	if got := complete(t, "graph", ""); strings.Join(got, " ") != "yaml yml" {
		t.Errorf("graph completes %q", got)
	}
	// No state directory: nothing to complete, and no error.
	if got := complete(t, "resume", "--state", filepath.Join(dir, "none"), ""); len(got) != 0 {
		t.Errorf("empty state completes %q", got)
	}
}

// Completing the steps of a "runbook" that is a FIFO or a device returns at
// once, offering nothing.
func TestCompletionRefusesHostileFiles(t *testing.T) {
	fifo := filepath.Join(t.TempDir(), "rb.yaml")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	go func() {
		defer close(done)
		for _, p := range []string{fifo, "/dev/zero"} {
			if steps, err := yamlSteps(p); err == nil || len(steps) > 0 {
				t.Errorf("%s: %v, %v", p, steps, err)
			}
		}
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("completion blocked on a FIFO")
	}
}
