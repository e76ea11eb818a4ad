package scenarios_test

// Shared by the reliability scenarios (crash_test.go, plugin_death_test.go,
// faults_test.go, outage_test.go, splitbrain_test.go): the switch between the
// reduced CI sets and the full ones, finding the processes of one simulation,
// killing them, and reading a run's journal.

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// fullEnv selects the full reliability sets; without it each test runs the
// reduced set CI runs (a few points covering every class).
const fullEnv = "RUNBOOK_FULL_RELIABILITY"

func fullReliability() bool {
	v := strings.ToLower(os.Getenv(fullEnv))
	return v != "" && v != "0" && v != "false" && v != "no"
}

// proc is one process as /proc shows it.
type proc struct {
	pid, ppid int
	state     byte
	argv0     string
}

func (p proc) String() string {
	return strconv.Itoa(p.pid) + " (" + filepath.Base(p.argv0) + ", parent " + strconv.Itoa(p.ppid) + ", state " + string(p.state) + ")"
}

func readProc(pid int) (proc, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return proc{}, false
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return proc{}, false
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 2 {
		return proc{}, false
	}
	ppid, _ := strconv.Atoi(f[1])
	p := proc{pid: pid, ppid: ppid, state: f[0][0]}
	if cmd, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline"); err == nil {
		p.argv0, _, _ = strings.Cut(string(cmd), "\x00")
	}
	return p, true
}

// live reports whether the process runs (zombies are dead, only not reaped).
func (p proc) live() bool { return p.state != 'Z' && p.state != 'X' }

// procsWithEnv returns the live processes whose environment holds kv.
func procsWithEnv(kv string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	want := []byte(kv)
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile("/proc/" + e.Name() + "/environ")
		if err != nil {
			continue
		}
		if !slices.ContainsFunc(bytes.Split(env, []byte{0}), func(v []byte) bool { return bytes.Equal(v, want) }) {
			continue
		}
		if p, ok := readProc(pid); ok && p.live() {
			out = append(out, p)
		}
	}
	return out
}

// procs returns the live processes of this simulation's runbook commands:
// the runbook process and every plugin process it started (they inherit the
// HOME the harness gives the runbook, a directory of this test only; plugins
// run in process groups of their own, so the harness's group check does not
// see them).
func (s *sim) procs() []proc { return procsWithEnv("HOME=" + s.dir) }

// assertNoProcesses fails the test if a process of this simulation is still
// alive a few seconds after a runbook command ended (the plugins' parent-death
// signal, or the host's Close, must have ended them), and kills any survivor.
func (s *sim) assertNoProcesses(when string) {
	s.t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		left := s.procs()
		if len(left) == 0 {
			return
		}
		if time.Now().After(deadline) {
			s.t.Errorf("%s: %d process(es) of this simulation survived: %v", when, len(left), left)
			for _, p := range left {
				_ = syscall.Kill(p.pid, syscall.SIGKILL)
			}
			return
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pluginChildren returns the live plugin processes (runbook-plugin-<name>)
// whose parent is ppid; name "" matches every plugin.
func pluginChildren(ppid int, name string) []proc {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var out []proc
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		p, ok := readProc(pid)
		if !ok || p.ppid != ppid || !p.live() {
			continue
		}
		base := filepath.Base(p.argv0)
		if (name == "" && strings.HasPrefix(base, "runbook-plugin-")) || base == "runbook-plugin-"+name {
			out = append(out, p)
		}
	}
	return out
}

// gone waits up to d for every pid to have exited.
func gone(pids []int, d time.Duration) []int {
	deadline := time.Now().Add(d)
	for {
		var alive []int
		for _, pid := range pids {
			if p, ok := readProc(pid); ok && p.live() {
				alive = append(alive, pid)
			}
		}
		if len(alive) == 0 || time.Now().After(deadline) {
			return alive
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// runID is the run id a command's events carry.
func (r result) runID() string {
	for _, e := range r.events {
		if e.RunID != "" {
			return e.RunID
		}
	}
	return ""
}

// finished returns the run_finished event, if the command printed one.
func (r result) finished() (journal.Record, bool) {
	f := r.eventsOf("", journal.RunFinished)
	if len(f) != 1 {
		return journal.Record{}, false
	}
	return f[0], true
}

// journal reads a run's journal back from the simulation's state directory.
func (s *sim) readJournal(id string) *journal.Journal {
	s.t.Helper()
	j, err := journal.NewFileStore(filepath.Join(s.dir, "state")).Open(context.Background(), id)
	if err != nil {
		s.t.Fatalf("reading the journal of %s: %v", id, err)
	}
	return j
}

// failoverArgs is `run runbooks/failover.yaml --auto-approve -o json` with
// the simulation's inputs and extra flags.
func (s *sim) failoverArgs(extra ...string) []string {
	return append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs(extra...)...)
}

// noPanic fails the test if a command's output shows a Go panic (of the
// runbook process or of a plugin, whose stderr the host re-emits).
func noPanic(t *testing.T, what string, r result) {
	t.Helper()
	for _, out := range []string{r.stderr, r.stdout} {
		if strings.Contains(out, "panic:") || strings.Contains(out, "goroutine ") {
			t.Errorf("%s: output shows a panic:\n%s", what, out)
			return
		}
	}
}

// event matchers: where a scenario acts (kills, injects, clears faults).

// on matches the first event of a type for a step ("" any step).
func on(typ, step string) func(journal.Record) bool {
	return func(e journal.Record) bool {
		return e.Type == typ && (step == "" || e.Step == step) && !e.Rollback
	}
}

// onProgress matches a forward (not rollback) progress event of a step whose
// message contains substr.
func onProgress(step, substr string) func(journal.Record) bool {
	return func(e journal.Record) bool {
		return e.Type == journal.Progress && e.Step == step && !e.Rollback && strings.Contains(e.Message, substr)
	}
}
