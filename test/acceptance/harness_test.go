// Package acceptance_test runs the real runbook binary with real plugin
// processes (the hello example and the test plugin), the way an operator
// does, and checks exit codes, side effects, journals and that no plugin
// process outlives a run.
package acceptance_test

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// binDir holds bin/runbook, runbook-plugin-test and runbook-plugin-hello,
// built once per test run.
var binDir string

func TestMain(m *testing.M) { os.Exit(buildAndRun(m)) }

func buildAndRun(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	dir, err := os.MkdirTemp("", "runbook-acceptance-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for out, pkg := range map[string]string{
		"runbook":              "./cmd/runbook",
		"runbook-plugin-test":  "./sdk/pluginhost/internal/testplugin",
		"runbook-plugin-hello": "./examples/plugins/hello",
	} {
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			return 1
		}
	}
	binDir = dir
	return m.Run()
}

// workspace is a directory with a runbook, its state and a side-effect file.
type workspace struct {
	t   *testing.T
	dir string
	// marker is set in the environment of every process the test starts, so
	// leftover processes can be found by it.
	marker string
	// env is added to every command's environment.
	env []string
}

func newWorkspace(t *testing.T) *workspace {
	t.Helper()
	w := &workspace{t: t, dir: t.TempDir(), marker: fmt.Sprintf("RUNBOOK_ACCEPTANCE_MARKER=%s-%d", strings.ReplaceAll(t.Name(), "/", "_"), time.Now().UnixNano())}
	t.Cleanup(w.assertNoProcessLeft)
	return w
}

// write puts a file in the workspace; "@record" in it is replaced by the
// path of the side-effect file.
func (w *workspace) write(name, content string) string {
	w.t.Helper()
	p := filepath.Join(w.dir, name)
	content = strings.ReplaceAll(content, "@record", w.recordFile())
	if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
		w.t.Fatal(err)
	}
	return p
}

func (w *workspace) recordFile() string { return filepath.Join(w.dir, "effects.txt") }

// effects are the lines the test plugin's record action appended.
func (w *workspace) effects() []string {
	b, err := os.ReadFile(w.recordFile())
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		w.t.Fatal(err)
	}
	return strings.Fields(string(b))
}

type result struct {
	code           int
	stdout, stderr string
	events         []journal.Record
}

func (r result) of(step, typ string) []journal.Record {
	var out []journal.Record
	for _, e := range r.events {
		if (step == "" || e.Step == step) && (typ == "" || e.Type == typ) {
			out = append(out, e)
		}
	}
	return out
}

func (r result) runID() string {
	for _, e := range r.events {
		if e.RunID != "" {
			return e.RunID
		}
	}
	return ""
}

// run runs bin/runbook in the workspace with --output json when the
// command takes it. onEvent sees each event as it arrives, with the
// runbook process, to act mid-run.
func (w *workspace) run(onEvent func(journal.Record, *os.Process), args ...string) result {
	w.t.Helper()
	cmd := w.command(args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		w.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		w.t.Fatal(err)
	}
	timer := time.AfterFunc(2*time.Minute, func() { _ = cmd.Process.Kill() }) // a hang guard
	defer timer.Stop()
	var res result
	var raw strings.Builder
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		raw.WriteString(line + "\n")
		var e journal.Record
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &e) == nil {
			res.events = append(res.events, e)
			if onEvent != nil {
				onEvent(e, cmd.Process)
			}
		}
	}
	_ = cmd.Wait()
	res.stdout, res.stderr = raw.String(), stderr.String()
	res.code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.code = 128 + int(ws.Signal())
	}
	if strings.Contains(res.stderr, "panic:") || strings.Contains(res.stderr, "goroutine ") {
		w.t.Errorf("runbook panicked:\n%s", res.stderr)
	}
	return res
}

// command is bin/runbook with args, in the workspace, with its environment
// (extra entries appended to it win).
func (w *workspace) command(args ...string) *exec.Cmd {
	cmd := exec.Command(filepath.Join(binDir, "runbook"), args...)
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), w.marker, "RUNBOOK_PLUGIN_PATH="+binDir, "RUNBOOK_STATE="+filepath.Join(w.dir, "state"), "NO_COLOR=1")
	cmd.Env = append(cmd.Env, w.env...)
	return cmd
}

// journal reads a run's journal from the workspace's state.
func (w *workspace) journal(runID string) *journal.Journal {
	w.t.Helper()
	b, err := os.ReadFile(filepath.Join(w.dir, "state", "runs", runID+".jsonl"))
	if err != nil {
		w.t.Fatal(err)
	}
	j, err := journal.Parse(runID, b)
	if err != nil {
		w.t.Fatal(err)
	}
	return j
}

// processesWithMarker lists live processes started by this test (the
// runbook and every plugin inherit the marker).
func processesWithMarker(marker string) []int {
	var pids []int
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", e.Name(), "environ"))
		if err != nil {
			continue
		}
		if bytes.Contains(env, []byte(marker+"\x00")) {
			if stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat")); err == nil && bytes.Contains(stat, []byte(") Z ")) {
				continue // a zombie is already dead
			}
			pids = append(pids, pid)
		}
	}
	return pids
}

func (w *workspace) assertNoProcessLeft() {
	deadline := time.Now().Add(5 * time.Second) // SIGKILL and exits are asynchronous
	for {
		pids := processesWithMarker(w.marker)
		if len(pids) == 0 {
			return
		}
		if time.Now().After(deadline) {
			w.t.Errorf("processes left behind by the run: %v", pids)
			for _, p := range pids {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pluginPIDs lists the live test-plugin processes of this test.
func (w *workspace) pluginPIDs() []int {
	var out []int
	for _, pid := range processesWithMarker(w.marker) {
		exe, err := os.Readlink(filepath.Join("/proc", strconv.Itoa(pid), "exe"))
		if err == nil && strings.HasSuffix(exe, "runbook-plugin-test") {
			out = append(out, pid)
		}
	}
	return out
}
