package pluginhost

import (
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// DefaultStartTimeout bounds one plugin's start: process start, go-plugin
// handshake and Describe.
const DefaultStartTimeout = 30 * time.Second

// LogLevelEnv is the environment variable a plugin reads its log level
// from; the host sets it to its own logger's level unless it is set.
const LogLevelEnv = "RUNBOOK_PLUGIN_LOG_LEVEL"

// Error codes of the *spec.Error values the host itself produces.
const (
	// CodePluginExited: the plugin process died during the call. The action
	// may have been partly applied: the engine retries it only if the action
	// is idempotent (as for a transport failure).
	CodePluginExited = engine.CodePluginExited
	// CodePluginStart: a plugin could not be (re)started for a reason
	// another attempt cannot fix (checksum, protocol, handshake).
	CodePluginStart = "PluginStartFailed"
	// CodeUnknownPlugin: the call names a plugin the host did not start.
	CodeUnknownPlugin = "UnknownPlugin"
	// CodePluginProtocol: the plugin refused the call itself (no such
	// action, malformed request).
	CodePluginProtocol = "PluginProtocolError"
	// CodeHostClosed: the host was closed before or during the call.
	CodeHostClosed = "PluginHostClosed"
)

const (
	// killGrace is how long Close lets go-plugin stop a plugin gracefully
	// (it asks the plugin to shut down, then waits up to 2s) before the
	// whole process group is killed.
	killGrace = 3 * time.Second
	// exitWait is how long a failed call waits to see whether the plugin
	// process exited, which tells a crash from a transport hiccup.
	exitWait = 2 * time.Second
	// reapWait is how long a process seen dead is given to be reaped.
	reapWait = 500 * time.Millisecond
)

// Config configures Start.
type Config struct {
	// Plugins to start: every plugin of the run (a runbook's `plugins:`).
	// The built-in "core" is skipped.
	Plugins []*runbook.PluginRef
	// Dir is the runbook's directory, against which commands are resolved.
	Dir string
	// Lock, if not nil, pins the plugins: a plugin absent from it or whose
	// sha256 differs is refused. Without a lock file, each plugin is pinned
	// to the checksum it had at validation (Validated) or else at start
	// (restarts refuse a changed binary), and a warning says it is not
	// pinned.
	Lock *LockFile
	// Validated, used when Lock is nil, maps each plugin to the sha256 its
	// executable had when the runbook was validated (Catalog.Checksums):
	// the plugin is started only if it still has it, so the binary whose
	// description checked the runbook is the binary that runs. A plugin
	// missing from a non-nil Validated is refused.
	Validated map[string]string
	// Logger receives the plugins' log lines, under the plugin's name
	// (Logger.Named("aws")), and the host's own messages. Nil discards them.
	Logger hclog.Logger
	// Secrets are values replaced by redact.Mask in everything re-emitted
	// from plugins (logs, progress, errors). More can be added with
	// AddSecrets.
	Secrets []string
	// Redactor, if set, is the redactor to use and add to: the engine's
	// (engine.Options.Redactor), so that secrets the run discovers are
	// redacted from plugin logs too.
	Redactor *redact.Redactor
	// Env is extra environment (KEY=VALUE) for every plugin, on top of the
	// host's own; a plugin's own `env:` comes after it.
	Env []string
	// StartTimeout bounds each plugin's start (DefaultStartTimeout if 0).
	StartTimeout time.Duration
	// Locked refuses every plugin Lock does not pin; with a nil Lock,
	// every plugin (see CatalogConfig.Locked).
	Locked bool
	// LockCommand is the command that pins the run's plugins, as the user
	// would type it, for messages (DefaultLockCommand if empty).
	LockCommand string
}

// Host runs the plugins of one run as go-plugin processes and routes calls
// to them. It implements engine.Invoker. Close it when the run ends.
type Host struct {
	ctx    context.Context
	cancel context.CancelFunc
	log    hclog.Logger
	red    *redactor

	startTimeout time.Duration
	plugins      map[string]*hosted
	warnings     []string

	closing   atomic.Bool
	closeOnce sync.Once
	done      chan struct{}
	reaping   sync.WaitGroup
}

var _ engine.Invoker = (*Host)(nil)

// hosted is one plugin of the run; its process may be restarted.
type hosted struct {
	h    *Host
	name string
	res  *Resolved
	env  []string
	// sum is the pinned sha256 (hex); lockPath is the lock file that pinned
	// it, or "" if it was pinned at validation (validated) or at start.
	sum       string
	lockPath  string
	validated bool
	// lockCmd pins the run's plugins, for messages.
	lockCmd string
	log     *redactingLogger
	desc    *spec.Description

	// mu serialises (re)starts; cur is read without it.
	mu     sync.Mutex
	cur    atomic.Pointer[instance]
	starts int
}

// instance is one process of a plugin.
type instance struct {
	gc   *goplugin.Client
	rpc  *plugin.Client
	cmd  *exec.Cmd
	pid  int
	stop context.CancelFunc
	tail *stderrTail
}

// Start starts every plugin in cfg.Plugins once, all concurrently, and
// returns when all are ready. If any fails, the others are killed and the
// first failure is returned.
//
// ctx bounds the life of the plugins: when it is done, every plugin process
// is killed at once and the host closes itself. Pass a context that
// outlives the whole run, rollbacks included; Close is the normal way out.
func Start(ctx context.Context, cfg Config) (*Host, error) {
	log := cfg.Logger
	if log == nil {
		log = hclog.NewNullLogger()
	}
	hctx, cancel := context.WithCancel(ctx)
	h := &Host{
		ctx: hctx, cancel: cancel, log: log, red: newRedactor(cfg.Redactor, cfg.Secrets),
		startTimeout: cfg.StartTimeout, plugins: map[string]*hosted{}, done: make(chan struct{}),
	}
	if h.startTimeout <= 0 {
		h.startTimeout = DefaultStartTimeout
	}
	var refs []*runbook.PluginRef
	for _, ref := range cfg.Plugins {
		if ref == nil || ref.Name == CorePlugin {
			continue
		}
		if _, dup := h.plugins[ref.Name]; dup {
			cancel()
			return nil, fmt.Errorf("plugin %s is listed twice", ref.Name)
		}
		h.plugins[ref.Name] = &hosted{h: h, name: ref.Name}
		refs = append(refs, ref)
	}

	var (
		wg       sync.WaitGroup
		failOnce sync.Once
		firstErr error
		warnMu   sync.Mutex
	)
	for _, ref := range refs {
		p := h.plugins[ref.Name]
		wg.Add(1)
		go func() {
			defer wg.Done()
			warning, err := p.start(cfg, ref)
			if err != nil {
				// Fail fast: cancelling the host's context kills every
				// plugin process started or starting.
				failOnce.Do(func() { firstErr = err; cancel() })
				return
			}
			if warning != "" {
				warnMu.Lock()
				h.warnings = append(h.warnings, warning)
				warnMu.Unlock()
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		h.Close()
		if err := ctx.Err(); err != nil {
			return nil, fmt.Errorf("starting plugins: %w", err)
		}
		return nil, firstErr
	}
	sort.Strings(h.warnings)
	for _, w := range h.warnings {
		h.log.Warn(w)
	}
	go func() {
		select {
		case <-hctx.Done():
			h.Close()
		case <-h.done:
		}
	}()
	return h, nil
}

// start resolves, pins and launches the plugin, then describes it.
func (p *hosted) start(cfg Config, ref *runbook.PluginRef) (warning string, err error) {
	h := p.h
	p.log = newPluginLogger(h.log.Named(p.name), h.red)
	r, err := Resolve(cfg.Dir, ref)
	if err != nil {
		return "", err
	}
	p.res = r
	p.lockCmd = cfg.LockCommand
	if cfg.Locked && cfg.Lock == nil {
		return "", CheckPinned(nil, cfg.Dir, r, cfg.LockCommand)
	}
	if cfg.Lock != nil {
		if err := cfg.Lock.Check(r); err != nil {
			return "", err
		}
		p.sum = strings.ToLower(cfg.Lock.Plugins[p.name].SHA256)
		p.lockPath = cfg.Lock.Path
		if p.lockPath == "" {
			p.lockPath = LockFileName
		}
	} else {
		p.sum = r.SHA256
		if cfg.Validated != nil {
			want, ok := cfg.Validated[p.name]
			if !ok {
				return "", fmt.Errorf("plugin %s (%s) was not described when the runbook was validated; refusing to run a binary that was not checked", p.name, r.Path)
			}
			want = strings.ToLower(want)
			if r.SHA256 != want {
				return "", &ChecksumMismatchError{Plugin: p.name, Path: r.Path, Got: r.SHA256, Want: want, Validated: true, Command: cfg.LockCommand}
			}
			p.sum, p.validated = want, true
		}
		warning = fmt.Sprintf("no %s: plugin %s is not pinned; running %s (sha256 %s) as found. Pin it with `%s` (then --locked, or $%s=1, refuses any plugin not pinned)",
			LockFileName, p.name, r.Path, p.sum, lockCommand(cfg.LockCommand), LockedEnv)
	}
	p.env = pluginEnv(cfg.Env, r.Env, h.log.GetLevel())

	p.mu.Lock()
	defer p.mu.Unlock()
	in, err := p.launch()
	if err != nil {
		return "", err
	}
	ctx, cancel := context.WithTimeout(h.ctx, h.startTimeout)
	defer cancel()
	d, err := in.rpc.Describe(ctx)
	if err != nil {
		in.kill()
		return "", fmt.Errorf("plugin %s (%s): describe: %s", p.name, r.Path, h.red.String(err.Error()))
	}
	if d.ProtocolVersion != plugin.ProtocolVersion {
		in.kill()
		return "", &ProtocolVersionError{Plugin: p.name, Path: r.Path, Got: d.ProtocolVersion, Want: plugin.ProtocolVersion}
	}
	p.desc = d
	p.cur.Store(in)
	p.log.Debug("plugin started", "path", r.Path, "pid", in.pid, "version", d.Version)
	return warning, nil
}

// pluginEnv is the host's environment (without runbook inputs), then
// cfgEnv, the log level unless already set, then the plugin's own env
// (later entries win).
func pluginEnv(cfgEnv, refEnv []string, level hclog.Level) []string {
	env := append(hostEnv(), cfgEnv...)
	set := false
	for _, kv := range append(append([]string{}, env...), refEnv...) {
		if strings.HasPrefix(kv, LogLevelEnv+"=") {
			set = true
		}
	}
	if !set && level != hclog.NoLevel {
		env = append(env, LogLevelEnv+"="+level.String())
	}
	return append(env, refEnv...)
}

// launch starts one process of the plugin and connects to it. p.mu is held.
func (p *hosted) launch() (*instance, error) {
	h := p.h
	if h.closing.Load() {
		return nil, errHostClosed(p.name)
	}
	if _, err := hex.DecodeString(p.sum); err != nil || p.sum == "" {
		return nil, fmt.Errorf("plugin %s: bad pinned checksum %q", p.name, p.sum)
	}
	// The executable must have the pinned checksum right before it is
	// started. This is the check go-plugin's SecureConfig makes (hash, then
	// exec the path); doing it here lets the digest cache (see fileSHA256)
	// spare hashing a binary whose file provably did not change since it
	// was hashed for validation moments ago.
	got, err := fileSHA256(p.res.Path)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: hashing %s: %w", p.name, p.res.Path, err)
	}
	if got != strings.ToLower(p.sum) {
		return nil, &ChecksumMismatchError{Plugin: p.name, Path: p.res.Path, Got: got, Want: p.sum, LockPath: p.lockPath, Command: p.lockCmd}
	}
	pctx, stop := context.WithCancel(h.ctx)
	cmd := exec.CommandContext(pctx, p.res.Path)
	cmd.Env = p.env
	isolate(cmd)
	// Cancelling the host's context kills the plugin and its children.
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	tail := &stderrTail{red: h.red}
	gc := goplugin.NewClient(&goplugin.ClientConfig{
		HandshakeConfig:  plugin.Handshake,
		Plugins:          plugin.PluginSet(),
		Cmd:              cmd,
		AllowedProtocols: []goplugin.Protocol{goplugin.ProtocolGRPC},
		AutoMTLS:         true,
		Managed:          false,
		StartTimeout:     h.startTimeout,
		Logger:           &redactingLogger{Logger: p.log, red: h.red, internal: true},
		Stderr:           tail,
		// After the handshake, go-plugin forwards what the plugin writes
		// to os.Stdout and os.Stderr (fmt.Print...) over gRPC.
		SyncStdout: &lineWriter{emit: func(line string) { p.log.Info(line, "stream", "stdout") }},
		SyncStderr: &lineWriter{emit: func(line string) {
			tail.add(line)
			p.log.Info(line)
		}},
		// The environment is composed in cmd.Env; go-plugin would otherwise
		// append the host's after it, overriding Config.Env.
		SkipHostEnv: true,
	})
	in := &instance{gc: gc, cmd: cmd, stop: stop, tail: tail}
	// Started and registered under the start gate: reaping orphans never
	// takes a plugin being started for one.
	startGate.RLock()
	ensureGuard()
	proto, err := gc.Client()
	if cmd.Process != nil {
		in.pid = cmd.Process.Pid
		registerChild(in.pid)
	}
	startGate.RUnlock()
	if err != nil {
		in.kill()
		return nil, p.startError(in, err)
	}
	raw, err := proto.Dispense(plugin.PluginName)
	if err != nil {
		in.kill()
		return nil, fmt.Errorf("plugin %s (%s): %s", p.name, p.res.Path, h.red.String(err.Error()))
	}
	in.rpc = raw.(*plugin.Client)
	p.starts++
	return in, nil
}

var pluginVersionRE = regexp.MustCompile(`Plugin version: (\d+)`)

// startError turns go-plugin's start errors into messages an operator can
// act on. The instance has been killed (so its exit status is known).
func (p *hosted) startError(in *instance, err error) error {
	h := p.h
	msg := err.Error()
	switch {
	case h.ctx.Err() != nil:
		return fmt.Errorf("plugin %s: start interrupted: %w", p.name, h.ctx.Err())
	case errors.Is(err, goplugin.ErrChecksumsDoNotMatch):
		got, _ := fileSHA256(p.res.Path)
		return &ChecksumMismatchError{Plugin: p.name, Path: p.res.Path, Got: got, Want: p.sum, LockPath: p.lockPath, Validated: p.validated && p.starts == 0, Command: p.lockCmd}
	case strings.Contains(msg, "incompatible API version"):
		got := 0
		if m := pluginVersionRE.FindStringSubmatch(msg); m != nil {
			got, _ = strconv.Atoi(m[1])
		}
		return &ProtocolVersionError{Plugin: p.name, Path: p.res.Path, Got: got, Want: plugin.ProtocolVersion}
	case strings.Contains(msg, "Unrecognized remote plugin message") && !strings.Contains(msg, "Failed to read any lines"):
		line, _, _ := strings.Cut(strings.TrimPrefix(msg, "Unrecognized remote plugin message: "), "\n")
		return &HandshakeError{Plugin: p.name, Path: p.res.Path, Output: h.red.String(line)}
	case strings.Contains(msg, "plugin exited before we could connect"), strings.Contains(msg, "Failed to read any lines"):
		return fmt.Errorf("plugin %s (%s) exited during start-up (%s)%s", p.name, p.res.Path, in.exitStatus(), h.red.String(lastOutput(in.tail)))
	case strings.Contains(msg, "timeout while waiting for plugin to start"):
		return fmt.Errorf("plugin %s (%s) did not complete the go-plugin handshake within %s%s", p.name, p.res.Path, h.startTimeout, h.red.String(lastOutput(in.tail)))
	}
	return fmt.Errorf("plugin %s (%s): start: %s", p.name, p.res.Path, h.red.String(msg))
}

// HandshakeError refuses a plugin that printed something other than the
// go-plugin handshake on stdout.
type HandshakeError struct {
	Plugin, Path string
	// Output is the first line it printed.
	Output string
}

func (e *HandshakeError) Error() string {
	return fmt.Sprintf("plugin %s (%s) printed %q instead of the go-plugin handshake: a plugin must write nothing to stdout (log with hclog to stderr), and must be started by runbook", e.Plugin, e.Path, e.Output)
}

func lastOutput(t *stderrTail) string {
	if s := t.last(); s != "" {
		return "; last output: " + s
	}
	return ""
}

// exitStatus describes how the process ended, once go-plugin has seen it.
func (in *instance) exitStatus() string {
	if in.gc.Exited() && in.cmd.ProcessState != nil {
		return in.cmd.ProcessState.String()
	}
	if in.pid == 0 {
		return "did not start"
	}
	return "exit status not known yet"
}

// exited reports whether the process has exited, waiting up to d for it to
// happen. A process seen gone is given a moment for go-plugin to reap it
// and read the rest of its stderr, so that its exit status and last words
// are known.
func (in *instance) exited(d time.Duration) bool {
	deadline := time.Now().Add(d)
	var goneAt time.Time
	for {
		if in.gc.Exited() {
			return true
		}
		if goneAt.IsZero() && in.pid > 0 && processGone(in.pid) {
			goneAt = time.Now()
		}
		now := time.Now()
		if !goneAt.IsZero() && now.Sub(goneAt) > reapWait {
			return true
		}
		if now.After(deadline) {
			return !goneAt.IsZero()
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// alive is the cheap check before a call: a process known to have died is
// restarted before the call rather than failing it.
func (in *instance) alive() bool {
	return !in.gc.Exited() && (in.pid == 0 || !processGone(in.pid))
}

// kill stops the process: go-plugin first asks it to shut down; after
// killGrace, or as soon as that is done, the whole process group is killed
// (children included). It returns when go-plugin has reaped the process.
//
// Its descendants are listed first, while their parent links still lead to
// it: a child that moved to a process group or session of its own is
// killed too.
func (in *instance) kill() {
	tree := descendants(in.pid)
	done := make(chan struct{})
	go func() {
		in.gc.Kill()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(killGrace):
	}
	// The group may outlive its leader (children it spawned); a pid is not
	// reused while its group has members, so this cannot hit a stranger.
	_ = killGroup(in.pid)
	killAll(tree)
	<-done
	in.stop()
	killTreeAndWait(in.pid, tree, killGrace)
	unregisterChild(in.pid)
}

// instance returns the plugin's running process, starting a new one if the
// last one died (lazily, so that rollbacks can still use the plugin).
func (p *hosted) instance(ctx context.Context) (*instance, error) {
	h := p.h
	if h.closing.Load() {
		return nil, errHostClosed(p.name)
	}
	if in := p.cur.Load(); in != nil && in.alive() {
		return in, nil
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if in := p.cur.Load(); in != nil {
		if in.alive() {
			return in, nil
		}
		in.exited(reapWait)
		p.log.Warn("plugin process exited between calls", "status", in.exitStatus())
		p.retire(in)
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if h.closing.Load() {
		return nil, errHostClosed(p.name)
	}
	// Check the binary before anything else, for a clear error (launch
	// checks it again, from the digest cache when the file is unchanged).
	got, err := fileSHA256(p.res.Path)
	if err != nil {
		return nil, &spec.Error{Code: CodePluginStart, Message: fmt.Sprintf("plugin %s: restarting: %v", p.name, err)}
	}
	if got != p.sum {
		e := &ChecksumMismatchError{Plugin: p.name, Path: p.res.Path, Got: got, Want: p.sum, LockPath: p.lockPath, Command: p.lockCmd}
		return nil, &spec.Error{Code: CodePluginStart, Message: e.Error(), Err: e}
	}
	p.log.Info("restarting plugin", "path", p.res.Path)
	in, err := p.launch()
	if err != nil {
		var mm *ChecksumMismatchError
		var pv *ProtocolVersionError
		var hs *HandshakeError
		if errors.As(err, &mm) || errors.As(err, &pv) || errors.As(err, &hs) {
			return nil, &spec.Error{Code: CodePluginStart, Message: err.Error(), Err: err}
		}
		return nil, err
	}
	p.cur.Store(in)
	p.log.Debug("plugin restarted", "pid", in.pid)
	return in, nil
}

// retire drops a dead or broken process and reaps it in the background.
func (p *hosted) retire(in *instance) {
	if !p.cur.CompareAndSwap(in, nil) {
		return
	}
	p.h.reaping.Add(1)
	go func() {
		defer p.h.reaping.Done()
		in.kill()
		reapOrphans() // its detached children, re-parented here
	}()
}

func errHostClosed(name string) error {
	return &spec.Error{Code: CodeHostClosed, Message: fmt.Sprintf("plugin %s: the plugin host is closed", name)}
}

func (h *Host) plugin(name string) (*hosted, error) {
	p, ok := h.plugins[name]
	if !ok {
		return nil, &spec.Error{Code: CodeUnknownPlugin, Message: fmt.Sprintf("plugin %s was not started by this host", name)}
	}
	return p, nil
}

// callError classifies a failed call. what names the call for messages
// ("action ecs_services").
func (p *hosted) callError(ctx context.Context, in *instance, what string, err error) error {
	h := p.h
	var se *spec.Error
	if errors.As(err, &se) {
		return h.red.specError(se)
	}
	if h.closing.Load() {
		return &spec.Error{Code: CodeHostClosed, Message: fmt.Sprintf("plugin %s: the plugin host closed during %s", p.name, what)}
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.NotFound, codes.Unimplemented, codes.InvalidArgument:
		// The plugin is alive and refuses the call: retrying cannot help.
		return &spec.Error{Code: CodePluginProtocol, Message: fmt.Sprintf("plugin %s: %s: %s", p.name, what, h.red.String(st.Message()))}
	}
	// A dead process explains any failure; wait a little for its exit to
	// be seen unless the call was cancelled by the caller.
	wait := exitWait
	if ctx.Err() != nil {
		wait = 0
	}
	if in.exited(wait) {
		p.log.Warn("plugin process exited during a call", "call", what, "status", in.exitStatus())
		msg := fmt.Sprintf("plugin %s exited during %s (%s)%s; the action may have been partly applied. The plugin is restarted for the next call",
			p.name, what, in.exitStatus(), h.red.String(lastOutput(in.tail)))
		p.retire(in)
		return &spec.Error{Code: CodePluginExited, Message: msg}
	}
	if ctx.Err() != nil {
		return fmt.Errorf("plugin %s: %s: %w", p.name, what, ctx.Err())
	}
	if st.Code() == codes.Unavailable {
		// The connection is gone but the process is not: it cannot serve
		// another call, so replace it on the next one.
		p.retire(in)
	}
	return fmt.Errorf("plugin %s: %s: %s", p.name, what, h.red.String(err.Error()))
}

// Invoke runs an action (engine.Invoker). Errors: the action's own
// *spec.Error; a *spec.Error with code PluginExited (not marked retryable:
// the engine decides by the action's idempotency) if the process died
// during the call (the next call restarts it); a plain error for a
// transport failure, or wrapping ctx.Err().
func (h *Host) Invoke(ctx context.Context, call engine.Call, progress func(spec.Progress)) (map[string]any, error) {
	p, err := h.plugin(call.Plugin)
	if err != nil {
		return nil, err
	}
	in, err := p.instance(ctx)
	if err != nil {
		return nil, err
	}
	out, err := in.rpc.Apply(ctx, plugin.ApplyCall{
		RunID: call.RunID, StepID: call.StepID, Action: call.Action, Attempt: call.Attempt,
		IdempotencyKey: call.IdempotencyKey, Rollback: call.Rollback, Params: params(call.Params), Deadline: call.Deadline,
	}, func(pr spec.Progress) {
		if progress != nil {
			progress(h.red.progress(pr))
		}
	})
	if err != nil {
		return nil, p.callError(ctx, in, "action "+call.Action, err)
	}
	return out, nil
}

// params sends absent parameters as an empty object, not JSON null.
func params(m map[string]any) map[string]any {
	if m == nil {
		return map[string]any{}
	}
	return m
}

// Plan asks an action what it would change (engine.Invoker).
func (h *Host) Plan(ctx context.Context, call engine.PlanCall) (*spec.Plan, error) {
	p, err := h.plugin(call.Plugin)
	if err != nil {
		return nil, err
	}
	in, err := p.instance(ctx)
	if err != nil {
		return nil, err
	}
	plan, err := in.rpc.Plan(ctx, plugin.PlanCall{
		RunID: call.RunID, StepID: call.StepID, Action: call.Action, Params: params(call.Params), Unknown: call.Unknown,
	})
	if err != nil {
		return nil, p.rpcError(ctx, in, "plan of action "+call.Action, err)
	}
	return plan, nil
}

// Validate checks an action's parameters statically in the plugin; unknown
// lists JSON pointers of values known only at run time.
func (h *Host) Validate(ctx context.Context, pluginName, action string, values map[string]any, unknown []string) ([]spec.Diagnostic, error) {
	p, err := h.plugin(pluginName)
	if err != nil {
		return nil, err
	}
	in, err := p.instance(ctx)
	if err != nil {
		return nil, err
	}
	diags, err := in.rpc.Validate(ctx, action, params(values), unknown)
	if err != nil {
		return nil, p.rpcError(ctx, in, "validation of action "+action, err)
	}
	return diags, nil
}

// rpcError is callError for unary calls, whose handler errors arrive as a
// gRPC status with code Unknown: the plugin answered, so its message is
// the error.
func (p *hosted) rpcError(ctx context.Context, in *instance, what string, err error) error {
	if st, ok := status.FromError(err); ok && st.Code() == codes.Unknown && !in.gc.Exited() {
		return fmt.Errorf("plugin %s: %s: %s", p.name, what, p.h.red.String(st.Message()))
	}
	return p.callError(ctx, in, what, err)
}

// Description returns what a started plugin offers (from its Describe).
func (h *Host) Description(name string) (*spec.Description, error) {
	p, err := h.plugin(name)
	if err != nil {
		return nil, err
	}
	return p.desc, nil
}

// Pid returns the process id of a plugin's current process, or 0 if it has
// none (it died and was not restarted yet, or the host is closed).
func (h *Host) Pid(name string) int {
	p, ok := h.plugins[name]
	if !ok {
		return 0
	}
	if in := p.cur.Load(); in != nil && !in.gc.Exited() {
		return in.pid
	}
	return 0
}

// Warnings returns what the host warned about at start (plugins not pinned
// by a lock file), also logged through the Logger.
func (h *Host) Warnings() []string { return append([]string(nil), h.warnings...) }

// AddSecrets adds values to redact from what plugins log, report as
// progress, or return as error messages.
func (h *Host) AddSecrets(values ...string) { h.red.Add(values...) }

// Done is closed once the host has closed and every plugin process is gone.
func (h *Host) Done() <-chan struct{} { return h.done }

// Close kills every plugin process (and any children they spawned) and
// waits for them to be gone. Calls in progress fail. It is safe to call
// more than once, and concurrently.
func (h *Host) Close() error {
	h.closeOnce.Do(func() {
		h.closing.Store(true)
		var wg sync.WaitGroup
		for _, p := range h.plugins {
			if in := p.cur.Swap(nil); in != nil {
				wg.Add(1)
				go func() {
					defer wg.Done()
					in.kill()
				}()
			}
		}
		wg.Wait()
		// Kills anything still starting; then wait for restarts in flight
		// to notice and reap what they started.
		h.cancel()
		for _, p := range h.plugins {
			p.mu.Lock()
			in := p.cur.Swap(nil)
			p.mu.Unlock()
			if in != nil {
				in.kill()
			}
		}
		h.reaping.Wait()
		for _, p := range h.plugins {
			if p.log != nil {
				p.log.flush()
			}
		}
		// Descendants whose parent exited were re-parented to this
		// process (ContainProcesses): none may outlive the plugins.
		reapOrphans()
		close(h.done)
	})
	<-h.done
	return nil
}

// hostEnv is the host's environment without the variables that give
// runbook inputs (RUNBOOK_VAR_<name>): inputs reach an action through its
// parameters only, so a secret input given in the environment is not handed
// to every plugin process, and its children, as well.
func hostEnv() []string {
	all := os.Environ()
	env := make([]string, 0, len(all))
	for _, kv := range all {
		if !strings.HasPrefix(strings.ToUpper(kv), runbook.EnvPrefix) {
			env = append(env, kv)
		}
	}
	return env
}
