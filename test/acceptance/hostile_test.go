package acceptance_test

import (
	"os"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"
)

// hostileCase is one entry of testdata/hostile (see its README).
type hostileCase struct {
	name, desc              string
	make, at, command, want string
	exit                    int
}

func hostileDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "hostile"))
}

func hostileCases(t *testing.T) []hostileCase {
	t.Helper()
	paths, err := filepath.Glob(filepath.Join(hostileDir(), "*.case"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no cases: %v", err)
	}
	var cases []hostileCase
	for _, p := range paths {
		c := hostileCase{name: strings.TrimSuffix(filepath.Base(p), ".case"), exit: -1}
		c.desc, err = readCase(p, func(k, v string) bool {
			switch k {
			case "make":
				c.make = v
			case "at":
				c.at = v
			case "command":
				c.command = v
			case "exit":
				if n, err := strconv.Atoi(v); err == nil {
					c.exit = n
				}
			case "message":
				c.want = v
			default:
				return false
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.make == "" || c.at == "" || c.command == "" || c.exit < 0 || c.want == "" {
			t.Fatalf("%s: make, at, command, exit and message are required", p)
		}
		cases = append(cases, c)
	}
	return cases
}

// TestHostileInputs runs testdata/hostile: every case is refused at once
// with its exit code and message, and runs nothing.
func TestHostileInputs(t *testing.T) {
	t.Parallel()
	refused := 0
	for _, c := range hostileCases(t) {
		t.Run(c.name, func(t *testing.T) {
			w := newWorkspace(t)
			rb, err := os.ReadFile(filepath.Join(hostileDir(), "rb.yaml"))
			if err != nil {
				t.Fatal(err)
			}
			w.write("rb.yaml", string(rb))
			state := filepath.Join(w.dir, "state")
			// Where the hostile object goes.
			target := ""
			switch c.at {
			case "var-file":
				target = filepath.Join(w.dir, "hostile")
			case "var-at":
				target = filepath.Join(w.dir, "hostile.json")
			case "runbook":
				target = filepath.Join(w.dir, "hostile.yaml")
			case "runbook.lock":
				target = filepath.Join(w.dir, "runbook.lock")
			case "journal":
				mkdir(t, filepath.Join(state, "runs"))
				target = filepath.Join(state, "runs", "r1.jsonl")
			case "lock":
				mkdir(t, state)
				target = filepath.Join(state, "lock")
			case "state-dir":
				mkdir(t, filepath.Join(state, "runs"))
				target = state
			case "state-url":
			default:
				t.Fatalf("unknown at: %q", c.at)
			}
			var extra []string
			what, arg, _ := strings.Cut(c.make, " ")
			switch what {
			case "fifo":
				if err := syscall.Mkfifo(target, 0o600); err != nil {
					t.Fatal(err)
				}
			case "devzero":
				target = "/dev/zero"
			case "link-devzero", "link-devnull", "link-fifo":
				to := map[string]string{"link-devzero": "/dev/zero", "link-devnull": "/dev/null"}[what]
				if what == "link-fifo" {
					to = filepath.Join(w.dir, "a-fifo")
					if err := syscall.Mkfifo(to, 0o600); err != nil {
						t.Fatal(err)
					}
				}
				if err := os.Symlink(to, target); err != nil {
					t.Fatal(err)
				}
			case "sparse":
				n, err := strconv.ParseInt(arg, 10, 64)
				if err != nil {
					t.Fatal(err)
				}
				f, err := os.Create(target)
				if err != nil {
					t.Fatal(err)
				}
				if err := f.Truncate(n); err != nil {
					t.Fatal(err)
				}
				f.Close()
			case "dir":
				mkdir(t, target)
			case "copy":
				b, err := os.ReadFile(filepath.Join(hostileDir(), "files", arg))
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(target, b, 0o644); err != nil {
					t.Fatal(err)
				}
			case "mode":
				m, err := strconv.ParseUint(arg, 8, 32)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.Chmod(target, os.FileMode(m)); err != nil {
					t.Fatal(err)
				}
			case "owner":
				if os.Getuid() != 0 {
					t.Skip("needs root to give the state directory to another user")
				}
				uid, _ := strconv.Atoi(arg)
				if err := os.Chown(target, uid, uid); err != nil {
					t.Fatal(err)
				}
			case "url":
				extra = append(extra, "--state", arg)
			default:
				t.Fatalf("unknown make: %q", c.make)
			}
			runbookFile := "rb.yaml"
			switch c.at {
			case "var-file":
				extra = append(extra, "--var-file", target)
			case "var-at":
				extra = append(extra, "--var", "cfg=@"+target)
			case "runbook":
				runbookFile = target
			}
			var args []string
			switch c.command {
			case "run", "plan", "validate":
				args = append([]string{c.command, runbookFile}, extra...)
			case "resume", "report":
				args = append([]string{c.command, "r1"}, extra...)
			case "runs", "unlock":
				args = append([]string{c.command}, extra...)
			default:
				t.Fatalf("unknown command: %q", c.command)
			}
			res := w.run(nil, args...)
			out := res.stderr
			if c.command == "runs" {
				out = res.stdout + res.stderr
			}
			if res.code != c.exit || !strings.Contains(out, c.want) {
				t.Fatalf("%s: runbook %s: exit %d, want %d with %q:\n%s%s", c.desc, strings.Join(args, " "), res.code, c.exit, c.want, res.stdout, res.stderr)
			}
			if strings.Contains(out, "panic") || strings.Contains(out, "out of memory") {
				t.Fatalf("crashed:\n%s", out)
			}
			if e := w.effects(); len(e) > 0 {
				t.Errorf("a plugin action ran: %v", e)
			}
			if c.at != "journal" {
				if runs, _ := os.ReadDir(filepath.Join(state, "runs")); len(runs) > 0 {
					t.Errorf("a journal was written: %v", runs)
				}
			}
			refused++
		})
	}
	t.Logf("hostile inputs refused: %d", refused)
}

func mkdir(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
}
