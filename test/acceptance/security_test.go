package acceptance_test

import (
	"bufio"
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"html"
	"io/fs"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// secSecrets are the secret input values the tests hide. They are chosen
// so that their encoded forms differ from the raw value: JSON and HTML
// escape characters of the first, the second is not ASCII, the third is a
// URL (query-escaped differently).
var secSecrets = map[string]string{
	"api_token":   `tok-"<&>\-A1b2C3d4E5f6`,
	"db_password": "pässwörd-Zz9!x/7",
	"webhook":     "https://hooks.example.com/services/T000/B000/XYZsecret?x=1&y=2",
	"signing_key": "sk_live_51HxQeRsT0123456789uvWX",
}

// secForms are the forms a leaked secret could take in output: as is,
// JSON-escaped (with and without HTML escaping), Go-quoted, HTML-escaped,
// URL-escaped and base64 in its four alphabets.
func secForms(s string) map[string]string {
	forms := map[string]string{"raw": s}
	forms["json"] = secJSONInner(s)
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	_ = enc.Encode(s)
	forms["json-noescape"] = strings.TrimSpace(b.String())[1 : len(strings.TrimSpace(b.String()))-1]
	forms["json-in-json"] = secJSONInner(secJSONInner(s))
	forms["html(json)"] = html.EscapeString(forms["json"])
	q := strconv.Quote(s)
	forms["go-quoted"] = q[1 : len(q)-1]
	forms["html"] = html.EscapeString(s)
	forms["query-escaped"] = url.QueryEscape(s)
	forms["path-escaped"] = url.PathEscape(s)
	forms["base64"] = base64.StdEncoding.EncodeToString([]byte(s))
	forms["base64-raw"] = base64.RawStdEncoding.EncodeToString([]byte(s))
	forms["base64-url"] = base64.URLEncoding.EncodeToString([]byte(s))
	forms["base64-rawurl"] = base64.RawURLEncoding.EncodeToString([]byte(s))
	return forms
}

func secJSONInner(s string) string {
	j, _ := json.Marshal(s)
	return string(j[1 : len(j)-1])
}

// secLeakScan counts every form of every secret in named blobs of bytes.
type secLeakScan struct {
	blobs   map[string][]byte
	scanned int64
}

func (s *secLeakScan) add(name string, b []byte) {
	if s.blobs == nil {
		s.blobs = map[string][]byte{}
	}
	s.blobs[name] = append(s.blobs[name], b...)
	s.scanned += int64(len(b))
}

// addDir adds every file under dir.
func (s *secLeakScan) addDir(t *testing.T, label, dir string) int {
	t.Helper()
	n := 0
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if os.IsNotExist(err) {
				return nil
			}
			return err
		}
		if d.IsDir() {
			return nil
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		s.add(label+"/"+rel, b)
		n++
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// check fails the test for every occurrence found.
func (s *secLeakScan) check(t *testing.T) int {
	t.Helper()
	found := 0
	names := make([]string, 0, len(s.blobs))
	for n := range s.blobs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		b := s.blobs[name]
		for input, secret := range secSecrets {
			for form, v := range secForms(secret) {
				if c := bytes.Count(b, []byte(v)); c > 0 {
					found += c
					i := bytes.Index(b, []byte(v))
					lo, hi := max(0, i-80), min(len(b), i+len(v)+80)
					t.Errorf("secret %s (%s form) appears %d time(s) in %s: ...%s...", input, form, c, name, b[lo:hi])
				}
			}
		}
	}
	return found
}

// secResult is how one command ended.
type secResult struct {
	code           int
	stdout, stderr string
	maxRSS         int64 // peak resident memory, bytes
}

// secRun runs bin/runbook in dir with extra environment; stdin is empty.
func secRun(t *testing.T, w *workspace, env []string, args ...string) secResult {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "runbook"), args...)
	cmd.Dir = w.dir
	cmd.Env = append(append(os.Environ(), w.marker, "RUNBOOK_PLUGIN_PATH="+binDir, "NO_COLOR=1"), env...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { _ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) })
	defer timer.Stop()
	_ = cmd.Wait()
	res := secResult{code: cmd.ProcessState.ExitCode(), stdout: stdout.String(), stderr: stderr.String()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		res.maxRSS = ru.Maxrss << 10 // kilobytes on Linux
	}
	if strings.Contains(res.stderr, "panic:") {
		t.Errorf("runbook panicked:\n%s", res.stderr)
	}
	return res
}

// secEvents parses --output json lines.
func secEvents(t *testing.T, stdout string) []journal.Record {
	t.Helper()
	var out []journal.Record
	sc := bufio.NewScanner(strings.NewReader(stdout))
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		var e journal.Record
		if strings.HasPrefix(sc.Text(), "{") && json.Unmarshal(sc.Bytes(), &e) == nil {
			out = append(out, e)
		}
	}
	return out
}

func secRunID(t *testing.T, r secResult) string {
	t.Helper()
	for _, e := range secEvents(t, r.stdout) {
		if e.RunID != "" {
			return e.RunID
		}
	}
	// Text output: "run <id> started: ..."
	for _, line := range strings.Split(r.stdout, "\n") {
		f := strings.Fields(line)
		for i := 0; i+2 < len(f); i++ {
			if f[i] == "run" && strings.HasSuffix(f[i+2], ":") && (f[i+2] == "started:" || f[i+2] == "paused:") {
				return f[i+1]
			}
		}
	}
	t.Fatalf("no run id in output:\n%s", r.stdout)
	return ""
}

// secRunbook passes every secret into plugin parameters (whole, inside
// strings, inside lists, JSON- and base64-encoded by expressions), plugin
// logs (hclog fields and raw stderr), the plugin's environment, progress,
// errors of retried attempts, until polls, approvals, a failing step, the
// rollbacks, and the runbook's outputs.
const secRunbook = `version: 1
name: secrets
inputs:
  api_token:   { type: string, secret: true }
  db_password: { type: string, secret: true }
  webhook:     { type: string, secret: true }
  signing_key: { type: string, secret: true }
  region:      { type: string, default: eu-west-1 }
  rollback_failures: { type: number, default: 1 }
  fail: { type: bool, default: true }
plugins:
  test: { command: runbook-plugin-test }
defaults:
  retry: { attempts: 2, delay: 100ms }
steps:
  - id: echo
    uses: test.echo
    with:
      token: ${{ inputs.api_token }}
      url: "prefix-${{ inputs.webhook }}-suffix"
      nested: { list: ["${{ inputs.db_password }}", "${{ inputs.signing_key }}"] }
      json_body: '${{ toJSON({"token": inputs.api_token, "pw": inputs.db_password, "hook": inputs.webhook}) }}'
      b64: ${{ toBase64(inputs.signing_key) }}
      b64_token: ${{ toBase64(inputs.api_token) }}
    rollback:
      uses: test.fail
      with: { mode: retryable, times: "${{ inputs.rollback_failures }}", message: "rollback of echo failed for ${{ inputs.signing_key }} and ${{ toJSON(inputs.api_token) }}" }
  - id: log
    uses: test.log
    with:
      message: "connecting with ${{ inputs.api_token }} to ${{ inputs.webhook }}"
      level: error
      fields: { pw: "${{ inputs.db_password }}", quoted: "${{ toJSON(inputs.api_token) }}", key: "${{ inputs.signing_key }}" }
  - id: lograw
    uses: test.log
    with: { message: "raw ${{ inputs.webhook }} and ${{ inputs.db_password }} and ${{ inputs.api_token }}", raw: true }
  - id: corelog
    uses: core.log
    with: { message: "token is ${{ inputs.api_token }}", level: warn }
  - id: env
    uses: test.env
    with: { name: RUNBOOK_VAR_api_token }
  - id: flaky
    uses: test.fail
    with: { mode: retryable, times: 1, message: "throttled for ${{ inputs.api_token }} / ${{ inputs.signing_key }}" }
  - id: poll
    uses: test.echo
    with: { token: "${{ inputs.api_token }}", pw: "${{ inputs.db_password }}" }
    until: { condition: 'outputs.token == "never"', interval: 100ms, timeout: 250ms }
    continue_on_error: true
  - id: confirm
    uses: core.approve
    with: { message: "Proceed with ${{ inputs.api_token }} and ${{ inputs.webhook }}?" }
  - id: fail
    if: inputs.fail
    uses: test.fail
    with: { mode: fatal, code: Denied, message: "auth failed for ${{ inputs.db_password }} at ${{ inputs.webhook }} (${{ toJSON(inputs.api_token) }})" }
outputs:
  token_out: ${{ steps.echo.outputs.token }}
  body_out: ${{ steps.echo.outputs.json_body }}
  env_out: ${{ steps.env.outputs.value }}
  key_out: { value: "${{ inputs.signing_key }}", secret: true }
`

// TestSecretsNeverLeak runs runbooks whose secret inputs flow everywhere a
// value can go, through the real binary and plugin processes, in text and
// JSON, paused and resumed, failing and rolling back, planned and
// reported, and searches every byte they wrote for every secret in every
// encoding.
func TestSecretsNeverLeak(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("secrets.yaml", secRunbook)
	state := filepath.Join(w.dir, "state")
	varFile := w.write("secrets.vars.yaml", fmt.Sprintf("signing_key: %q\n", secSecrets["signing_key"]))
	pwFile := w.write("pw.txt", secSecrets["db_password"]+"\n")
	// Each secret by a different route: environment, --var, @file, --var-file.
	env := []string{"RUNBOOK_VAR_api_token=" + secSecrets["api_token"]}
	vars := []string{"--var", "webhook=" + secSecrets["webhook"], "--var", "db_password=@" + pwFile, "--var-file", varFile, "--state", state}

	var scan secLeakScan
	record := func(what string, r secResult) {
		scan.add(what+" stdout", []byte(r.stdout))
		scan.add(what+" stderr", []byte(r.stderr))
	}

	// 1. Text output, debug logs, until the approval pauses the run.
	r := secRun(t, w, env, append([]string{"run", rb, "--log-level", "trace"}, vars...)...)
	record("run (text)", r)
	if r.code != 3 {
		t.Fatalf("run: exit %d, want 3 (paused)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}
	paused := secRunID(t, r)

	// The plugin did get the secrets, and the engine knew which they were.
	if !strings.Contains(r.stderr, "connecting with ***") || !strings.Contains(r.stderr, "raw ***") {
		t.Errorf("plugin log lines missing (expected redacted, not absent):\n%s", r.stderr)
	}

	// 2. Resume it (secrets given again), approved: the last step fails,
	// the echo rollback fails once then succeeds.
	r = secRun(t, w, env, append([]string{"resume", paused, "--approve", "confirm", "--log-level", "debug"}, vars...)...)
	record("resume (text)", r)
	if r.code != 1 {
		t.Fatalf("resume: exit %d, want 1 (failed, rolled back)\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	// 3. JSON events, auto-approved, the rollback failing for good: exit 4.
	r = secRun(t, w, env, append([]string{"run", rb, "-o", "json", "--auto-approve", "--log-level", "info", "--var", "rollback_failures=5"}, vars...)...)
	record("run (json)", r)
	if r.code != 4 {
		t.Fatalf("run -o json: exit %d, want 4 (rollback failed)\nstderr:\n%s", r.code, r.stderr)
	}
	jsonRun := secRunID(t, r)
	secExpectRedacted(t, secEvents(t, r.stdout), journal.StatusRollbackFailed)

	// 3b. The same, succeeding: the runbook outputs.
	r = secRun(t, w, env, append([]string{"run", rb, "-o", "json", "--auto-approve", "--var", "fail=false"}, vars...)...)
	record("run (json, succeeding)", r)
	if r.code != 0 {
		t.Fatalf("run -o json (succeeding): exit %d\nstderr:\n%s", r.code, r.stderr)
	}
	secExpectRedacted(t, secEvents(t, r.stdout), journal.StatusSucceeded)
	r = secRun(t, w, env, append([]string{"run", rb, "--auto-approve", "--var", "fail=false"}, vars...)...)
	record("run (text, succeeding)", r)
	if r.code != 0 || !strings.Contains(r.stdout, "key_out") {
		t.Fatalf("run (succeeding): exit %d, want 0 and the outputs\nstdout:\n%s\nstderr:\n%s", r.code, r.stdout, r.stderr)
	}

	// 4. Plan, text and JSON.
	r = secRun(t, w, env, append([]string{"plan", rb, "--log-level", "debug"}, vars...)...)
	record("plan (text)", r)
	if r.code != 0 {
		t.Errorf("plan: exit %d\n%s", r.code, r.stderr)
	}
	r = secRun(t, w, env, append([]string{"plan", rb, "-o", "json"}, vars...)...)
	record("plan (json)", r)
	if r.code != 0 {
		t.Errorf("plan -o json: exit %d\n%s", r.code, r.stderr)
	}

	// 5. Listing and reports of both runs, Markdown and HTML.
	r = secRun(t, w, nil, "runs", "--state", state)
	record("runs", r)
	r = secRun(t, w, nil, "runs", "--state", state, "-o", "json")
	record("runs (json)", r)
	reports := filepath.Join(w.dir, "reports")
	if err := os.MkdirAll(reports, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{paused, jsonRun} {
		r = secRun(t, w, nil, "report", id, "--state", state)
		record("report "+id, r)
		if r.code != 0 || !strings.Contains(r.stdout, "echo") {
			t.Errorf("report %s: exit %d\n%s", id, r.code, r.stderr)
		}
		r = secRun(t, w, nil, "report", id, "--state", state, "-o", filepath.Join(reports, id+".html"))
		record("report html "+id, r)
		if r.code != 0 {
			t.Errorf("report html %s: exit %d\n%s", id, r.code, r.stderr)
		}
	}

	journals := scan.addDir(t, "state", state)
	if journals < 2 {
		t.Errorf("%d files in the state directory, want both journals", journals)
	}
	if n := scan.addDir(t, "reports", reports); n != 2 {
		t.Errorf("%d HTML reports written, want 2", n)
	}
	found := scan.check(t)
	t.Logf("scanned %d bytes (stdout, stderr, %d state files, reports) for %d secrets in %d forms each: %d found",
		scan.scanned, journals, len(secSecrets), len(secForms("x")), found)
}

// secExpectRedacted checks that the values did flow (as ***) where the
// runbook sent them, so the scan is not passing because nothing ran.
func secExpectRedacted(t *testing.T, evs []journal.Record, status string) {
	t.Helper()
	var echo, env, fin *journal.Record
	attemptErrors := 0
	for i, e := range evs {
		switch {
		case e.Type == journal.StepSucceeded && e.Step == "echo":
			echo = &evs[i]
		case e.Type == journal.StepSucceeded && e.Step == "env":
			env = &evs[i]
		case e.Type == journal.RunFinished:
			fin = &evs[i]
		case e.Type == journal.AttemptFailed && e.Error != nil && strings.Contains(e.Error.Message, "***"):
			attemptErrors++
		}
	}
	if echo == nil || echo.Outputs["token"] != "***" || echo.Outputs["url"] != "prefix-***-suffix" {
		t.Errorf("echo outputs: %+v", echo)
	}
	if env == nil {
		t.Error("no env step")
	} else if set, _ := env.Outputs["set"].(bool); set {
		t.Errorf("the plugin process sees RUNBOOK_VAR_api_token (outputs %v): secret inputs must not reach plugins through the environment", env.Outputs)
	}
	if fin == nil || fin.Status != status {
		t.Errorf("run_finished: %+v, want status %s", fin, status)
		return
	}
	if status == journal.StatusSucceeded {
		if fin.Outputs["key_out"] != "***" || fin.Outputs["token_out"] != "***" || fin.Outputs["env_out"] != "" {
			t.Errorf("run outputs: %v", fin.Outputs)
		}
		if attemptErrors < 1 {
			t.Errorf("%d attempt errors carried a redacted secret, want the flaky step's", attemptErrors)
		}
	} else if attemptErrors < 2 {
		t.Errorf("%d attempt errors carried a redacted secret, want the flaky step's and the rollback's", attemptErrors)
	}
}

func mustJSONString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// A secret given with a value the runbook refuses (not in its enum, wrong
// type) is not echoed in the diagnostic; and a plugin that dies with a
// secret on its stderr does not get it printed.
func TestSecretsNotInDiagnosticsOrCrashes(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	state := filepath.Join(w.dir, "state")
	rb := w.write("enum.yaml", `version: 1
name: enum
inputs:
  api_token: { type: string, secret: true, enum: [alpha, beta] }
  db_password: { type: number, secret: true }
steps:
  - id: hi
    uses: core.log
    with: { message: hi }
`)
	var scan secLeakScan
	for _, args := range [][]string{
		{"run", rb, "--var", "api_token=" + secSecrets["api_token"], "--var", "db_password=" + secSecrets["db_password"], "--state", state},
		{"plan", rb, "--var", "api_token=" + secSecrets["api_token"], "--var", "db_password=" + secSecrets["db_password"]},
	} {
		r := secRun(t, w, nil, args...)
		scan.add(args[0]+" stdout", []byte(r.stdout))
		scan.add(args[0]+" stderr", []byte(r.stderr))
		if r.code != 2 || !strings.Contains(r.stderr, "api_token") || !strings.Contains(r.stderr, "db_password") {
			t.Errorf("%s with invalid secret values: exit %d, want 2 with diagnostics naming both inputs\n%s", args[0], r.code, r.stderr)
		}
	}

	crash := w.write("crash.yaml", `version: 1
name: crash
inputs:
  api_token: { type: string, secret: true }
  signing_key: { type: string, secret: true }
plugins:
  test: { command: runbook-plugin-test }
steps:
  - id: boom
    uses: test.crash
    with: { message: "dying with ${{ inputs.api_token }} and ${{ inputs.signing_key }}", code: 7 }
`)
	r := secRun(t, w, []string{"RUNBOOK_VAR_signing_key=" + secSecrets["signing_key"]},
		"run", crash, "--var", "api_token="+secSecrets["api_token"], "--state", state, "--log-level", "trace", "-o", "json")
	scan.add("crash stdout", []byte(r.stdout))
	scan.add("crash stderr", []byte(r.stderr))
	if r.code != 1 {
		t.Errorf("crash: exit %d, want 1\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, "dying with ***") {
		t.Errorf("the crashing plugin's last words are not reported (redacted):\nstdout:\n%s\nstderr:\n%s", r.stdout, r.stderr)
	}
	scan.addDir(t, "state", state)
	scan.check(t)
}
