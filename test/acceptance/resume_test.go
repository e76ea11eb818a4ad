package acceptance_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// A resume without a secret the run was given is refused before anything
// starts, naming the input, with exit 2 (a usage error).
func TestResumeWithoutASecretIsRefused(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	marker := filepath.Join(w.dir, "started.txt")
	rb := w.write("rb.yaml", strings.Replace(header, "plugins:", "inputs:\n  token: { type: string, secret: true }\nplugins:", 1)+`
steps:
  - id: ok
    uses: core.approve
    with: { message: continue }
  - id: a
    uses: test.record
    with: { file: "@record", line: "${{ inputs.token }}" }
`)
	res := w.run(nil, "run", rb, "--var", "token=abc", "-o", "json")
	if res.code != 3 {
		t.Fatalf("run: exit %d: %s", res.code, res.stderr)
	}
	id := res.runID()
	before := len(w.journal(id).Records)
	w.env = append(w.env, "RUNBOOK_TESTPLUGIN_MARKER="+marker, "RUNBOOK_CACHE_DIR=off")
	res = w.run(nil, "resume", id, "--approve", "ok")
	if res.code != 2 || !strings.Contains(res.stderr, "secret input(s) token must be given again") || !strings.Contains(res.stderr, "nothing was run") {
		t.Fatalf("resume without the secret: exit %d: %s", res.code, res.stderr)
	}
	// Validation describes the plugin (`describe`); none was started to
	// serve the run.
	for _, line := range markerRuns(t, marker) {
		if !strings.Contains(line, `["describe"]`) {
			t.Errorf("a plugin was started: %s", line)
		}
	}
	if got := len(w.journal(id).Records); got != before {
		t.Errorf("the journal grew from %d to %d records", before, got)
	}
	if res := w.run(nil, "resume", id, "--approve", "ok", "--var", "token=abc"); res.code != 0 {
		t.Fatalf("resume with the secret: exit %d: %s", res.code, res.stderr)
	}
}

// A disk that fills up mid-run: the run stops (exit 130), its journal ends
// with a run_interrupted record saying the disk is full (written in room
// kept for it), and resume, once there is room, names that cause. The state
// is on a 1 MiB tmpfs mounted in a user and mount namespace.
func TestDiskFullIsReportedAndResumeNamesIt(t *testing.T) {
	t.Parallel()
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) to mount a small file system:", err)
	}
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+"\nsteps:"+stepA+`
  - id: wait
    uses: test.sleep
    with: { duration: 1s }
  - id: big
    uses: test.echo
    with: { text: "`+strings.Repeat("x", 16<<10)+`" }`+stepB)
	state := filepath.Join(w.dir, "small")
	mkdir(t, state)
	script := `
set -u
mount -t tmpfs -o size=1m,mode=0700 tmpfs "$STATE" || { echo "cannot mount" >&2; exit 99; }
"$RUNBOOK" run "$RB" --state "$STATE" -o json > run.out 2> run.err &
pid=$!
until grep -qs '"type":"attempt_started".*"step":"wait"' "$STATE"/runs/*.jsonl; do sleep 0.02; done
dd if=/dev/zero of="$STATE/fill" bs=4k 2> /dev/null
wait $pid; echo $? > run.code
cat "$STATE"/runs/*.jsonl > journal.copy
rm "$STATE/fill"
"$RUNBOOK" resume "$(basename "$STATE"/runs/*.jsonl .jsonl)" --state "$STATE" -o json > resume.out 2> resume.err
echo $? > resume.code
`
	cmd := w.command()
	cmd.Path, cmd.Args = mustLook(t, "unshare"), []string{"unshare", "-Urm", "sh", "-c", script}
	cmd.Env = append(cmd.Env, "STATE="+state, "RUNBOOK="+filepath.Join(binDir, "runbook"), "RB="+rb)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "cannot mount") || strings.Contains(string(out), "unshare:") {
		t.Skipf("cannot mount a tmpfs in a user namespace here: %v: %s", err, out)
	}
	if err != nil {
		t.Fatalf("the script failed: %v\n%s", err, out)
	}
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(w.dir, name))
		if err != nil {
			t.Fatal(err)
		}
		return strings.TrimSpace(string(b))
	}
	if code := read("run.code"); code != "130" {
		t.Fatalf("run on a full disk: exit %s:\n%s", code, read("run.err"))
	}
	j, err := journal.Parse(firstRunID(read("journal.copy")), []byte(read("journal.copy")+"\n"))
	if err != nil {
		t.Fatalf("the journal of a run stopped by a full disk: %v", err)
	}
	last := j.Records[len(j.Records)-1]
	if last.Type != journal.RunInterrupted || !strings.Contains(last.Message, "is full") || !strings.Contains(last.Message, "no space left on device") {
		t.Fatalf("the journal ends with %s %q", last.Type, last.Message)
	}
	if code := read("resume.code"); code != "0" {
		t.Fatalf("resume once there is room: exit %s:\n%s", code, read("resume.err"))
	}
	if e := read("resume.err"); !strings.Contains(e, "was interrupted: writing the run journal: the disk holding the state directory") {
		t.Errorf("resume does not name the full disk:\n%s", e)
	}
	want(t, "effects", w.effects(), []string{"a", "b"})
}

func mustLook(t *testing.T, name string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// firstRunID is the run id of the first record of a journal's text.
func firstRunID(text string) string {
	_, rest, _ := strings.Cut(text, `"run_id":"`)
	id, _, _ := strings.Cut(rest, `"`)
	return id
}

// A journal edited while its run was paused (an approval forged as granted,
// an output changed) is refused by resume and report, naming the record; the
// run's plugin actions are not called again.
func TestEditedJournalIsRefused(t *testing.T) {
	t.Parallel()
	for _, c := range []struct{ name, old, new string }{
		{"forged approval", `"type":"run_paused"`, `"type":"approval_granted","by":"mallory"`},
		{"edited output", `"outputs":{"lines":1}`, `"outputs":{"lines":7}`},
	} {
		t.Run(c.name, func(t *testing.T) {
			w := newWorkspace(t)
			rb := w.write("rb.yaml", header+`
steps:
  - id: a
    uses: test.record
    with: { file: "@record", line: one }
  - id: ok
    uses: core.approve
    with: { message: continue }
  - id: b
    uses: test.record
    with: { file: "@record", line: "n=${{ steps.a.outputs.lines }}" }
`)
			res := w.run(nil, "run", rb, "-o", "json")
			if res.code != 3 {
				t.Fatalf("run: exit %d: %s", res.code, res.stderr)
			}
			id := res.runID()
			path := filepath.Join(w.dir, "state", "runs", id+".jsonl")
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if !strings.Contains(string(data), c.old) {
				t.Fatalf("%s not in the journal:\n%s", c.old, data)
			}
			if err := os.WriteFile(path, []byte(strings.Replace(string(data), c.old, c.new, 1)), 0o600); err != nil {
				t.Fatal(err)
			}
			before := len(w.effects())
			for _, args := range [][]string{{"resume", id, "--approve", "ok"}, {"report", id}} {
				res := w.run(nil, args...)
				if res.code == 0 || !strings.Contains(res.stderr, "does not match its checksum") || !strings.Contains(res.stderr, "corrupt at line") {
					t.Errorf("%s of an edited journal: exit %d: %s", args[0], res.code, res.stderr)
				}
			}
			if got := len(w.effects()); got != before {
				t.Errorf("actions ran after the edit: %d effects, %d before", got, before)
			}
		})
	}
}

// A retryable error that says when to retry (a server's Retry-After) holds
// the next attempt back that long, longer than the runbook's backoff; the
// journal records the wait asked for and the gap between the attempts
// shows it was honoured. A wait asked beyond the step's timeout is cut to
// the timeout.
func TestRetryAfterIsHonoured(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+`
steps:
  - id: limited
    uses: test.fail
    with: { mode: retryable, times: 1, retry_after: 1500ms }
    retry: { attempts: 2, delay: 100ms, max_delay: 100ms, jitter: false }
  - id: greedy
    uses: test.fail
    timeout: 400ms
    with: { mode: retryable, times: 1, retry_after: 1h }
    retry: { attempts: 2, delay: 100ms, jitter: false }
`)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 0 {
		t.Fatalf("run: exit %d: %s", res.code, res.stderr)
	}
	j := w.journal(res.runID())
	for _, c := range []struct {
		step   string
		asked  time.Duration
		waited time.Duration
	}{{"limited", 1500 * time.Millisecond, 1500 * time.Millisecond}, {"greedy", time.Hour, 400 * time.Millisecond}} {
		var failedAt, nextAt time.Time
		for _, r := range j.Records {
			switch {
			case r.Step == c.step && r.Type == journal.AttemptFailed:
				failedAt = r.Time
				if r.Error == nil || r.Error.RetryAfter.Std() != c.asked || r.NextDelay.Std() != c.waited {
					t.Errorf("%s: attempt_failed %+v next_delay %s, want retry_after %s and next_delay %s", c.step, r.Error, r.NextDelay.Std(), c.asked, c.waited)
				}
			case r.Step == c.step && r.Type == journal.AttemptStarted && r.Attempt == 2:
				nextAt = r.Time
			}
		}
		if failedAt.IsZero() || nextAt.IsZero() {
			t.Fatalf("%s: no failed first attempt or no second attempt in the journal", c.step)
		}
		if gap := nextAt.Sub(failedAt); gap < c.waited {
			t.Errorf("%s: the second attempt started %s after the first failed, before the %s asked", c.step, gap, c.waited)
		}
	}
}
