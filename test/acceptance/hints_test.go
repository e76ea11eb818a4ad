package acceptance_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

const hintsRunbook = `version: 1
name: hints
inputs:
  token: { type: string, secret: true }
plugins:
  test: { command: runbook-plugin-test }
steps:
  - id: a
    uses: test.record
    with: { file: "@record", line: a }
    rollback: { uses: test.record, with: { file: "@record", line: undo-a } }
  - id: ok
    uses: core.approve
    with: { message: "go on?" }
  - id: wait
    uses: test.sleep
    with: { duration: 2s }
  - id: b
    uses: test.record
    with: { file: "@record", line: "b-${{ inputs.token == 's3cr3t' }}" }
`

// hintsIn returns every command the output prints for the user to run:
// what starts with the program's path, up to a backquote or the line's end.
func shellQuote(s string) string { return "'" + strings.ReplaceAll(s, "'", `'"'"'`) + "'" }

func hintsIn(out string) []string {
	prog := filepath.Join(binDir, "runbook") + " "
	var cmds []string
	for {
		i := strings.Index(out, prog)
		if i < 0 {
			return cmds
		}
		out = out[i:]
		end := strings.IndexAny(out, "`\n")
		if end < 0 {
			end = len(out)
		}
		cmds = append(cmds, strings.TrimSpace(out[:end]))
		out = out[end:]
	}
}

// hintAfter is the command printed after label ("continue with:").
func hintAfter(t *testing.T, out, label string) string {
	t.Helper()
	for _, line := range strings.Split(out, "\n") {
		if _, cmd, ok := strings.Cut(line, label); ok {
			return strings.TrimSpace(cmd)
		}
	}
	t.Fatalf("no %q in:\n%s", label, out)
	return ""
}

// paste runs a printed command through sh, as a user pasting it into a
// shell in the same directory: without $RUNBOOK_STATE, so the state must
// be in the command.
func (w *workspace) paste(cmd string) result {
	w.t.Helper()
	c := exec.Command("sh", "-c", cmd)
	c.Dir = w.dir
	c.Env = append(os.Environ(), w.marker, "RUNBOOK_PLUGIN_PATH="+binDir, "NO_COLOR=1", "RUNBOOK_STATE=")
	var stdout, stderr strings.Builder
	c.Stdout, c.Stderr = &stdout, &stderr
	if err := c.Run(); err != nil {
		if _, ok := err.(*exec.ExitError); !ok {
			w.t.Fatalf("%s: %v", cmd, err)
		}
	}
	res := result{stdout: stdout.String(), stderr: stderr.String(), code: c.ProcessState.ExitCode()}
	for _, line := range strings.Split(res.stdout, "\n") {
		var e journal.Record
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &e) == nil {
			res.events = append(res.events, e)
		}
	}
	return res
}

// Every command the CLI prints to continue, roll back, unlock or pin runs
// as printed: a state directory, a runbook and a var file whose paths need
// quoting, given by flags, are carried into the commands, which are pasted
// into sh without $RUNBOOK_STATE.
func TestPrintedCommandsRunAsPrinted(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	w.env = append(w.env, "RUNBOOK_STATE=") // the state is only in --state
	state := filepath.Join(w.dir, "st ate's")
	mkdir(t, filepath.Join(w.dir, "run books"))
	rb := w.write(filepath.Join("run books", "rb one.yaml"), hintsRunbook)
	vars := w.write("vars file.yaml", "token: s3cr3t\n")
	args := []string{"run", rb, "--state", state, "--var-file", vars}

	// 1. Paused for approval (no terminal): the summary says how to go on,
	// and the no-lock warning how to pin the plugins.
	res := w.run(nil, args...)
	if res.code != 3 {
		t.Fatalf("run: exit %d: %s", res.code, res.stderr)
	}
	pin := hintsIn(res.stderr)
	if len(pin) == 0 || !strings.Contains(pin[0], "plugins lock") {
		t.Fatalf("no lock command in the no-lock warning:\n%s", res.stderr)
	}
	cont := hintAfter(t, res.stdout, "continue with:")
	if r := w.paste(cont); r.code != 0 {
		t.Fatalf("pasted %s: exit %d:\n%s%s", cont, r.code, r.stdout, r.stderr)
	}
	want(t, "effects after the pasted resume", w.effects(), []string{"a", "b-true"})

	// 2. Interrupted: continue with, or roll back (pasted).
	cmd := w.command(append(args, "--approve", "ok")...)
	out := &strings.Builder{}
	cmd.Stdout = out
	errOut := &strings.Builder{}
	cmd.Stderr = errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitForJournal(t, state, "wait", journal.AttemptStarted)
	_ = cmd.Process.Signal(syscall.SIGINT)
	_ = cmd.Wait()
	if cmd.ProcessState.ExitCode() != 130 {
		t.Fatalf("interrupted run: exit %d:\n%s%s", cmd.ProcessState.ExitCode(), out, errOut)
	}
	hintAfter(t, out.String(), "continue with:")
	back := hintAfter(t, out.String(), "or roll back:")
	if r := w.paste(back); r.code != 1 || !strings.Contains(r.stdout, "rolled back") {
		t.Fatalf("pasted %s: exit %d:\n%s%s", back, r.code, r.stdout, r.stderr)
	}
	want(t, "effects after the pasted rollback", w.effects(), []string{"a", "b-true", "a", "undo-a"})

	// 3. A run killed with SIGKILL: a new run is refused and names the
	// command that continues the dead one (which takes its lock over).
	res = w.run(func(e journal.Record, p *os.Process) {
		if e.Type == journal.Progress && e.Step == "wait" {
			_ = p.Signal(syscall.SIGKILL)
		}
	}, append(args, "--approve", "ok", "-o", "json")...)
	dead := res.runID()
	res = w.run(nil, args...)
	hints := hintsIn(res.stderr)
	if res.code != 1 || len(hints) == 0 || !strings.Contains(hints[len(hints)-1], "resume "+dead) {
		t.Fatalf("run against the dead run's lock: exit %d:\n%s", res.code, res.stderr)
	}
	// Its report (Markdown, read as rendered) names the command too, less
	// the var file, which the report cannot know: it says the secret input
	// must be given again. Pasted with it, it resumes the run.
	rep := w.run(nil, "report", dead, "--state", state)
	unescaped := regexp.MustCompile("\\\\([\\\\`*_\\[\\]<>|#~!&])").ReplaceAllString(rep.stdout, "$1")
	got := hintsIn(unescaped)
	if rep.code != 0 || len(got) != 1 || !strings.Contains(unescaped, "secret input(s) token given again") {
		t.Fatalf("the report of the dead run: exit %d, commands %q:\n%s%s", rep.code, got, rep.stdout, rep.stderr)
	}
	fromReport, _, _ := strings.Cut(got[0], " (with the secret")
	if fromReport+" --var-file "+shellQuote(vars) != hints[len(hints)-1] {
		t.Fatalf("the report's command %q is not the refusal's %q less its var file", fromReport, hints[len(hints)-1])
	}
	if r := w.paste(hints[len(hints)-1]); r.code != 0 || !strings.Contains(r.stderr, "took over the lock") {
		t.Fatalf("pasted %s: exit %d:\n%s%s", hints[len(hints)-1], r.code, r.stdout, r.stderr)
	}

	// 4. A lock held on another host: the error names the unlock (--force)
	// that removes it.
	forged := journal.Holder{RunID: "elsewhere", PID: 1, Host: "another-host.invalid", Token: "t"}
	b, _ := json.Marshal(forged)
	if err := os.WriteFile(filepath.Join(state, "lock"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	res = w.run(nil, args...)
	hints = hintsIn(res.stderr)
	if res.code != 1 || len(hints) == 0 || !strings.Contains(hints[len(hints)-1], "unlock") {
		t.Fatalf("run against another host's lock: exit %d:\n%s", res.code, res.stderr)
	}
	if r := w.paste(hints[len(hints)-1]); r.code != 0 || !strings.Contains(r.stdout, "removed the lock") {
		t.Fatalf("pasted %s: exit %d:\n%s%s", hints[len(hints)-1], r.code, r.stdout, r.stderr)
	}
	// `unlock` without --force refuses it, and names the forced unlock.
	if err := os.WriteFile(filepath.Join(state, "lock"), b, 0o600); err != nil {
		t.Fatal(err)
	}
	res = w.run(nil, "unlock", "--state", state)
	hints = hintsIn(res.stderr)
	if res.code != 1 || len(hints) != 1 || !strings.Contains(hints[0], "--force") {
		t.Fatalf("unlock of another host's lock: exit %d:\n%s", res.code, res.stderr)
	}
	if r := w.paste(hints[0]); r.code != 0 || !strings.Contains(r.stdout, "removed the lock") {
		t.Fatalf("pasted %s: exit %d:\n%s%s", hints[0], r.code, r.stdout, r.stderr)
	}

	// 5. The lock command of the no-lock warning pins the plugins; a pin
	// that no longer matches names the command that updates it.
	if r := w.paste(pin[0]); r.code != 0 || !strings.Contains(r.stdout, "wrote") {
		t.Fatalf("pasted %s: exit %d:\n%s%s", pin[0], r.code, r.stdout, r.stderr)
	}
	lockFile := filepath.Join(w.dir, "run books", "runbook.lock")
	lb, err := os.ReadFile(lockFile)
	if err != nil {
		t.Fatal(err)
	}
	var lf struct {
		Plugins map[string]struct{ SHA256 string } `json:"plugins"`
	}
	if err := json.Unmarshal(lb, &lf); err != nil {
		t.Fatal(err)
	}
	stale := strings.Replace(string(lb), lf.Plugins["test"].SHA256, strings.Repeat("0", 64), 1)
	if err := os.WriteFile(lockFile, []byte(stale), 0o644); err != nil {
		t.Fatal(err)
	}
	res = w.run(nil, "validate", rb)
	hints = hintsIn(res.stderr)
	if res.code != 2 || len(hints) != 1 {
		t.Fatalf("validate with a stale pin: exit %d:\n%s", res.code, res.stderr)
	}
	if r := w.paste(hints[0]); r.code != 0 {
		t.Fatalf("pasted %s: exit %d:\n%s%s", hints[0], r.code, r.stdout, r.stderr)
	}
	if r := w.run(nil, "validate", rb, "--locked"); r.code != 0 {
		t.Fatalf("validate --locked after the pasted lock: exit %d: %s", r.code, r.stderr)
	}

	// 6. A step cut off mid-action whose action is not idempotent: resume
	// names the two commands that decide; one of them is pasted.
	w.write(filepath.Join("run books", "rb one.yaml"), strings.Replace(hintsRunbook, "uses: test.sleep\n    with: { duration: 2s }", "uses: test.crash\n    with: { mode: exit, after: 30s }", 1))
	if r := w.paste(pin[0]); r.code != 0 { // the runbook changed: lock it again
		t.Fatalf("lock: %s", r.stderr)
	}
	res = w.run(func(e journal.Record, p *os.Process) {
		if e.Type == journal.AttemptStarted && e.Step == "wait" {
			_ = p.Signal(syscall.SIGKILL)
		}
	}, append(args, "--approve", "ok", "-o", "json")...)
	cut := res.runID()
	res = w.run(nil, "resume", cut, "--state", state, "--var-file", vars)
	if res.code != 2 {
		t.Fatalf("resume without a decision: exit %d:\n%s", res.code, res.stderr)
	}
	hintAfter(t, res.stderr, "run wait again:")
	skip := hintAfter(t, res.stderr, "go on without it:")
	if r := w.paste(skip); r.code != 0 {
		t.Fatalf("pasted %s: exit %d:\n%s%s", skip, r.code, r.stdout, r.stderr)
	}

	// 7. A state directory others can write: the error's fix, pasted,
	// makes it usable.
	if err := os.Chmod(state, 0o777); err != nil {
		t.Fatal(err)
	}
	res = w.run(nil, "runs", "--state", state)
	fix := hintAfter(t, res.stderr, "Fix it with:")
	if res.code != 1 || !strings.HasPrefix(fix, "chmod go-w ") {
		t.Fatalf("runs with a state others can write: exit %d:\n%s", res.code, res.stderr)
	}
	if r := w.paste(fix); r.code != 0 {
		t.Fatalf("pasted %s: exit %d: %s", fix, r.code, r.stderr)
	}
	if r := w.run(nil, "runs", "--state", state); r.code != 0 {
		t.Fatalf("runs after the fix: exit %d: %s", r.code, r.stderr)
	}
}

// waitForJournal waits until a journal in state has a record of typ for
// step.
func waitForJournal(t *testing.T, state, step, typ string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		files, _ := filepath.Glob(filepath.Join(state, "runs", "*.jsonl"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			for _, line := range strings.Split(string(b), "\n") {
				var r journal.Record
				if json.Unmarshal([]byte(line), &r) == nil && r.Step == step && r.Type == typ && !strings.Contains(string(b), `"run_finished"`) {
					return
				}
			}
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("no %s of %s in %s", typ, step, state)
}
