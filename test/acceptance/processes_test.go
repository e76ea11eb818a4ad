package acceptance_test

import (
	"os"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// spawnSteps start a sleeping process in each way a plugin can: a child in
// its process group, a child in a session of its own (setsid), and a
// grandchild in a session of its own whose parent exited (a daemon's double
// fork, re-parented away from the plugin).
const spawnSteps = `
  - id: child
    uses: test.spawn
  - id: setsid
    uses: test.spawn
    with: { detach: setsid }
  - id: daemon
    uses: test.spawn
    with: { detach: daemon }
`

// spawned are the pids the spawn steps reported.
func spawned(t *testing.T, res result) []int {
	t.Helper()
	var pids []int
	for _, e := range res.of("", journal.StepSucceeded) {
		if pid, ok := e.Outputs["pid"].(float64); ok && e.Step != "wait" {
			pids = append(pids, int(pid))
		}
	}
	if len(pids) != 3 {
		t.Fatalf("spawned %v, want 3 processes", pids)
	}
	return pids
}

func alive(pid int) bool {
	if syscall.Kill(pid, 0) != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	return err == nil && !strings.Contains(string(b), ") Z ")
}

// assertGone fails unless every pid has exited within a few seconds.
func assertGone(t *testing.T, when string, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for alive(p) {
			if time.Now().After(deadline) {
				t.Errorf("%s: process %d (spawned by the plugin) still runs", when, p)
				_ = syscall.Kill(p, syscall.SIGKILL)
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
}

// No process a plugin started outlives the run: children in the plugin's
// group, in a new session, and a double-forked daemon, when the run ends.
func TestNoPluginDescendantOutlivesTheRun(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+"\nsteps:"+spawnSteps)
	res := w.run(nil, "run", rb, "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	assertGone(t, "after the run", spawned(t, res))
}

// The same when the plugin that started them dies mid-run: its detached
// descendants are killed, and the plugin restarted for the next step.
func TestDescendantsOfACrashedPluginAreKilled(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+"\nsteps:"+spawnSteps+`
  - id: crash
    uses: test.crash
    with: { mode: kill }
    continue_on_error: true
  - id: wait
    uses: test.sleep
    with: { duration: 2s }
`)
	var pids []int
	var during []int
	res := w.run(func(e journal.Record, _ *os.Process) {
		if e.Type == journal.StepSucceeded {
			if pid, ok := e.Outputs["pid"].(float64); ok && e.Step != "wait" {
				pids = append(pids, int(pid))
			}
		}
		// While the next step runs, the crashed plugin's descendants must
		// already be gone (not only when the run ends).
		if e.Type == journal.Progress && e.Step == "wait" {
			time.Sleep(time.Second)
			for _, p := range pids {
				if alive(p) {
					during = append(during, p)
				}
			}
		}
	}, "run", rb, "-o", "json")
	if res.code != 0 {
		t.Fatalf("exit %d: %s", res.code, res.stderr)
	}
	if len(pids) != 3 {
		t.Fatalf("spawned %v", pids)
	}
	if len(during) > 0 {
		t.Errorf("descendants %v of the crashed plugin still ran during the next step", during)
	}
	assertGone(t, "after the run", pids)
}

// kill -9 of runbook itself: the plugins die with it (parent-death
// signal), and the guard kills what they started, detached or not.
func TestKill9LeavesNoPluginOrDescendant(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	rb := w.write("rb.yaml", header+"\nsteps:"+spawnSteps+`
  - id: wait
    uses: test.sleep
    with: { duration: 30s }
`)
	var pids, plugins []int
	res := w.run(func(e journal.Record, p *os.Process) {
		if e.Type == journal.StepSucceeded {
			if pid, ok := e.Outputs["pid"].(float64); ok {
				pids = append(pids, int(pid))
			}
		}
		if e.Type == journal.Progress && e.Step == "wait" {
			plugins = w.pluginPIDs()
			// The guard reads the descendants every 250 ms: give it one
			// reading after the last spawn (the documented bound).
			time.Sleep(600 * time.Millisecond)
			_ = p.Signal(syscall.SIGKILL)
		}
	}, "run", rb, "-o", "json")
	if res.code != 128+int(syscall.SIGKILL) {
		t.Fatalf("exit %d, want killed: %s", res.code, res.stderr)
	}
	if len(pids) != 3 || len(plugins) == 0 {
		t.Fatalf("spawned %v, plugins %v", pids, plugins)
	}
	assertGone(t, "after kill -9 of runbook", append(pids, plugins...))
	w.assertNoProcessLeft()
}
