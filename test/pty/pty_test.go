// Package pty_test runs the real runbook binary in a pseudo-terminal of a
// fixed size, answers its approval prompt by typing into the terminal, and
// checks what an operator would see once it exits: the output is replayed
// through a terminal emulator (internal/ui/vt), redraws and all.
package pty_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/creack/pty"

	"github.com/runbookhq/runbook/internal/ui/vt"
)

var binDir string

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "runbook-pty-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	binDir = dir
	code := func() int {
		defer os.RemoveAll(dir)
		for pkg, name := range map[string]string{
			"../../cmd/runbook":                        "runbook",
			"../../sdk/pluginhost/internal/testplugin": "runbook-plugin-test",
		} {
			out, err := exec.Command("go", "build", "-o", filepath.Join(dir, name), pkg).CombinedOutput()
			if err != nil {
				fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, out)
				return 1
			}
		}
		return m.Run()
	}()
	os.Exit(code)
}

// The runbook: a milestone, a step that fails once and is retried, a
// plugin logging a warning (on stderr, the same terminal), a parallel group
// whose children report progress, an approval, a last step.
const runbookYAML = `version: 1
name: pty-demo
plugins:
  test: { command: ./runbook-plugin-test }
steps:
  - id: first
    name: First step
    uses: test.echo
    with: { a: 1 }
    milestone: first done
  - id: flaky
    uses: test.fail
    with: { times: 1, message: "throttled" }
    retry: { attempts: 3, delay: 1s, jitter: false }
  - id: note
    uses: test.log
    with: { message: "plugin warns here", level: warn }
  - id: traffic
    parallel:
      - { id: dns_server, uses: test.sleep, with: { duration: 1s } }
      - { id: dns_iot, uses: test.sleep, with: { duration: 1500ms } }
  - id: confirm
    uses: core.approve
    with: { message: "Switch DNS?" }
  - id: last
    uses: test.echo
    with: { b: 2 }
`

const cols, rows = 100, 30

// workdir holds the runbook, the test plugin and a lock file pinning it.
func workdir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "rb.yaml"), []byte(runbookYAML), 0o644); err != nil {
		t.Fatal(err)
	}
	plugin, err := os.ReadFile(filepath.Join(binDir, "runbook-plugin-test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "runbook-plugin-test"), plugin, 0o755); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(filepath.Join(binDir, "runbook"), "plugins", "lock", "rb.yaml")
	cmd.Dir = dir
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("plugins lock: %v\n%s", err, out)
	}
	return dir
}

func env(extra ...string) []string {
	var e []string
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "NO_COLOR=") || strings.HasPrefix(kv, "TERM=") || strings.HasPrefix(kv, "USER=") || strings.HasPrefix(kv, "RUNBOOK_") {
			continue
		}
		e = append(e, kv)
	}
	return append(e, append([]string{"TERM=xterm-256color", "USER=tester"}, extra...)...)
}

// session is the binary running in a pty.
type session struct {
	t    *testing.T
	cmd  *exec.Cmd
	ptmx *os.File
	mu   sync.Mutex
	out  bytes.Buffer
	// seen is signalled whenever output arrives.
	seen chan struct{}
	done chan struct{}
}

func start(t *testing.T, dir string, envv []string, args ...string) *session {
	t.Helper()
	cmd := exec.Command(filepath.Join(binDir, "runbook"), args...)
	cmd.Dir, cmd.Env = dir, envv
	ptmx, err := pty.StartWithSize(cmd, &pty.Winsize{Cols: cols, Rows: rows})
	if err != nil {
		t.Fatal(err)
	}
	s := &session{t: t, cmd: cmd, ptmx: ptmx, seen: make(chan struct{}, 1), done: make(chan struct{})}
	go func() {
		defer close(s.done)
		buf := make([]byte, 4096)
		for {
			n, err := ptmx.Read(buf)
			if n > 0 {
				s.mu.Lock()
				s.out.Write(buf[:n])
				s.mu.Unlock()
				select {
				case s.seen <- struct{}{}:
				default:
				}
			}
			if err != nil { // EIO once the last process holding the tty exits
				return
			}
		}
	}()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		ptmx.Close()
	})
	return s
}

func (s *session) output() []byte {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]byte(nil), s.out.Bytes()...)
}

// waitFor waits until the output contains text. The deadline only guards
// against a hung binary; it is not a check on speed.
func (s *session) waitFor(ctx context.Context, text string) {
	s.t.Helper()
	for !bytes.Contains(s.output(), []byte(text)) {
		select {
		case <-s.seen:
		case <-s.done:
			if !bytes.Contains(s.output(), []byte(text)) {
				s.t.Fatalf("exited without printing %q:\n%s", text, s.output())
			}
		case <-ctx.Done():
			s.t.Fatalf("no %q in the output:\n%s", text, s.output())
		}
	}
}

// wait waits for the process and the end of its output; it returns the
// exit code.
func (s *session) wait(ctx context.Context) int {
	s.t.Helper()
	go func() {
		<-ctx.Done()
		_ = s.cmd.Process.Kill()
	}()
	err := s.cmd.Wait()
	<-s.done
	if ctx.Err() != nil {
		s.t.Fatalf("the binary did not exit:\n%s", s.output())
	}
	sid := s.cmd.Process.Pid
	if left := survivors(sid); len(left) > 0 {
		s.t.Errorf("processes of the session left behind: %v", left)
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		s.t.Fatal(err)
	}
	return 0
}

// survivors lists live processes of session sid (pty.Start makes the
// binary a session leader; its plugins inherit the session).
func survivors(sid int) []int {
	entries, _ := os.ReadDir("/proc")
	var out []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid pgrp session ...; comm may hold spaces.
		rest := string(b[bytes.LastIndexByte(b, ')')+2:])
		f := strings.Fields(rest)
		if len(f) > 3 && f[0] != "Z" && f[3] == strconv.Itoa(sid) {
			out = append(out, pid)
		}
	}
	return out
}

func screenOf(t *testing.T, out []byte) *vt.Screen {
	t.Helper()
	s := vt.New(cols, rows)
	s.Write(out)
	if len(s.Unknown) > 0 {
		t.Errorf("control sequences the emulator does not know: %q", s.Unknown)
	}
	return s
}

// line finds the transcript line matching re, failing if there is not
// exactly one: a step printed twice is redraw garbage.
func line(t *testing.T, transcript []string, re string) string {
	t.Helper()
	rx := regexp.MustCompile(re)
	var found []string
	for _, l := range transcript {
		if rx.MatchString(l) {
			found = append(found, l)
		}
	}
	if len(found) != 1 {
		t.Errorf("%d lines match %s, want 1:\n%s", len(found), re, strings.Join(transcript, "\n"))
		return ""
	}
	return found[0]
}

func TestLiveViewInATerminal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	out := runApproving(ctx, t, workdir(t), env(), "run", "rb.yaml", "--run-id", "20250611T101500Z-0000aaaa")
	screen := screenOf(t, out)
	all := screen.All()
	t.Logf("final transcript:\n%s", strings.Join(all, "\n"))

	// Each step once, with its status, in document order; the group's
	// children indented under it.
	want := []string{
		`^✓ first +\d+\.\ds  First step$`,
		`^◆ first done after `,
		`^✓ flaky +\d+\.\ds  test\.fail · 2 attempts$`,
		`^    ↻ 1 retry before it succeeded: TestFailure: throttled \(attempt 1\)$`,
		`^✓ note +\d+\.\ds  test\.log$`,
		`^✓ traffic +\d+\.\ds  parallel$`,
		`^  ✓ dns_server +\d+\.\ds  test\.sleep$`,
		`^  ✓ dns_iot +\d+\.\ds  test\.sleep$`,
		`Approve\? .*: yes$`,
		`^✓ confirm +\d+\.\ds  core\.approve · approved by tester \(interactive\)$`,
		`^✓ last +\d+\.\ds  test\.echo$`,
		`^STEP +STATUS +ATTEMPTS +DURATION$`,
		`^  dns_server +succeeded +1 `,
		`^run 20250611T101500Z-0000aaaa: succeeded in `,
	}
	pos := -1
	for _, re := range want {
		l := line(t, all, re)
		i := indexOf(all, l)
		if l != "" && i < pos {
			t.Errorf("%q is out of order", l)
		}
		pos = max(pos, i)
	}
	// The plugin's warning comes on stderr, a pipe of its own: it is
	// printed above the live region when it arrives, which may be just
	// before or just after the line of the step that logged it (whose
	// success comes over gRPC), but after the steps before and before the
	// steps after.
	warn := indexOf(all, line(t, all, `\[WARN\] +runbook\.test: plugin warns here`))
	if flaky, traffic := indexOf(all, line(t, all, `^✓ flaky `)), indexOf(all, line(t, all, `^✓ traffic `)); warn < flaky || warn > traffic {
		t.Errorf("the plugin's warning at line %d, not between flaky (%d) and traffic (%d)", warn, flaky, traffic)
	}
	// Nothing of the live region is left: no spinner, no sub-line of a
	// running step.
	for _, l := range all {
		if strings.ContainsAny(l, "⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏") || strings.Contains(l, "↳") {
			t.Errorf("live-region leftover: %q", l)
		}
	}
	// While it ran, the retry, the group's running children with their
	// progress and the group's counts were shown (in the live region,
	// since redrawn).
	plain := sgr.ReplaceAll(out, nil)
	for _, re := range []string{
		`↻ attempt 1 failed, retrying in \d`,
		`  [⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] dns_iot +\d+\.\ds  test\.sleep`,
		`      ↳ sleeping \(duration=1.5s`,
		`[⠋⠙⠹⠸⠼⠴⠦⠧⠇⠏] traffic +\d+\.\ds  parallel · \d running, \d done`,
	} {
		if !regexp.MustCompile(re).Match(plain) {
			t.Errorf("the output never showed %s", re)
		}
	}
	if screen.SGRs == 0 {
		t.Error("no colour on a colour terminal")
	}
	if fg := screen.FG("✓ last"); fg != 32 {
		t.Errorf("✓ drawn in colour %d, want green (32)", fg)
	}
}

var sgr = regexp.MustCompile(`\x1b\[[0-9;]*m`)

func TestNoColor(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := workdir(t)
	s := start(t, dir, env("NO_COLOR=1"), "run", "rb.yaml", "--auto-approve")
	if code := s.wait(ctx); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, s.output())
	}
	out := s.output()
	if m := sgr.FindAll(out, 3); len(m) > 0 {
		t.Errorf("colour sequences with NO_COLOR: %q", m)
	}
	// Still the live view (redrawn in place), just without colour.
	if !bytes.Contains(out, []byte("\x1b[J")) {
		t.Error("no live view with NO_COLOR")
	}
	all := screenOf(t, out).All()
	line(t, all, `^✓ traffic +\d+\.\ds  parallel$`)
	line(t, all, `^✓ confirm +\d+\.\ds  core\.approve · approved by \S+ \(auto-approve\)$`)
}

func TestNotATerminal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := workdir(t)
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "runbook"), "run", "rb.yaml", "--auto-approve")
	cmd.Dir, cmd.Env = dir, env()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Run(); err != nil {
		t.Fatalf("%v\n%s%s", err, stdout.String(), stderr.String())
	}
	if left := survivors(cmd.Process.Pid); len(left) > 0 {
		t.Errorf("processes left behind: %v", left)
	}
	out := stdout.String()
	if strings.Contains(out, "\x1b") {
		t.Errorf("escape sequences in output that is not a terminal:\n%q", out)
	}
	events, summary, _ := strings.Cut(out, "\n\n")
	stamp := regexp.MustCompile(`^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(Z|[+-]\d\d:\d\d) `)
	for _, l := range strings.Split(events, "\n") {
		if !stamp.MatchString(l) {
			t.Errorf("event line without a timestamp: %q", l)
		}
	}
	for _, want := range []string{"[flaky] attempt 1 failed (retrying in 1.0s)", "[dns_iot] sleeping (duration=1.5s", "[confirm] approved by ", "finished: succeeded"} {
		if !strings.Contains(events, want) {
			t.Errorf("no %q in:\n%s", want, events)
		}
	}
	if !strings.HasPrefix(summary, "STEP ") {
		t.Errorf("summary:\n%s", summary)
	}
}

// runApproving runs the binary in a pty, answers yes at its approval
// prompt, and returns all it printed; it must exit 0.
func runApproving(ctx context.Context, t *testing.T, dir string, envv []string, args ...string) []byte {
	t.Helper()
	s := start(t, dir, envv, args...)
	s.waitFor(ctx, "or 'pause' to stop and resume later: ") // the question's end: data may hold its beginning
	if _, err := s.ptmx.Write([]byte("yes\n")); err != nil {
		t.Fatal(err)
	}
	if code := s.wait(ctx); code != 0 {
		t.Fatalf("exit code %d:\n%s", code, s.output())
	}
	return s.output()
}

func indexOf(lines []string, l string) int {
	for i, x := range lines {
		if x == l {
			return i
		}
	}
	return -1
}
