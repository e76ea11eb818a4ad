package pluginhost

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"
	"sync"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// DefaultDescribeTimeout bounds `<plugin> describe` when the context has no
// earlier deadline.
const DefaultDescribeTimeout = 10 * time.Second

// maxDescribeOutput bounds what is read from `describe`: a description with
// hundreds of actions is well under a megabyte.
const maxDescribeOutput = 16 << 20

// ProtocolVersionError refuses a plugin that speaks another major version of
// the plugin protocol.
type ProtocolVersionError struct {
	Plugin string
	Path   string
	// Got is the plugin's protocol version (0 if it could not be told).
	Got  int
	Want int
}

func (e *ProtocolVersionError) Error() string {
	if e.Got == 0 {
		return fmt.Sprintf("plugin %s (%s) did not report a protocol version: it is not a runbook plugin, or is too old", e.Plugin, e.Path)
	}
	return fmt.Sprintf("plugin %s (%s) speaks runbook plugin protocol v%d, but this runbook speaks v%d: use a build of the plugin for protocol v%d, or a runbook release that speaks v%d",
		e.Plugin, e.Path, e.Got, e.Want, e.Want, e.Got)
}

// Describe runs `<plugin> describe` (no gRPC session) and returns the
// plugin's description. It refuses output that is not a single JSON
// description and a protocol major version other than this host's.
func Describe(ctx context.Context, r *Resolved) (*spec.Description, error) {
	return describe(ctx, r, nil)
}

func describe(ctx context.Context, r *Resolved, extraEnv []string) (*spec.Description, error) {
	out, err := describeOutput(ctx, r, extraEnv)
	if err != nil {
		return nil, err
	}
	return parseDescription(r, out)
}

// describeOutput runs `<plugin> describe` and returns what it printed.
func describeOutput(ctx context.Context, r *Resolved, extraEnv []string) ([]byte, error) {
	timeout := DefaultDescribeTimeout
	if dl, ok := ctx.Deadline(); ok && time.Until(dl) < timeout {
		timeout = time.Until(dl)
	}
	ctx, cancel := context.WithTimeout(ctx, timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, r.Path, "describe")
	cmd.Env = append(append(hostEnv(), extraEnv...), r.Env...)
	isolate(cmd)
	cmd.Cancel = func() error { return killGroup(cmd.Process.Pid) }
	// A child that kept our pipes open must not hang us after the plugin
	// itself exited.
	cmd.WaitDelay = time.Second
	stdout := &limitedBuffer{max: maxDescribeOutput}
	stderr := &tailBuffer{max: 2048}
	cmd.Stdout, cmd.Stderr = stdout, stderr
	startGate.RLock()
	err := cmd.Start()
	if err == nil {
		registerChild(cmd.Process.Pid)
	}
	startGate.RUnlock()
	if err == nil {
		err = cmd.Wait()
		// Nothing the plugin started may outlive `describe`: its group, and
		// any orphan of it re-parented to this process (ContainProcesses).
		killTreeAndWait(cmd.Process.Pid, nil, time.Second)
		unregisterChild(cmd.Process.Pid)
		reapOrphans()
	}
	if ctx.Err() == context.DeadlineExceeded {
		return nil, fmt.Errorf("plugin %s: `%s describe` did not finish within %s", r.Name, r.Path, timeout.Round(time.Millisecond))
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if stdout.overflow {
		return nil, fmt.Errorf("plugin %s: `%s describe` printed more than %d bytes", r.Name, r.Path, maxDescribeOutput)
	}
	if err != nil {
		msg := strings.TrimSpace(stderr.String())
		if msg != "" {
			msg = ": " + msg
		}
		return nil, fmt.Errorf("plugin %s: `%s describe` failed (%v)%s", r.Name, r.Path, err, msg)
	}
	return stdout.Bytes(), nil
}

func parseDescription(r *Resolved, out []byte) (*spec.Description, error) {
	if len(bytes.TrimSpace(out)) == 0 {
		return nil, fmt.Errorf("plugin %s: `%s describe` printed nothing: it is not a runbook plugin", r.Name, r.Path)
	}
	dec := json.NewDecoder(bytes.NewReader(out))
	var d spec.Description
	err := dec.Decode(&d)
	if err == nil {
		// Exactly one JSON value: anything after it means the plugin writes
		// to stdout, which would also break the go-plugin handshake.
		if _, e := dec.Token(); e != io.EOF {
			err = errors.New("unexpected output after the description")
		}
	}
	if err != nil {
		return nil, fmt.Errorf("plugin %s: `%s describe` did not print a plugin description (%v); a plugin must write nothing else to stdout (log with hclog to stderr). Its output began: %q",
			r.Name, r.Path, err, head(out, 120))
	}
	if d.ProtocolVersion != plugin.ProtocolVersion {
		return nil, &ProtocolVersionError{Plugin: r.Name, Path: r.Path, Got: d.ProtocolVersion, Want: plugin.ProtocolVersion}
	}
	if d.Name == "" {
		return nil, fmt.Errorf("plugin %s: `%s describe` returned a description without a name", r.Name, r.Path)
	}
	for _, a := range d.Actions {
		if err := spec.CheckPermissions(a); err != nil {
			return nil, fmt.Errorf("plugin %s: %w", r.Name, err)
		}
	}
	return &d, nil
}

func head(b []byte, n int) string {
	if len(b) > n {
		return string(b[:n]) + "..."
	}
	return string(b)
}

// describeCache holds descriptions by executable checksum and environment,
// so that validating several runbooks in one process describes each plugin
// once. Entries are shared: callers must not modify them.
var describeCache sync.Map // string -> *spec.Description

func describeCached(ctx context.Context, r *Resolved, extraEnv []string) (*spec.Description, error) {
	key := r.SHA256 + "\x00" + strings.Join(extraEnv, "\x00") + "\x00" + strings.Join(r.Env, "\x00")
	if d, ok := describeCache.Load(key); ok {
		return d.(*spec.Description), nil
	}
	// The on-disk cache holds what a plugin with this digest printed in
	// exactly this environment (the whole of it: a plugin may read any
	// variable while describing itself); it is parsed and checked as fresh
	// output is.
	dkey := describeKey(r.SHA256, append(append(hostEnv(), extraEnv...), r.Env...))
	cacheable := r.SHA256 != "" && !scriptCheck(r.Path)
	if cacheable {
		if out, ok := diskCacheGet("describe", dkey); ok {
			if d, err := parseDescription(r, out); err == nil {
				describeCache.Store(key, d)
				return d, nil
			}
		}
	}
	out, err := describeOutput(ctx, r, extraEnv)
	if err != nil {
		return nil, err
	}
	d, err := parseDescription(r, out)
	if err != nil {
		return nil, err
	}
	describeCache.Store(key, d)
	if cacheable {
		diskCachePut("describe", dkey, out)
	}
	return d, nil
}

// CatalogConfig configures a Catalog.
type CatalogConfig struct {
	// Dir is the runbook's directory: relative commands and ./bin are
	// resolved against it.
	Dir string
	// Plugins are the runbook's `plugins:`; they are described at once,
	// concurrently. More can be added with Declare.
	Plugins []*runbook.PluginRef
	// Lock, if not nil, is enforced: a plugin absent from it or whose
	// checksum differs is reported as an error for that plugin.
	Lock *LockFile
	// Env is extra environment for every plugin's `describe`.
	Env []string
	// Locked refuses, before running it (not even `describe`), every
	// plugin that Lock does not pin; with a nil Lock, every plugin.
	Locked bool
	// LockCommand is the command that pins the runbook's plugins, as the
	// user would type it, for messages (DefaultLockCommand if empty).
	LockCommand string
}

// Catalog describes a runbook's plugins with `<plugin> describe`, without
// starting a gRPC session, for runbook validation. It implements
// runbook.Catalog.
type Catalog struct {
	ctx context.Context
	cfg CatalogConfig

	mu      sync.Mutex
	entries map[string]*catalogEntry
}

type catalogEntry struct {
	done chan struct{}
	desc *spec.Description
	err  error
	// sum is the sha256 of the executable that was described.
	sum string
}

var _ runbook.Catalog = (*Catalog)(nil)

// NewCatalog starts describing cfg.Plugins concurrently and returns at
// once; Plugin waits for the plugin it is asked about. ctx bounds the
// describes.
func NewCatalog(ctx context.Context, cfg CatalogConfig) *Catalog {
	c := &Catalog{ctx: ctx, cfg: cfg, entries: map[string]*catalogEntry{}}
	c.Declare(cfg.Plugins...)
	return c
}

// Declare starts describing refs not declared yet (a loader that learns the
// `plugins:` while decoding calls it before asking for descriptions).
func (c *Catalog) Declare(refs ...*runbook.PluginRef) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for _, ref := range refs {
		if ref == nil || ref.Name == CorePlugin {
			continue
		}
		if _, ok := c.entries[ref.Name]; ok {
			continue
		}
		e := &catalogEntry{done: make(chan struct{})}
		c.entries[ref.Name] = e
		go func() {
			defer close(e.done)
			e.desc, e.sum, e.err = c.describe(ref)
		}()
	}
}

func (c *Catalog) describe(ref *runbook.PluginRef) (*spec.Description, string, error) {
	r, err := Resolve(c.cfg.Dir, ref)
	if err != nil {
		return nil, "", err
	}
	switch {
	case c.cfg.Locked:
		if err := CheckPinned(c.cfg.Lock, c.cfg.Dir, r, c.cfg.LockCommand); err != nil {
			return nil, "", err
		}
	case c.cfg.Lock != nil:
		if err := c.cfg.Lock.Check(r); err != nil {
			return nil, "", err
		}
	}
	d, err := describeCached(c.ctx, r, c.cfg.Env)
	if err != nil {
		return nil, "", err
	}
	return d, r.SHA256, nil
}

// Checksums waits for every declared plugin to be described and returns
// the sha256 of each executable described successfully, by plugin name:
// the binaries validation checked the runbook against. Pass them to Start
// (Config.Validated) so that, without a lock file, a binary replaced
// between validation and start is refused instead of run.
func (c *Catalog) Checksums() map[string]string {
	c.mu.Lock()
	entries := make(map[string]*catalogEntry, len(c.entries))
	for name, e := range c.entries {
		entries[name] = e
	}
	c.mu.Unlock()
	out := make(map[string]string, len(entries))
	for name, e := range entries {
		select {
		case <-e.done:
		case <-c.ctx.Done():
			continue
		}
		if e.err == nil && e.sum != "" {
			out[name] = e.sum
		}
	}
	return out
}

// Plugin returns the description of a declared plugin, or why it could not
// be described (not found, not pinned, checksum mismatch, bad output,
// another protocol version).
func (c *Catalog) Plugin(name string) (*spec.Description, error) {
	if name == CorePlugin {
		return nil, fmt.Errorf("%s is built in, not a plugin", CorePlugin)
	}
	c.mu.Lock()
	e, ok := c.entries[name]
	c.mu.Unlock()
	if !ok {
		return nil, fmt.Errorf("plugin %s is not declared under `plugins:`", name)
	}
	select {
	case <-e.done:
	case <-c.ctx.Done():
		return nil, fmt.Errorf("plugin %s: %w", name, c.ctx.Err())
	}
	return e.desc, e.err
}

// limitedBuffer keeps up to max bytes and notes an overflow.
type limitedBuffer struct {
	bytes.Buffer
	max      int
	overflow bool
}

func (b *limitedBuffer) Write(p []byte) (int, error) {
	n := len(p)
	if b.Len()+len(p) > b.max {
		b.overflow = true
		p = p[:max(0, b.max-b.Len())]
	}
	b.Buffer.Write(p)
	return n, nil
}

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	mu  sync.Mutex
	buf []byte
	max int
}

func (b *tailBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	b.buf = append(b.buf, p...)
	if len(b.buf) > b.max {
		b.buf = append(b.buf[:0], b.buf[len(b.buf)-b.max:]...)
	}
	return len(p), nil
}

func (b *tailBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return string(b.buf)
}
