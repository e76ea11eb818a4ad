// Package emulator starts and controls the AWS emulator of the CI simulation: moto
// server, patched by the Python package beside this file (runbook_sim), listening on
// 127.0.0.1. It also lets the suite use an emulator the user already runs (a
// LocalStack, or a `simctl up`) when AWS_ENDPOINT_URL is set and RUNBOOK_SIM_EXTERNAL=1.
//
// The emulator process runs in its own process group; Stop kills the whole group,
// and a started emulator also exits by itself when its parent's end of its stdin pipe
// closes, so a crashed test binary leaves nothing behind.
package emulator

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"time"
)

// Environment variables the launcher reads.
const (
	// EnvPython overrides the Python interpreter (default: <repo>/.venv/bin/python).
	EnvPython = "RUNBOOK_SIM_PYTHON"
	// EnvExternal, set to 1 with AWS_ENDPOINT_URL, makes Start use that endpoint
	// instead of starting an emulator.
	EnvExternal = "RUNBOOK_SIM_EXTERNAL"
	// EnvRoot overrides the repository root (where sim/emulator/serve.py and .venv are).
	EnvRoot = "RUNBOOK_SIM_ROOT"
	// EnvEndpoint is the standard AWS SDK endpoint override.
	EnvEndpoint = "AWS_ENDPOINT_URL"
)

// DefaultPort is LocalStack's edge port, which moto is served on unless told otherwise.
const DefaultPort = 4566

// Transition names of the timing model (seconds per transition).
const (
	AuroraSwitchover   = "aurora_switchover"
	AuroraFailover     = "aurora_failover"
	AuroraResync       = "aurora_resync" // the old primary's resync after a failover, from when its region answers
	ECSStabilize       = "ecs_stabilize"
	Route53InSync      = "route53_insync"
	ASGInstanceRefresh = "asg_instance_refresh" // a whole instance refresh
	ASGInstanceWarmup  = "asg_instance_warmup"  // one replacement after TerminateInstanceInAutoScalingGroup
	// ASGRefreshWaitLimit is how long an instance refresh waits for protected or
	// Standby instances (preference Wait) before it fails: 3600, as in AWS, but for
	// the realistic preset (360) and instant (0).
	ASGRefreshWaitLimit = "asg_refresh_wait_limit"
	CloudFrontDeploy    = "cloudfront_deploy"
	S3BatchJob          = "s3_batch_job"
	S3Replication       = "s3_replication"     // one object version from source to destination bucket
	ELBTargetHealthy    = "elb_target_healthy" // a registered target from initial to healthy
	ELBDeregistration   = "elb_deregistration" // a deregistered target draining before it is gone
	ARCDeploy           = "arc_deploy"         // a Route 53 ARC resource: PENDING -> DEPLOYED
)

// Timing presets known to the emulator.
const (
	PresetCI        = "ci"        // the defaults: 1-3 s per transition
	PresetInstant   = "instant"   // every transition completes at once
	PresetRealistic = "realistic" // real-world timings (docs/dr-guide.md) scaled down 1:10
)

// Timing maps transition names to seconds. A partial map changes only the
// transitions it names; a change applies to transitions that start afterwards.
type Timing map[string]float64

// ErrNoControl is returned by the control methods of an external emulator that does
// not serve runbook's /_sim/ control API (a LocalStack, for instance).
var ErrNoControl = errors.New("emulator: external emulator has no /_sim/ control API")

// Options configures Start. The zero value starts a private emulator on a free port.
type Options struct {
	// Port to listen on; 0 picks a free port (what tests want). Use DefaultPort for
	// the LocalStack-compatible edge port.
	Port int
	// TimingPreset is applied first, then Timing on top of it.
	TimingPreset string
	Timing       Timing
	// LogPath receives the emulator's stdout and stderr (appended). Empty: discarded,
	// unless Log is set.
	LogPath string
	// Log receives the emulator's output when LogPath is empty.
	Log io.Writer
	// Verbose logs every request (moto's access log).
	Verbose bool
	// Python overrides the interpreter; default RUNBOOK_SIM_PYTHON, then
	// <repo>/.venv/bin/python.
	Python string
	// RepoRoot overrides the repository root (default: walk up from the working
	// directory to go.mod).
	RepoRoot string
	// Detached makes the emulator survive this process: it gets its own session and
	// does not watch its stdin. Used by simctl; the caller must Stop it or kill its
	// process group (Emulator.PID) later.
	Detached bool
	// StartTimeout bounds waiting for readiness (default 60 s).
	StartTimeout time.Duration
	// IgnoreExternal starts a private emulator even when RUNBOOK_SIM_EXTERNAL=1.
	IgnoreExternal bool
}

// Emulator is a running emulator, started here or external.
type Emulator struct {
	// URL is the endpoint to give the AWS SDKs (AWS_ENDPOINT_URL), without a trailing slash.
	URL string

	external bool
	control  bool
	client   *http.Client

	cmd      *exec.Cmd
	stdin    io.WriteCloser
	logFile  *os.File
	done     chan struct{}
	waitErr  error
	stopOnce sync.Once
}

// Start starts an emulator, or connects to the external one that the environment
// names (AWS_ENDPOINT_URL with RUNBOOK_SIM_EXTERNAL=1). It returns once the emulator
// answers requests.
func Start(ctx context.Context, opts Options) (*Emulator, error) {
	client := &http.Client{Timeout: 10 * time.Second}
	if ep := os.Getenv(EnvEndpoint); ep != "" && os.Getenv(EnvExternal) == "1" && !opts.IgnoreExternal {
		return connectExternal(ctx, client, ep, opts)
	}
	python, serve, err := locate(opts)
	if err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "runbook-sim-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ready := filepath.Join(tmp, "ready.json")

	args := []string{serve, "--host", "127.0.0.1", "--port", fmt.Sprint(opts.Port), "--ready-file", ready}
	if !opts.Verbose {
		args = append(args, "--quiet")
	}
	if !opts.Detached {
		args = append(args, "--exit-on-stdin-eof")
	}
	cmd := exec.Command(python, args...)
	cmd.Env = append(os.Environ(), "PYTHONUNBUFFERED=1", "PYTHONDONTWRITEBYTECODE=1")
	if doc := initialTiming(opts); doc != "" {
		cmd.Env = append(cmd.Env, "RUNBOOK_SIM_TIMING="+doc)
	}
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: !opts.Detached, Setsid: opts.Detached}

	e := &Emulator{client: client, control: true, cmd: cmd, done: make(chan struct{})}
	var out io.Writer = io.Discard
	switch {
	case opts.LogPath != "":
		f, err := os.OpenFile(opts.LogPath, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
		if err != nil {
			return nil, fmt.Errorf("emulator: log file: %w", err)
		}
		e.logFile = f
		out = f
	case opts.Log != nil:
		out = opts.Log
	}
	cmd.Stdout, cmd.Stderr = out, out
	if !opts.Detached {
		if e.stdin, err = cmd.StdinPipe(); err != nil {
			e.closeLog()
			return nil, err
		}
	}
	if err := cmd.Start(); err != nil {
		e.closeLog()
		return nil, fmt.Errorf("emulator: start %s: %w", python, err)
	}
	go func() {
		e.waitErr = cmd.Wait()
		close(e.done)
	}()

	timeout := opts.StartTimeout
	if timeout == 0 {
		timeout = 60 * time.Second
	}
	port, err := e.waitReady(ctx, ready, timeout)
	if err != nil {
		e.Stop()
		return nil, err
	}
	e.URL = fmt.Sprintf("http://127.0.0.1:%d", port)
	if err := e.ping(ctx); err != nil {
		e.Stop()
		return nil, err
	}
	return e, nil
}

// Connect returns the emulator already listening at url (a `simctl up` emulator, a
// LocalStack) without starting anything; HasControl says whether it serves /_sim/.
func Connect(ctx context.Context, url string) (*Emulator, error) {
	return connectExternal(ctx, &http.Client{Timeout: 10 * time.Second}, url, Options{})
}

func connectExternal(ctx context.Context, client *http.Client, ep string, opts Options) (*Emulator, error) {
	e := &Emulator{URL: strings.TrimRight(ep, "/"), external: true, control: true, client: client, done: make(chan struct{})}
	close(e.done)
	// A `simctl up` emulator (or its fault proxy) serves the control API; LocalStack does not.
	pctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	if err := e.ping(pctx); err != nil {
		e.control = false
	} else {
		if opts.TimingPreset != "" || len(opts.Timing) > 0 {
			if opts.TimingPreset != "" {
				if err := e.SetPreset(ctx, opts.TimingPreset); err != nil {
					return nil, err
				}
			}
			if len(opts.Timing) > 0 {
				if err := e.SetTiming(ctx, opts.Timing); err != nil {
					return nil, err
				}
			}
		}
	}
	return e, nil
}

func initialTiming(opts Options) string {
	if opts.TimingPreset == "" && len(opts.Timing) == 0 {
		return ""
	}
	doc := map[string]any{}
	for k, v := range opts.Timing {
		doc[k] = v
	}
	if opts.TimingPreset != "" {
		doc["preset"] = opts.TimingPreset
	}
	b, _ := json.Marshal(doc)
	return string(b)
}

// locate returns the interpreter and serve.py.
func locate(opts Options) (python, serve string, err error) {
	root := opts.RepoRoot
	if root == "" {
		if root, err = RepoRoot(); err != nil {
			return "", "", err
		}
	}
	serve = filepath.Join(root, "sim", "emulator", "serve.py")
	if _, err := os.Stat(serve); err != nil {
		return "", "", fmt.Errorf("emulator: %w", err)
	}
	if python = opts.Python; python == "" {
		python, err = Python(root)
	}
	return python, serve, err
}

// Python is the simulation's interpreter: RUNBOOK_SIM_PYTHON if set, else
// the repository's .venv (moto, boto3, botocore, pinned).
func Python(root string) (string, error) {
	if python := os.Getenv(EnvPython); python != "" {
		return python, nil
	}
	python := filepath.Join(root, ".venv", "bin", "python")
	if _, err := os.Stat(python); err != nil {
		return "", fmt.Errorf("emulator: no Python environment at %s (run `make venv`, or set %s): %w", python, EnvPython, err)
	}
	return python, nil
}

// RepoRoot is RUNBOOK_SIM_ROOT if set, else the nearest directory holding go.mod
// above the working directory, else above the running executable.
func RepoRoot() (string, error) {
	if root := os.Getenv(EnvRoot); root != "" {
		return root, nil
	}
	if dir, err := os.Getwd(); err == nil {
		if root, err := findGoMod(dir); err == nil {
			return root, nil
		}
	}
	if exe, err := os.Executable(); err == nil {
		if root, err := findGoMod(filepath.Dir(exe)); err == nil {
			return root, nil
		}
	}
	return "", fmt.Errorf("emulator: no go.mod above the working directory or the executable; set %s", EnvRoot)
}

func findGoMod(dir string) (string, error) {
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, nil
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", errors.New("no go.mod")
		}
		dir = parent
	}
}

func (e *Emulator) waitReady(ctx context.Context, ready string, timeout time.Duration) (int, error) {
	deadline := time.NewTimer(timeout)
	defer deadline.Stop()
	tick := time.NewTicker(25 * time.Millisecond)
	defer tick.Stop()
	for {
		if b, err := os.ReadFile(ready); err == nil {
			var r struct{ Port int }
			if err := json.Unmarshal(b, &r); err == nil && r.Port > 0 {
				return r.Port, nil
			}
		}
		select {
		case <-ctx.Done():
			return 0, ctx.Err()
		case <-deadline.C:
			return 0, fmt.Errorf("emulator: not ready after %s", timeout)
		case <-e.done:
			return 0, fmt.Errorf("emulator: exited before it was ready: %v", e.waitErr)
		case <-tick.C:
		}
	}
}

// External reports whether the emulator was not started here.
func (e *Emulator) External() bool { return e.external }

// HasControl reports whether the emulator serves the /_sim/ control API (timing,
// reset). An external LocalStack does not.
func (e *Emulator) HasControl() bool { return e.control }

// PID is the emulator process's id (also its process group id), 0 if external.
func (e *Emulator) PID() int {
	if e.cmd == nil || e.cmd.Process == nil {
		return 0
	}
	return e.cmd.Process.Pid
}

// Done is closed when the emulator process has exited (at once for an external one).
func (e *Emulator) Done() <-chan struct{} { return e.done }

func (e *Emulator) ping(ctx context.Context) error {
	var h struct{ OK bool }
	if err := e.call(ctx, http.MethodGet, "health", nil, &h); err != nil {
		return err
	}
	if !h.OK {
		return errors.New("emulator: health check failed")
	}
	return nil
}

// Timing returns the current seconds per transition.
func (e *Emulator) Timing(ctx context.Context) (Timing, error) {
	var t Timing
	err := e.call(ctx, http.MethodGet, "timing", nil, &t)
	return t, err
}

// SetTiming changes the named transitions' durations for transitions that start from now on.
func (e *Emulator) SetTiming(ctx context.Context, t Timing) error {
	return e.call(ctx, http.MethodPost, "timing", t, nil)
}

// SetPreset replaces the timing with a preset (PresetCI, PresetInstant, PresetRealistic).
func (e *Emulator) SetPreset(ctx context.Context, name string) error {
	return e.call(ctx, http.MethodPost, "timing", map[string]string{"preset": name}, nil)
}

// Reset forgets every resource and restores the timing the emulator started with.
func (e *Emulator) Reset(ctx context.Context) error {
	return e.call(ctx, http.MethodPost, "reset", nil, nil)
}

// Control calls a control endpoint /_sim/<name> with an optional JSON body and
// decodes the JSON answer into out (if not nil).
func (e *Emulator) Control(ctx context.Context, method, name string, in, out any) error {
	return e.call(ctx, method, name, in, out)
}

func (e *Emulator) call(ctx context.Context, method, name string, in, out any) error {
	if e.external && !e.control {
		return ErrNoControl
	}
	var body io.Reader
	if in != nil {
		b, err := json.Marshal(in)
		if err != nil {
			return err
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, method, e.URL+"/_sim/"+name, body)
	if err != nil {
		return err
	}
	if in != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	resp, err := e.client.Do(req)
	if err != nil {
		return fmt.Errorf("emulator: %s /_sim/%s: %w", method, name, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode != http.StatusOK {
		var msg struct{ Error string }
		if json.Unmarshal(b, &msg) == nil && msg.Error != "" {
			return fmt.Errorf("emulator: %s /_sim/%s: %s", method, name, msg.Error)
		}
		if e.external && resp.StatusCode == http.StatusNotFound {
			return ErrNoControl
		}
		return fmt.Errorf("emulator: %s /_sim/%s: HTTP %d", method, name, resp.StatusCode)
	}
	if out != nil {
		return json.Unmarshal(b, out)
	}
	return nil
}

// Stop ends the emulator and every process in its group, and waits for it. It is
// safe to call more than once; an external emulator is left alone.
func (e *Emulator) Stop() error {
	var err error
	e.stopOnce.Do(func() {
		if e.external || e.cmd == nil || e.cmd.Process == nil {
			return
		}
		pgid := e.cmd.Process.Pid
		_ = syscall.Kill(-pgid, syscall.SIGTERM)
		select {
		case <-e.done:
		case <-time.After(5 * time.Second):
			err = errors.New("emulator: did not stop on SIGTERM within 5s; killed")
			_ = syscall.Kill(-pgid, syscall.SIGKILL)
			<-e.done
		}
		// Anything the server spawned that ignored SIGTERM goes too.
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
		if e.stdin != nil {
			_ = e.stdin.Close()
		}
		e.closeLog()
	})
	return err
}

func (e *Emulator) closeLog() {
	if e.logFile != nil {
		_ = e.logFile.Close()
		e.logFile = nil
	}
}
