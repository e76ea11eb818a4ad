package acceptance_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// markerRuns lists what the test plugin wrote to its start marker: one line
// per process started from its executable (describe included).
func markerRuns(t *testing.T, path string) []string {
	t.Helper()
	b, err := os.ReadFile(path)
	if os.IsNotExist(err) {
		return nil
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Split(strings.TrimSpace(string(b)), "\n")
}

const pinRunbook = `version: 1
name: pinned
plugins:
  test: { command: runbook-plugin-test }
steps:
  - id: a
    uses: test.record
    with: { file: "@record", line: a }
`

// Locked mode (--locked, RUNBOOK_LOCKED=1) runs no plugin runbook.lock does
// not pin: not even its describe, so validating an untrusted change cannot
// execute its code. The plugin writes a marker whenever it starts.
func TestLockedRunsNoUnpinnedPlugin(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	marker := filepath.Join(w.dir, "started.txt")
	w.env = append(w.env, "RUNBOOK_TESTPLUGIN_MARKER="+marker, "RUNBOOK_CACHE_DIR=off")
	rb := w.write("rb.yaml", pinRunbook)
	for _, args := range [][]string{
		{"validate", "--locked", rb},
		{"plan", rb, "--locked"},
		{"run", rb, "--locked"},
		{"plugins", "list", rb, "--locked"},
		{"schema", rb, "--locked"},
	} {
		res := w.run(nil, args...)
		if res.code == 0 || !strings.Contains(res.stderr+res.stdout, "not pinned") || !strings.Contains(res.stderr+res.stdout, "plugins lock") {
			t.Errorf("runbook %s: exit %d, want a refusal naming the plugin as not pinned:\n%s%s", strings.Join(args, " "), res.code, res.stdout, res.stderr)
		}
	}
	if res := w.run(nil, "plugins", "lock", rb, "--locked"); res.code != 2 {
		t.Errorf("plugins lock in locked mode: exit %d: %s", res.code, res.stderr)
	}
	// The environment variable, as CI sets it.
	w.env = append(w.env, "RUNBOOK_LOCKED=1")
	if res := w.run(nil, "validate", rb); res.code != 2 || !strings.Contains(res.stderr, "not pinned") {
		t.Errorf("validate with RUNBOOK_LOCKED=1: exit %d: %s", res.code, res.stderr)
	}
	if got := markerRuns(t, marker); len(got) > 0 {
		t.Fatalf("the unpinned plugin was executed in locked mode: %v", got)
	}
	if len(w.effects()) > 0 {
		t.Fatal("an action ran")
	}
	// A typo must not turn the safety off.
	w.env[len(w.env)-1] = "RUNBOOK_LOCKED=ture"
	if res := w.run(nil, "validate", rb); res.code != 2 || !strings.Contains(res.stderr, "RUNBOOK_LOCKED") {
		t.Errorf("RUNBOOK_LOCKED=ture: exit %d: %s", res.code, res.stderr)
	}
	// Once pinned (which runs it, to describe it), the plugin runs locked.
	w.env = w.env[:len(w.env)-1]
	if res := w.run(nil, "plugins", "lock", rb); res.code != 0 {
		t.Fatalf("plugins lock: exit %d: %s", res.code, res.stderr)
	}
	if res := w.run(nil, "run", rb, "--locked", "-o", "json"); res.code != 0 {
		t.Fatalf("run --locked with the plugin pinned: exit %d: %s", res.code, res.stderr)
	}
	want(t, "effects", w.effects(), []string{"a"})
	// The marker does record the plugin's starts (or this test proved
	// nothing): describe for the lock, then describe and serve for the run.
	if got := markerRuns(t, marker); len(got) < 2 || !strings.Contains(strings.Join(got, "\n"), `["describe"]`) {
		t.Fatalf("marker after the pinned runs: %v", got)
	}
}

// An env: entry that would load code the pin does not cover (a preloaded
// library, a module path) is refused at validation, before the plugin runs.
func TestLoaderEnvRefusedBeforeThePluginRuns(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	marker := filepath.Join(w.dir, "started.txt")
	w.env = append(w.env, "RUNBOOK_TESTPLUGIN_MARKER="+marker, "RUNBOOK_CACHE_DIR=off")
	evil := w.write("evil.so", "not a library")
	for name, value := range map[string]string{"LD_PRELOAD": evil, "ld_audit": evil, "PYTHONPATH": w.dir, "DYLD_INSERT_LIBRARIES": evil, "BASH_FUNC_x%%": "() { :; }"} {
		rb := w.write("rb.yaml", strings.Replace(pinRunbook, "command: runbook-plugin-test }", "command: runbook-plugin-test, env: { '"+name+"': '"+value+"' } }", 1))
		for _, cmd := range []string{"validate", "run", "plan"} {
			res := w.run(nil, cmd, rb)
			if res.code != 2 || !strings.Contains(res.stderr, "rb.yaml:4:") || !strings.Contains(res.stderr, "env "+name+" is refused") {
				t.Errorf("%s with env %s: exit %d:\n%s", cmd, name, res.code, res.stderr)
			}
		}
	}
	if got := markerRuns(t, marker); len(got) > 0 {
		t.Fatalf("the plugin was executed: %v", got)
	}
	if len(w.effects()) > 0 {
		t.Fatal("an action ran")
	}
}
