package pluginhost

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/hashicorp/go-hclog"
	"golang.org/x/sys/unix"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// syncBuffer is a log sink safe for the host's concurrent writers.
type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

// pluginDir makes a runbook directory whose bin/ holds the test plugin
// under each name (runbook-plugin-<name>), and returns it with the refs.
func pluginDir(t testing.TB, names ...string) (string, []*runbook.PluginRef) {
	t.Helper()
	dir := t.TempDir()
	var refs []*runbook.PluginRef
	for _, n := range names {
		copyBinary(t, bin.plugin, filepath.Join(dir, "bin"), CommandPrefix+n)
		refs = append(refs, ref(n, ""))
	}
	return dir, refs
}

type hostFixture struct {
	*Host
	dir  string
	logs *syncBuffer
}

func startHost(t testing.TB, cfg Config, names ...string) *hostFixture {
	t.Helper()
	dir, refs := pluginDir(t, names...)
	logs := &syncBuffer{}
	if cfg.Logger == nil {
		cfg.Logger = hclog.New(&hclog.LoggerOptions{Name: "runbook", Output: logs, Level: hclog.Debug})
	}
	cfg.Dir, cfg.Plugins = dir, append(refs, cfg.Plugins...)
	h, err := Start(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { h.Close() })
	return &hostFixture{Host: h, dir: dir, logs: logs}
}

func call(plugin, action string, params map[string]any) engine.Call {
	return engine.Call{Plugin: plugin, Action: action, RunID: "run-1", StepID: "step", Attempt: 1, IdempotencyKey: "run-1/step", Params: params}
}

// processesRunning lists live processes whose executable is under dir.
func processesRunning(t testing.TB, dir string) []int {
	t.Helper()
	entries, err := os.ReadDir("/proc")
	if err != nil {
		t.Fatal(err)
	}
	var pids []int
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		exe, err := os.Readlink(filepath.Join("/proc", e.Name(), "exe"))
		if err != nil {
			continue
		}
		if strings.HasPrefix(exe, dir+string(filepath.Separator)) && processAlive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

func specError(t *testing.T, err error) *spec.Error {
	t.Helper()
	var se *spec.Error
	if !errors.As(err, &se) {
		t.Fatalf("want a *spec.Error, got %T: %v", err, err)
	}
	return se
}

func TestHostInvoke(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{}, "a", "b")
	ctx := context.Background()

	var progress []spec.Progress
	out, err := h.Invoke(ctx, call("a", "echo", map[string]any{"x": "y", "n": 2.0}), func(p spec.Progress) { progress = append(progress, p) })
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(map[string]any{"x": "y", "n": 2.0}, out); d != "" {
		t.Errorf("outputs (-want +got):\n%s", d)
	}
	if len(progress) != 1 || progress[0].Message != "echoing" || progress[0].Fields["keys"] != 2.0 {
		t.Errorf("progress = %+v", progress)
	}

	tests := map[string]struct {
		call      engine.Call
		code      string
		retryable bool
		msg       string
	}{
		"retryable":      {call("b", "fail", map[string]any{"code": "Throttled"}), "Throttled", true, "failing on request (attempt 1)"},
		"fatal":          {call("b", "fail", map[string]any{"mode": "fatal"}), "TestFailure", false, "failing on request"},
		"invalid params": {call("a", "record", map[string]any{"line": 1}), "InvalidParams", false, "invalid parameters"},
		"unknown action": {call("a", "nope", nil), CodePluginProtocol, false, `plugin a: action nope: plugin testplugin has no action "nope"`},
		"unknown plugin": {call("zzz", "noop", nil), CodeUnknownPlugin, false, "plugin zzz was not started"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			_, err := h.Invoke(ctx, tc.call, nil)
			se := specError(t, err)
			if se.Code != tc.code || se.Retryable != tc.retryable || !strings.Contains(se.Message, tc.msg) {
				t.Errorf("error = %+v, want code %s retryable %v message containing %q", se, tc.code, tc.retryable, tc.msg)
			}
		})
	}

	c := call("b", "fail", map[string]any{"times": 2})
	c.Attempt = 3
	if out, err := h.Invoke(ctx, c, nil); err != nil || out["attempt"] != 3.0 {
		t.Errorf("third attempt: %v, %v", out, err)
	}

	d, err := h.Description("a")
	if err != nil || d.Name != "testplugin" || d.ProtocolVersion != 1 {
		t.Fatalf("description: %+v, %v", d, err)
	}
	if a, ok := d.Action("record"); !ok || a.Idempotent {
		t.Errorf("record = %+v", a)
	}
	if h.Pid("a") == 0 || h.Pid("b") == 0 || h.Pid("a") == h.Pid("b") {
		t.Errorf("pids: a=%d b=%d", h.Pid("a"), h.Pid("b"))
	}
	if w := h.Warnings(); len(w) != 2 || !strings.Contains(w[0], "plugin a is not pinned") || !strings.Contains(h.logs.String(), "not pinned") {
		t.Errorf("warnings = %q", w)
	}
}

func TestHostPlanAndValidate(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{}, "p")
	ctx := context.Background()
	file := filepath.Join(t.TempDir(), "log")
	if err := os.WriteFile(file, []byte("one\ntwo\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	plan, err := h.Plan(ctx, engine.PlanCall{Plugin: "p", Action: "record", Params: map[string]any{"file": file, "line": "x"}})
	if err != nil {
		t.Fatal(err)
	}
	want := []spec.Change{{Resource: file, Field: "lines", Before: 2.0, After: 3.0, Kind: spec.ChangeUpdate}}
	if d := cmp.Diff(want, plan.Changes); d != "" {
		t.Errorf("plan (-want +got):\n%s", d)
	}
	if b, _ := os.ReadFile(file); string(b) != "one\ntwo\n" {
		t.Errorf("plan changed the file: %q", b)
	}
	_, err = h.Plan(ctx, engine.PlanCall{Plugin: "p", Action: "record", Params: map[string]any{"file": t.TempDir(), "line": "x"}})
	if err == nil || !strings.Contains(err.Error(), "plugin p: plan of action record:") || !strings.Contains(err.Error(), "is a directory") {
		t.Errorf("failing plan: %v", err)
	}

	diags, err := h.Validate(ctx, "p", "record", map[string]any{"line": "x", "extra": 1}, nil)
	if err != nil {
		t.Fatal(err)
	}
	if len(diags) != 2 {
		t.Errorf("diagnostics = %+v, want a missing file and an unknown property", diags)
	}
	diags, err = h.Validate(ctx, "p", "record", map[string]any{"line": "x"}, []string{"/file"})
	if err != nil || len(diags) != 1 {
		t.Errorf("with /file unknown: %+v, %v", diags, err)
	}
	if _, err := h.Validate(ctx, "p", "nope", nil, nil); err == nil || !strings.Contains(err.Error(), "no action") {
		t.Errorf("unknown action: %v", err)
	}
}

func TestHostKilledMidActionIsFatalAndRestartsLazily(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{}, "k")
	ctx := context.Background()
	firstPid := h.Pid("k")

	started := make(chan int, 1)
	errc := make(chan error, 1)
	go func() {
		_, err := h.Invoke(ctx, call("k", "sleep", map[string]any{"duration": "10m"}), func(p spec.Progress) {
			if p.Message == "sleeping" {
				started <- int(p.Fields["pid"].(float64))
			}
		})
		errc <- err
	}()
	pid := <-started
	if pid != firstPid {
		t.Fatalf("action ran in pid %d, host says %d", pid, firstPid)
	}
	if err := syscall.Kill(pid, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	se := specError(t, <-errc)
	if se.Code != CodePluginExited || se.Retryable {
		t.Errorf("error = %+v, want fatal %s", se, CodePluginExited)
	}
	if want := "plugin k exited during action sleep (signal: killed)"; !strings.Contains(se.Message, want) {
		t.Errorf("message %q lacks %q", se.Message, want)
	}

	out, err := h.Invoke(ctx, call("k", "echo", map[string]any{"after": "restart"}), nil)
	if err != nil || out["after"] != "restart" {
		t.Fatalf("call after the crash: %v, %v", out, err)
	}
	if p := h.Pid("k"); p == 0 || p == firstPid {
		t.Errorf("pid after restart = %d (was %d)", p, firstPid)
	}
	if processAlive(firstPid) {
		t.Errorf("killed plugin %d still alive", firstPid)
	}
}

func TestHostPluginExitingDuringActionReportsItsLastWords(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{}, "c")
	ctx := context.Background()
	_, err := h.Invoke(ctx, call("c", "crash", map[string]any{"code": 2, "message": "panic: assignment to entry in nil map"}), nil)
	se := specError(t, err)
	for _, want := range []string{"plugin c exited during action crash (exit status 2)", "panic: assignment to entry in nil map"} {
		if se.Code != CodePluginExited || !strings.Contains(se.Message, want) {
			t.Errorf("error %+v lacks %q", se, want)
		}
	}
	if _, err := h.Invoke(ctx, call("c", "noop", nil), nil); err != nil {
		t.Fatalf("restart after exit: %v", err)
	}
}

func TestHostRestartsOnceForConcurrentCalls(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{}, "r")
	ctx := context.Background()
	old := h.Pid("r")
	if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	p := h.plugins["r"]
	for !p.cur.Load().exited(time.Minute) {
	}
	var wg sync.WaitGroup
	errs := make([]error, 8)
	for i := range errs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			_, errs[i] = h.Invoke(ctx, call("r", "echo", map[string]any{"i": i}), nil)
		}()
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Errorf("call %d: %v", i, err)
		}
	}
	p.mu.Lock()
	starts := p.starts
	p.mu.Unlock()
	if starts != 2 {
		t.Errorf("plugin started %d times, want 2 (start + one restart)", starts)
	}
}

func TestHostCallCancelledByCallerLeavesPluginRunning(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{}, "s")
	pid := h.Pid("s")
	ctx, cancel := context.WithTimeout(context.Background(), 200*time.Millisecond)
	defer cancel()
	_, err := h.Invoke(ctx, call("s", "sleep", map[string]any{"duration": "10m"}), nil)
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("error = %v, want one wrapping context.DeadlineExceeded", err)
	}
	if h.Pid("s") != pid || !processAlive(pid) {
		t.Errorf("plugin was replaced or died: pid %d -> %d", pid, h.Pid("s"))
	}
	if _, err := h.Invoke(context.Background(), call("s", "noop", nil), nil); err != nil {
		t.Errorf("next call: %v", err)
	}
}

func TestHostCloseKillsPluginsAndTheirChildren(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{}, "x", "y")
	out, err := h.Invoke(context.Background(), call("x", "spawn", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	child := int(out["pid"].(float64))
	pids := []int{h.Pid("x"), h.Pid("y"), child}
	for _, p := range pids {
		if !processAlive(p) {
			t.Fatalf("process %d not running before Close", p)
		}
	}
	// A call in flight when Close runs fails with a host-closed error.
	errc := make(chan error, 1)
	started := make(chan struct{})
	go func() {
		_, err := h.Invoke(context.Background(), call("y", "sleep", map[string]any{"duration": "10m"}), func(spec.Progress) { close(started) })
		errc <- err
	}()
	<-started
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	for _, p := range pids {
		if processAlive(p) {
			t.Errorf("process %d outlived Close", p)
		}
	}
	if left := processesRunning(t, h.dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if se := specError(t, <-errc); se.Code != CodeHostClosed {
		t.Errorf("in-flight call: %+v", se)
	}
	if err := h.Close(); err != nil {
		t.Errorf("second Close: %v", err)
	}
	_, err = h.Invoke(context.Background(), call("x", "noop", nil), nil)
	if se := specError(t, err); se.Code != CodeHostClosed {
		t.Errorf("call after Close: %+v", se)
	}
}

// A child the plugin started in a session of its own (setsid) left the
// plugin's process group: it is found by its parent link, read before the
// plugin is killed, and killed with it. (A detached child whose plugin died
// first is re-parented away; the command line adopts and kills those, see
// ContainProcesses and test/acceptance.)
func TestHostKillsChildrenInNewSessions(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{}, "x")
	out, err := h.Invoke(context.Background(), call("x", "spawn", map[string]any{"detach": "setsid"}), nil)
	if err != nil {
		t.Fatal(err)
	}
	child := int(out["pid"].(float64))
	if sid, _ := unix.Getsid(child); sid != child {
		t.Fatalf("child %d is not in a session of its own (sid %d)", child, sid)
	}
	if err := h.Close(); err != nil {
		t.Fatal(err)
	}
	waitGone(t, child)
	if left := processesRunning(t, h.dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

// waitGone fails unless every pid has exited within a few seconds (the
// retired plugin is reaped in the background).
func waitGone(t *testing.T, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, p := range pids {
		for processAlive(p) {
			if time.Now().After(deadline) {
				t.Errorf("process %d still runs", p)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

func TestHostContextCancelKillsEverything(t *testing.T) {
	t.Parallel()
	dir, refs := pluginDir(t, "m", "n")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	h, err := Start(ctx, Config{Dir: dir, Plugins: refs})
	if err != nil {
		t.Fatal(err)
	}
	out, err := h.Invoke(ctx, call("m", "spawn", nil), nil)
	if err != nil {
		t.Fatal(err)
	}
	pids := []int{h.Pid("m"), h.Pid("n"), int(out["pid"].(float64))}
	cancel()
	<-h.Done()
	for _, p := range pids {
		if processAlive(p) {
			t.Errorf("process %d outlived the host's context", p)
		}
	}
	if left := processesRunning(t, dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
	if err := h.Close(); err != nil {
		t.Errorf("Close after cancel: %v", err)
	}
}

func TestHostStartRefusals(t *testing.T) {
	t.Parallel()
	type setup struct {
		dir  string
		refs []*runbook.PluginRef
		lock *LockFile
	}
	// Each case starts a good plugin alongside the bad one, which must be
	// killed when the start fails.
	tests := map[string]struct {
		prepare      func(t *testing.T, s *setup)
		startTimeout time.Duration
		check        func(t *testing.T, err error)
	}{
		"checksum differs from the lock": {
			prepare: func(t *testing.T, s *setup) {
				sum, _ := fileSHA256(bin.plugin)
				s.lock = &LockFile{Version: 1, Path: filepath.Join(s.dir, LockFileName), Plugins: map[string]LockEntry{"good": {SHA256: sum}, "bad": {SHA256: sum}}}
				copyBinary(t, bin.other, filepath.Join(s.dir, "bin"), "runbook-plugin-bad")
				s.refs = append(s.refs, ref("bad", ""))
			},
			check: func(t *testing.T, err error) {
				var mm *ChecksumMismatchError
				if !errors.As(err, &mm) || mm.Plugin != "bad" {
					t.Fatalf("want a checksum mismatch for bad, got %v", err)
				}
				other, _ := fileSHA256(bin.other)
				for _, s := range []string{"plugin bad", mm.Want, other, "runbook plugins lock"} {
					if !strings.Contains(err.Error(), s) {
						t.Errorf("error lacks %q: %v", s, err)
					}
				}
			},
		},
		"absent from the lock": {
			prepare: func(t *testing.T, s *setup) {
				sum, _ := fileSHA256(bin.plugin)
				s.lock = &LockFile{Version: 1, Path: filepath.Join(s.dir, LockFileName), Plugins: map[string]LockEntry{"good": {SHA256: sum}}}
				copyBinary(t, bin.plugin, filepath.Join(s.dir, "bin"), "runbook-plugin-bad")
				s.refs = append(s.refs, ref("bad", ""))
			},
			check: func(t *testing.T, err error) {
				var nl *NotLockedError
				if !errors.As(err, &nl) || !strings.Contains(err.Error(), "plugin bad") {
					t.Fatalf("want not locked, got %v", err)
				}
			},
		},
		"missing executable": {
			prepare: func(t *testing.T, s *setup) { s.refs = append(s.refs, ref("bad", "")) },
			check: func(t *testing.T, err error) {
				var nf *NotFoundError
				if !errors.As(err, &nf) || !strings.Contains(err.Error(), "looked in:") {
					t.Fatalf("want not found, got %v", err)
				}
			},
		},
		"another protocol version": {
			prepare: func(t *testing.T, s *setup) {
				copyBinary(t, bin.v2, filepath.Join(s.dir, "bin"), "runbook-plugin-bad")
				s.refs = append(s.refs, ref("bad", ""))
			},
			check: func(t *testing.T, err error) {
				var pv *ProtocolVersionError
				if !errors.As(err, &pv) || pv.Got != 2 || !strings.Contains(err.Error(), "speaks runbook plugin protocol v2") {
					t.Fatalf("want protocol v2 refused, got %v", err)
				}
			},
		},
		"garbage on stdout": {
			prepare: func(t *testing.T, s *setup) {
				copyBinary(t, bin.plugin, filepath.Join(s.dir, "bin"), "runbook-plugin-bad")
				s.refs = append(s.refs, &runbook.PluginRef{Name: "bad", Env: map[string]string{"RUNBOOK_TESTPLUGIN_STARTUP": "garbage"}})
			},
			check: func(t *testing.T, err error) {
				var hs *HandshakeError
				if !errors.As(err, &hs) || !strings.Contains(err.Error(), `printed "debug: testplugin starting up" instead of the go-plugin handshake`) {
					t.Fatalf("want handshake refused, got %v", err)
				}
			},
		},
		"exits at start": {
			prepare: func(t *testing.T, s *setup) {
				copyBinary(t, bin.plugin, filepath.Join(s.dir, "bin"), "runbook-plugin-bad")
				s.refs = append(s.refs, &runbook.PluginRef{Name: "bad", Env: map[string]string{"RUNBOOK_TESTPLUGIN_STARTUP": "exit"}})
			},
			check: func(t *testing.T, err error) {
				want := "exited during start-up (exit status 3); last output: testplugin: refusing to start"
				if err == nil || !strings.Contains(err.Error(), want) {
					t.Fatalf("error = %v, want %q", err, want)
				}
			},
		},
		"hangs at start": {
			startTimeout: time.Second,
			prepare: func(t *testing.T, s *setup) {
				copyBinary(t, bin.plugin, filepath.Join(s.dir, "bin"), "runbook-plugin-bad")
				s.refs = append(s.refs, &runbook.PluginRef{Name: "bad", Env: map[string]string{"RUNBOOK_TESTPLUGIN_STARTUP": "hang"}})
			},
			check: func(t *testing.T, err error) {
				if err == nil || !strings.Contains(err.Error(), "did not complete the go-plugin handshake within 1s") {
					t.Fatalf("error = %v", err)
				}
			},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir, refs := pluginDir(t, "good")
			s := &setup{dir: dir, refs: refs}
			tc.prepare(t, s)
			h, err := Start(context.Background(), Config{Dir: s.dir, Plugins: s.refs, Lock: s.lock, StartTimeout: tc.startTimeout})
			if err == nil {
				h.Close()
				t.Fatal("Start succeeded")
			}
			tc.check(t, err)
			if left := processesRunning(t, dir); len(left) > 0 {
				t.Errorf("processes left after a failed start: %v", left)
			}
		})
	}
}

func TestHostWithLockStartsPinnedPlugins(t *testing.T) {
	t.Parallel()
	dir, refs := pluginDir(t, "l")
	lf, err := Lock(context.Background(), dir, refs)
	if err != nil {
		t.Fatal(err)
	}
	if err := WriteLock(dir, lf); err != nil {
		t.Fatal(err)
	}
	lock, err := ReadLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	h, err := Start(context.Background(), Config{Dir: dir, Plugins: refs, Lock: lock})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	if w := h.Warnings(); len(w) != 0 {
		t.Errorf("warnings with a lock file: %q", w)
	}
	if _, err := h.Invoke(context.Background(), call("l", "noop", nil), nil); err != nil {
		t.Fatal(err)
	}
}

func TestHostRestartRefusesAChangedBinary(t *testing.T) {
	t.Parallel()
	for _, locked := range []bool{false, true} {
		t.Run(fmt.Sprintf("locked=%v", locked), func(t *testing.T) {
			t.Parallel()
			dir, refs := pluginDir(t, "v")
			var lock *LockFile
			if locked {
				var err error
				if lock, err = Lock(context.Background(), dir, refs); err != nil {
					t.Fatal(err)
				}
			}
			h, err := Start(context.Background(), Config{Dir: dir, Plugins: refs, Lock: lock})
			if err != nil {
				t.Fatal(err)
			}
			defer h.Close()
			// Replace the binary (as an upgrade would), then kill the plugin.
			path := filepath.Join(dir, "bin", "runbook-plugin-v")
			tmp := copyBinary(t, bin.other, dir, "new")
			if err := os.Rename(tmp, path); err != nil {
				t.Fatal(err)
			}
			old := h.Pid("v")
			if err := syscall.Kill(old, syscall.SIGKILL); err != nil {
				t.Fatal(err)
			}
			for !h.plugins["v"].cur.Load().exited(time.Minute) {
			}
			_, err = h.Invoke(context.Background(), call("v", "noop", nil), nil)
			se := specError(t, err)
			want := "changed while the run was in progress"
			if locked {
				want = "runbook plugins lock"
			}
			if se.Code != CodePluginStart || se.Retryable || !strings.Contains(se.Message, want) {
				t.Errorf("error = %+v, want fatal %s mentioning %q", se, CodePluginStart, want)
			}
			var mm *ChecksumMismatchError
			if !errors.As(se.Err, &mm) {
				t.Errorf("cause = %v, want *ChecksumMismatchError", se.Err)
			}
		})
	}
}

func TestHostSecureConfigRefusesASwapAfterTheCheck(t *testing.T) {
	t.Parallel()
	// Pinning a checksum the binary does not have leaves only go-plugin's
	// SecureConfig to refuse it at launch: the guard against a binary
	// replaced between the host's own check and the exec.
	dir, refs := pluginDir(t, "g")
	r, err := Resolve(dir, refs[0])
	if err != nil {
		t.Fatal(err)
	}
	other, _ := fileSHA256(bin.other)
	h := &Host{ctx: context.Background(), log: hclog.NewNullLogger(), red: newRedactor(nil, nil), startTimeout: DefaultStartTimeout, plugins: map[string]*hosted{}, done: make(chan struct{})}
	p := &hosted{h: h, name: "g", res: r, sum: other, lockPath: "/x/runbook.lock", log: newPluginLogger(hclog.NewNullLogger(), h.red)}
	_, err = p.launch()
	var mm *ChecksumMismatchError
	if !errors.As(err, &mm) || mm.Got != r.SHA256 || mm.Want != other {
		t.Fatalf("want a checksum mismatch from SecureConfig, got %v", err)
	}
	if left := processesRunning(t, dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}

func TestHostEnvironment(t *testing.T) {
	t.Parallel()
	h := startHost(t, Config{
		Env:     []string{"RB_TEST_A=from-config", "RB_TEST_B=from-config"},
		Plugins: []*runbook.PluginRef{{Name: "own", Command: "bin/runbook-plugin-e", Env: map[string]string{"RB_TEST_B": "from-plugin"}}},
	}, "e")
	ctx := context.Background()
	get := func(plugin, name string) string {
		out, err := h.Invoke(ctx, call(plugin, "env", map[string]any{"name": name}), nil)
		if err != nil {
			t.Fatal(err)
		}
		return out["value"].(string)
	}
	if v := get("e", "RB_TEST_B"); v != "from-config" {
		t.Errorf("e: RB_TEST_B = %q", v)
	}
	if v := get("own", "RB_TEST_B"); v != "from-plugin" {
		t.Errorf("own: RB_TEST_B = %q, want the plugin's env to win", v)
	}
	if v := get("own", "RB_TEST_A"); v != "from-config" {
		t.Errorf("own: RB_TEST_A = %q", v)
	}
	if v := get("e", LogLevelEnv); v != "debug" {
		t.Errorf("%s = %q, want the host logger's level", LogLevelEnv, v)
	}
	if v := get("e", "PATH"); v != os.Getenv("PATH") {
		t.Errorf("PATH not inherited: %q", v)
	}
}

func TestHostRedactsSecretsFromPluginOutput(t *testing.T) {
	t.Parallel()
	const secret, later = "hunter2-s3cret", "late-token-42"
	h := startHost(t, Config{Secrets: []string{secret, ""}}, "log")
	ctx := context.Background()
	invoke := func(action string, params map[string]any) error {
		_, err := h.Invoke(ctx, call("log", action, params), nil)
		return err
	}
	if err := invoke("log", map[string]any{"message": "token is " + secret, "level": "warn", "fields": map[string]any{"auth": "Bearer " + secret}}); err != nil {
		t.Fatal(err)
	}
	if err := invoke("log", map[string]any{"message": "raw line with " + secret, "raw": true}); err != nil {
		t.Fatal(err)
	}
	h.AddSecrets(later)
	if err := invoke("log", map[string]any{"message": "then " + later, "level": "error"}); err != nil {
		t.Fatal(err)
	}
	se := specError(t, invoke("fail", map[string]any{"mode": "fatal", "message": "rejected " + secret}))
	if strings.Contains(se.Message, secret) || !strings.Contains(se.Message, "rejected ***") {
		t.Errorf("error message not redacted: %q", se.Message)
	}
	var progress []spec.Progress
	if _, err := h.Invoke(ctx, call("log", "sleep", map[string]any{"duration": "1ms"}), func(p spec.Progress) { progress = append(progress, p) }); err != nil {
		t.Fatal(err)
	}
	h.Close() // flushes the stderr readers

	logs := h.logs.String()
	for _, s := range []string{secret, later} {
		if strings.Contains(logs, s) {
			t.Errorf("secret %q in the host's logs:\n%s", s, logs)
		}
	}
	for _, want := range []string{
		"[WARN]  runbook.log: token is ***: ", "auth=\"Bearer ***\"",
		"[INFO]  runbook.log: raw line with ***", "[ERROR] runbook.log: then ***:",
	} {
		if !strings.Contains(logs, want) {
			t.Errorf("logs lack %q:\n%s", want, logs)
		}
	}
	if strings.Contains(logs, "@module") {
		t.Errorf("plugin lines keep hclog's @module:\n%s", logs)
	}
	if len(progress) != 1 {
		t.Errorf("progress = %+v", progress)
	}
}

func TestRedactorValues(t *testing.T) {
	t.Parallel()
	// "abc" is shorter than redact.MinLength: masked as a whole value, not
	// inside text.
	r := newRedactor(nil, []string{"abc", "abcdef", "1234"})
	tests := []struct {
		in, want any
	}{
		{"xabcdefx abc", "x***x abc"},
		{"abc", "***"},
		{1234.0, "***"},
		{errors.New("bad key abcdef"), "bad key ***"},
		{map[string]any{"k": []any{"abc", 1.0}}, map[string]any{"k": []any{"***", 1.0}}},
		{5.0, 5.0},
		{nil, nil},
	}
	for _, tc := range tests {
		if d := cmp.Diff(tc.want, r.value(tc.in)); d != "" {
			t.Errorf("value(%v) (-want +got):\n%s", tc.in, d)
		}
	}
	if got := newRedactor(nil, nil).String("abc"); got != "abc" {
		t.Errorf("no secrets: %q", got)
	}
}

func TestHostRunsTheHelloExample(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyBinary(t, bin.hello, filepath.Join(dir, "bin"), "runbook-plugin-hello")
	h, err := Start(context.Background(), Config{Dir: dir, Plugins: []*runbook.PluginRef{ref("hello", "")}})
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	ctx := context.Background()
	d, _ := h.Description("hello")
	if a, ok := d.Action("greet"); !ok || !a.ReadOnly || !a.SupportsPlan || a.Doc == "" {
		t.Errorf("greet = %+v", a)
	}
	var progress []spec.Progress
	out, err := h.Invoke(ctx, call("hello", "greet", map[string]any{"name": "ops"}), func(p spec.Progress) { progress = append(progress, p) })
	if err != nil || out["greeting"] != "Hello, ops!" || len(progress) != 1 {
		t.Errorf("greet: %v, %v, progress %+v", out, err, progress)
	}
	c := call("hello", "greet", map[string]any{"name": "ops", "fail_times": 1})
	if _, err := h.Invoke(ctx, c, nil); specError(t, err).Code != "Shy" || !specError(t, err).Retryable {
		t.Errorf("first attempt: %v", err)
	}
	c.Attempt = 2
	if _, err := h.Invoke(ctx, c, nil); err != nil {
		t.Errorf("second attempt: %v", err)
	}
	plan, err := h.Plan(ctx, engine.PlanCall{Plugin: "hello", Action: "greet", Params: map[string]any{"name": "ops"}})
	if err != nil || plan.Summary != "greet ops" {
		t.Errorf("plan: %+v, %v", plan, err)
	}
}

// Without a lock file, the checksums the catalog computed while validating
// pin the run: the binary that was described starts, and one replaced in
// between is refused before it runs.
func TestHostStartsOnlyTheBinaryTheCatalogDescribed(t *testing.T) {
	t.Parallel()
	dir, refs := pluginDir(t, "c")
	refs = append(refs, ref("core", ""))
	cat := NewCatalog(context.Background(), CatalogConfig{Dir: dir, Plugins: refs})
	sums := cat.Checksums()
	want, _ := fileSHA256(filepath.Join(dir, "bin", "runbook-plugin-c"))
	if len(sums) != 1 || sums["c"] != want {
		t.Fatalf("Checksums = %v, want only c: %s", sums, want)
	}

	h, err := Start(context.Background(), Config{Dir: dir, Plugins: refs, Validated: sums})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := h.Invoke(context.Background(), call("c", "noop", nil), nil); err != nil {
		t.Error(err)
	}
	if w := h.Warnings(); len(w) != 1 || !strings.Contains(w[0], "not pinned") {
		t.Errorf("warnings = %q, want the unpinned warning", w)
	}
	h.Close()

	copyBinary(t, bin.other, filepath.Join(dir, "bin"), "runbook-plugin-c")
	_, err = Start(context.Background(), Config{Dir: dir, Plugins: refs, Validated: sums})
	var mm *ChecksumMismatchError
	if !errors.As(err, &mm) || !mm.Validated || mm.Want != want {
		t.Fatalf("want a mismatch with the validated checksum, got %v", err)
	}
	other, _ := fileSHA256(bin.other)
	for _, s := range []string{"plugin c", "changed after the runbook was validated", want, other} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error lacks %q: %v", s, err)
		}
	}

	// A plugin the catalog did not describe is not started either.
	_, err = Start(context.Background(), Config{Dir: dir, Plugins: refs, Validated: map[string]string{}})
	if err == nil || !strings.Contains(err.Error(), "was not described when the runbook was validated") {
		t.Fatalf("undescribed plugin: %v", err)
	}
	if left := processesRunning(t, dir); len(left) > 0 {
		t.Errorf("processes left: %v", left)
	}
}
