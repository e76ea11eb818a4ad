package acceptance_test

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
)

// integVariants are builds of the test plugin that differ from the one in
// binDir: another version string (so another sha256), and protocol v2.
type integVariants struct {
	other, v2 string
}

// integBuild builds the variants into a directory removed when t ends.
func integBuild(t *testing.T) integVariants {
	t.Helper()
	dir := t.TempDir()
	_, file, _, _ := runtime.Caller(0)
	root := filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	v := integVariants{other: filepath.Join(dir, "other", "runbook-plugin-test"), v2: filepath.Join(dir, "v2", "runbook-plugin-test")}
	for out, ldflags := range map[string]string{v.other: "-X main.version=0.2.0", v.v2: "-X main.protocolVersion=2"} {
		cmd := exec.Command("go", "build", "-o", out, "-ldflags", ldflags, "./sdk/pluginhost/internal/testplugin")
		cmd.Dir = root
		if b, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("building a test plugin variant: %v\n%s", err, b)
		}
	}
	return v
}

// integRunbook records a side effect in its first step: if anything ran,
// the effects file exists.
const integRunbook = `version: 1
name: integrity
plugins:
  test: { command: runbook-plugin-test }
steps:
  - id: effect
    uses: test.record
    with: { file: "@record", line: ran }
  - id: wait
    uses: core.approve
    with: { message: "go on?" }
  - id: again
    uses: test.record
    with: { file: "@record", line: again }
`

// integCopy copies an executable into dir under name.
func integCopy(t *testing.T, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

// integScript writes an executable shell script.
func integScript(t *testing.T, dir, name, body string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name), []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
}

// integNoJournal fails if the state directory holds any run.
func integNoJournal(t *testing.T, state string) {
	t.Helper()
	entries, err := os.ReadDir(filepath.Join(state, "runs"))
	if err != nil && !os.IsNotExist(err) {
		t.Fatal(err)
	}
	if len(entries) > 0 {
		t.Errorf("a journal was written although the run was refused before starting: %v", entries)
	}
}

// TestPluginIntegrity: a plugin that is not the pinned binary, speaks
// another protocol version, is missing, or writes to stdout is refused by
// validate, plan and run with a clear error and a non-zero exit code, and
// nothing runs: no action is invoked, and no journal is written.
func TestPluginIntegrity(t *testing.T) {
	t.Parallel()
	variants := integBuild(t) // outlives the subtests, which run in parallel within this test
	build := func(*testing.T) integVariants { return variants }

	type phase struct {
		cmd  string
		code int
	}
	// atDescribe: refused while validating (describe), exit 2 everywhere.
	atDescribe := []phase{{"validate", 2}, {"plan", 2}, {"run", 2}}
	// atStart: describe is fine; refused when the plugin process starts
	// (the go-plugin handshake), before any step.
	atStart := []phase{{"plan", 1}, {"run", 1}}

	cases := map[string]struct {
		// setup prepares the plugin directory (and the runbook's lock) and
		// returns extra environment.
		setup  func(t *testing.T, w *workspace, plugins string) []string
		phases []phase
		want   []string
	}{
		"checksum differs from runbook.lock": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				integCopy(t, filepath.Join(binDir, "runbook-plugin-test"), plugins, "runbook-plugin-test")
				integLock(t, w, plugins)
				integCopy(t, build(t).other, plugins, "runbook-plugin-test") // replaced after locking
				return nil
			},
			phases: atDescribe,
			want:   []string{"rb.yaml:4:3", "sha256", "runbook.lock pins", "runbook plugins lock"},
		},
		"binary tampered with (bytes appended)": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				p := integCopy(t, filepath.Join(binDir, "runbook-plugin-test"), plugins, "runbook-plugin-test")
				integLock(t, w, plugins)
				f, err := os.OpenFile(p, os.O_APPEND|os.O_WRONLY, 0)
				if err != nil {
					t.Fatal(err)
				}
				fmt.Fprint(f, "\x00tampered")
				f.Close()
				return nil
			},
			phases: atDescribe,
			want:   []string{"rb.yaml:4:3", "sha256", "runbook.lock pins"},
		},
		"not pinned in an existing runbook.lock": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				integCopy(t, filepath.Join(binDir, "runbook-plugin-test"), plugins, "runbook-plugin-test")
				w.write("runbook.lock", "{\n  \"version\": 1,\n  \"plugins\": {}\n}\n")
				return nil
			},
			phases: atDescribe,
			want:   []string{"rb.yaml:4:3", "is not pinned in", "runbook plugins lock"},
		},
		"runbook.lock is not a lock file": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				integCopy(t, filepath.Join(binDir, "runbook-plugin-test"), plugins, "runbook-plugin-test")
				w.write("runbook.lock", "{\"version\": 1, \"plugins\": {\"test\": {\"sha256\": \"nothex\"}}}\n")
				return nil
			},
			phases: atDescribe,
			want:   []string{"runbook.lock", "64 hex digits"},
		},
		"another protocol version (describe)": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				integCopy(t, build(t).v2, plugins, "runbook-plugin-test")
				return nil
			},
			phases: atDescribe,
			want:   []string{"rb.yaml:4:3", "speaks runbook plugin protocol v2", "this runbook speaks v1"},
		},
		"another protocol version (handshake only)": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				// Describes itself as v1, but serves protocol v2.
				integScript(t, plugins, "runbook-plugin-test", fmt.Sprintf("if [ \"$1\" = describe ]; then exec %q \"$@\"; fi\nexec %q \"$@\"\n",
					filepath.Join(binDir, "runbook-plugin-test"), build(t).v2))
				return nil
			},
			phases: atStart,
			want:   []string{"starting plugins", "speaks runbook plugin protocol v2"},
		},
		"missing": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				return []string{"PATH=/usr/bin:/bin"}
			},
			phases: atDescribe,
			want:   []string{"rb.yaml:4:3", `executable "runbook-plugin-test" not found`, "looked in", "RUNBOOK_PLUGIN_PATH"},
		},
		"not executable": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				p := integCopy(t, filepath.Join(binDir, "runbook-plugin-test"), plugins, "runbook-plugin-test")
				if err := os.Chmod(p, 0o644); err != nil {
					t.Fatal(err)
				}
				return []string{"PATH=/usr/bin:/bin"}
			},
			phases: atDescribe,
			want:   []string{"rb.yaml:4:3", "runbook-plugin-test", "not executable"},
		},
		"garbage on stdout": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				integCopy(t, filepath.Join(binDir, "runbook-plugin-test"), plugins, "runbook-plugin-test")
				return []string{"RUNBOOK_TESTPLUGIN_STARTUP=garbage"}
			},
			phases: atDescribe,
			want:   []string{"rb.yaml:4:3", "did not print a plugin description", "must write nothing else to stdout"},
		},
		"garbage on stdout (handshake only)": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				integScript(t, plugins, "runbook-plugin-test", fmt.Sprintf("if [ \"$1\" = describe ]; then exec %q \"$@\"; fi\necho 'Starting up... ready!'\nexec %q \"$@\"\n",
					filepath.Join(binDir, "runbook-plugin-test"), filepath.Join(binDir, "runbook-plugin-test")))
				return nil
			},
			phases: atStart,
			want:   []string{"starting plugins", `printed "Starting up... ready!" instead of the go-plugin handshake`},
		},
		"replaced between validation and start": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				// After describing itself, the executable is swapped for
				// another (a deploy racing the run): the process started
				// must be the binary that was checked.
				real := filepath.Join(binDir, "runbook-plugin-test")
				integScript(t, filepath.Join(w.dir, "swap"), "runbook-plugin-test", fmt.Sprintf("exec %q \"$@\"\n# the other one\n", real))
				integScript(t, plugins, "runbook-plugin-test", fmt.Sprintf("if [ \"$1\" = describe ] && [ -e %q ]; then %q \"$@\"; s=$?; cp %q \"$0\"; exit $s; fi\nexec %q \"$@\"\n",
					filepath.Join(w.dir, "armed"), real, filepath.Join(w.dir, "swap", "runbook-plugin-test"), real))
				integLock(t, w, plugins)
				w.write("armed", "")
				return nil
			},
			phases: []phase{{"run", 1}},
			want:   []string{"starting plugins", "runbook.lock pins"},
		},
		"replaced between validation and start (no runbook.lock)": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				// The same race without a lock file: the checksums the
				// catalog computed while validating pin the run, so the
				// swapped binary is refused rather than run unchecked.
				real := filepath.Join(binDir, "runbook-plugin-test")
				integScript(t, filepath.Join(w.dir, "swap"), "runbook-plugin-test", fmt.Sprintf("exec %q \"$@\"\n# the other one\n", real))
				integScript(t, plugins, "runbook-plugin-test", fmt.Sprintf("if [ \"$1\" = describe ]; then %q \"$@\"; s=$?; cp %q \"$0\"; exit $s; fi\nexec %q \"$@\"\n",
					real, filepath.Join(w.dir, "swap", "runbook-plugin-test"), real))
				return nil
			},
			phases: []phase{{"run", 1}},
			want:   []string{"starting plugins", "changed after the runbook was validated", "runbook plugins lock"},
		},
		"exits at start-up": {
			setup: func(t *testing.T, w *workspace, plugins string) []string {
				integScript(t, plugins, "runbook-plugin-test", fmt.Sprintf("if [ \"$1\" = describe ]; then exec %q \"$@\"; fi\necho 'cannot read my config' >&2\nexit 3\n",
					filepath.Join(binDir, "runbook-plugin-test")))
				return nil
			},
			phases: atStart,
			want:   []string{"starting plugins", "exited during start-up", "cannot read my config"},
		},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			w := newWorkspace(t)
			w.write("rb.yaml", integRunbook)
			plugins := filepath.Join(w.dir, "plugins")
			if err := os.MkdirAll(plugins, 0o755); err != nil {
				t.Fatal(err)
			}
			env := append([]string{"RUNBOOK_PLUGIN_PATH=" + plugins}, c.setup(t, w, plugins)...)
			state := filepath.Join(w.dir, "state")
			for _, p := range c.phases {
				args := []string{p.cmd, "rb.yaml"}
				if p.cmd == "run" {
					args = append(args, "--auto-approve", "--state", state)
				}
				r := secRun(t, w, env, args...)
				if r.code != p.code {
					t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", p.cmd, r.code, p.code, r.stdout, r.stderr)
				}
				for _, s := range c.want {
					if !strings.Contains(r.stderr, s) {
						t.Errorf("%s: stderr lacks %q:\n%s", p.cmd, s, r.stderr)
					}
				}
				if strings.Contains(r.stdout, "started") || strings.Contains(r.stdout, "[effect]") {
					t.Errorf("%s: a step started:\n%s", p.cmd, r.stdout)
				}
				if effects := w.effects(); effects != nil {
					t.Fatalf("%s: an action ran: %v", p.cmd, effects)
				}
				integNoJournal(t, state)
			}
		})
	}
}

// integLock pins the plugins of rb.yaml with `runbook plugins lock`.
func integLock(t *testing.T, w *workspace, plugins string) {
	t.Helper()
	r := secRun(t, w, []string{"RUNBOOK_PLUGIN_PATH=" + plugins}, "plugins", "lock", "rb.yaml")
	if r.code != 0 {
		t.Fatalf("plugins lock: exit %d\n%s", r.code, r.stderr)
	}
}

// A plugin replaced while a run is paused: resume refuses it before doing
// anything; the journal and the side effects are as the pause left them.
func TestPluginReplacedDuringPauseIsRefusedOnResume(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	w.write("rb.yaml", integRunbook)
	plugins := filepath.Join(w.dir, "plugins")
	integCopy(t, filepath.Join(binDir, "runbook-plugin-test"), plugins, "runbook-plugin-test")
	integLock(t, w, plugins)
	env := []string{"RUNBOOK_PLUGIN_PATH=" + plugins}
	state := filepath.Join(w.dir, "state")

	r := secRun(t, w, env, "run", "rb.yaml", "--state", state, "-o", "json")
	if r.code != 3 {
		t.Fatalf("run: exit %d, want 3 (paused)\n%s", r.code, r.stderr)
	}
	id := secRunID(t, r)
	before, err := os.ReadFile(filepath.Join(state, "runs", id+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	want(t, "effects before resume", w.effects(), []string{"ran"})

	// Replaced by a different build (here: the same with bytes appended).
	b, err := os.ReadFile(filepath.Join(binDir, "runbook-plugin-test"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(plugins, "runbook-plugin-test"), append(b, "\x00another build"...), 0o755); err != nil {
		t.Fatal(err)
	}
	r = secRun(t, w, env, "resume", id, "--approve", "wait", "--state", state)
	if r.code != 2 || !strings.Contains(r.stderr, "runbook.lock pins") {
		t.Errorf("resume with a replaced plugin: exit %d, want 2 naming the pinned checksum\n%s", r.code, r.stderr)
	}
	want(t, "effects after the refused resume", w.effects(), []string{"ran"})
	after, err := os.ReadFile(filepath.Join(state, "runs", id+".jsonl"))
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(before, after) {
		t.Errorf("the refused resume wrote to the journal:\n%s", after[len(before):])
	}
}
