package pluginhost

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"

	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/safefile"
)

// LockFileName is the lock file's name, next to the runbook.
const LockFileName = "runbook.lock"

// LockFormat is the version of the lock file's format.
const LockFormat = 1

// LockFile pins the plugins of the runbooks in one directory: the host
// refuses to start a plugin whose executable's sha256 differs from its
// entry, or that has no entry.
type LockFile struct {
	Version int                  `json:"version"`
	Plugins map[string]LockEntry `json:"plugins"`
	// Path is where the lock file was read from or written to.
	Path string `json:"-"`
	// Command is the command that updates this lock file for the runbook
	// being run, as the user would type it, for messages
	// (DefaultLockCommand if empty).
	Command string `json:"-"`
}

// DefaultLockCommand is the command messages suggest to pin plugins when
// they were not told the exact one.
const DefaultLockCommand = "runbook plugins lock RUNBOOK.yaml"

func lockCommand(cmd string) string {
	if cmd == "" {
		return DefaultLockCommand
	}
	return cmd
}

// LockEntry is one pinned plugin.
type LockEntry struct {
	// Command is the command as written in the runbook (or the default
	// runbook-plugin-<name>).
	Command string `json:"command"`
	// Path is the executable that was pinned: relative to the lock file's
	// directory when it lies beneath it, else absolute. It is informational:
	// only the checksum is enforced, so the same binary may live elsewhere
	// on another machine.
	Path            string `json:"path"`
	Version         string `json:"version"`
	ProtocolVersion int    `json:"protocol_version"`
	SHA256          string `json:"sha256"`
}

// LockPath is the path of the lock file for runbooks in dir.
func LockPath(dir string) string { return filepath.Join(dir, LockFileName) }

// MaxLockFileBytes caps the size of runbook.lock (an entry is a few hundred
// bytes).
const MaxLockFileBytes = 1 << 20

// ReadLock reads dir's runbook.lock. A missing lock file is not an error:
// it returns nil, nil (plugins then run unpinned, with a warning). A lock
// file that is not a regular file or is larger than MaxLockFileBytes is
// refused; one that does not parse is refused with the position of the
// problem (see ParseLock).
func ReadLock(dir string) (*LockFile, error) {
	p := LockPath(dir)
	b, err := safefile.ReadFile(p, MaxLockFileBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	lf, err := ParseLock(b)
	if err != nil {
		var pe *LockParseError
		if errors.As(err, &pe) {
			pe.File = p
			return nil, pe
		}
		return nil, fmt.Errorf("%s: %w", p, err)
	}
	lf.Path = p
	return lf, nil
}

// Marshal encodes the lock file with stable formatting (sorted keys, two
// space indent, trailing newline), so it diffs well under version control.
func (l *LockFile) Marshal() ([]byte, error) {
	out := LockFile{Version: LockFormat, Plugins: l.Plugins}
	if out.Plugins == nil {
		out.Plugins = map[string]LockEntry{}
	}
	b, err := json.MarshalIndent(out, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// WriteLock writes lf as dir's runbook.lock, atomically (a reader sees the
// old file or the new one, never a torn one).
func WriteLock(dir string, lf *LockFile) error {
	b, err := lf.Marshal()
	if err != nil {
		return err
	}
	p := LockPath(dir)
	tmp, err := os.CreateTemp(dir, ".runbook.lock.*")
	if err != nil {
		return err
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(b); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Chmod(0o644); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Sync(); err != nil {
		tmp.Close()
		return err
	}
	if err := tmp.Close(); err != nil {
		return err
	}
	if err := os.Rename(tmp.Name(), p); err != nil {
		return err
	}
	lf.Path = p
	return nil
}

// Merge returns a lock file holding l's entries overridden by from's. Runbooks
// in one directory share a lock file, so locking one runbook's plugins must
// keep the entries of the others. l may be nil.
func (l *LockFile) Merge(from *LockFile) *LockFile {
	out := &LockFile{Version: LockFormat, Plugins: map[string]LockEntry{}}
	if l != nil {
		out.Path = l.Path
		for k, v := range l.Plugins {
			out.Plugins[k] = v
		}
	}
	if from != nil {
		for k, v := range from.Plugins {
			out.Plugins[k] = v
		}
	}
	return out
}

// Lock resolves and describes each plugin (running `<plugin> describe`,
// concurrently) and returns lock entries for them. dir is the runbook's
// directory. Every plugin that cannot be locked is reported, not just the
// first. Write the result with WriteLock, merged into the existing lock
// file (see Merge) if runbooks share the directory.
func Lock(ctx context.Context, dir string, refs []*runbook.PluginRef) (*LockFile, error) {
	absDir, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	lf := &LockFile{Version: LockFormat, Plugins: map[string]LockEntry{}, Path: LockPath(absDir)}
	var (
		mu   sync.Mutex
		errs []error
		wg   sync.WaitGroup
	)
	for _, ref := range refs {
		if ref == nil || ref.Name == CorePlugin {
			continue
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			entry, err := lockEntry(ctx, absDir, ref)
			mu.Lock()
			defer mu.Unlock()
			if err != nil {
				errs = append(errs, err)
				return
			}
			lf.Plugins[ref.Name] = entry
		}()
	}
	wg.Wait()
	if len(errs) > 0 {
		sort.Slice(errs, func(i, j int) bool { return errs[i].Error() < errs[j].Error() })
		return nil, errors.Join(errs...)
	}
	return lf, nil
}

func lockEntry(ctx context.Context, dir string, ref *runbook.PluginRef) (LockEntry, error) {
	r, err := Resolve(dir, ref)
	if err != nil {
		return LockEntry{}, err
	}
	d, err := Describe(ctx, r)
	if err != nil {
		return LockEntry{}, err
	}
	return LockEntry{
		Command: r.Command, Path: displayPath(dir, r.Path),
		Version: d.Version, ProtocolVersion: d.ProtocolVersion, SHA256: r.SHA256,
	}, nil
}

// displayPath is p relative to dir when p lies beneath dir, else p.
func displayPath(dir, p string) string {
	rel, err := filepath.Rel(dir, p)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return p
	}
	return "./" + rel
}

// ChecksumMismatchError refuses a plugin whose executable is not the one
// pinned (in runbook.lock, or when the run started).
type ChecksumMismatchError struct {
	Plugin string
	Path   string
	// Got is the executable's sha256; Want the pinned one.
	Got, Want string
	// LockPath is the lock file that pinned it; "" if it was pinned when the
	// runbook was validated or the run started (no lock file).
	LockPath string
	// Validated: pinned when the runbook was validated, and changed before
	// the plugin first started.
	Validated bool
	// Command updates the lock (DefaultLockCommand if empty).
	Command string
}

func (e *ChecksumMismatchError) Error() string {
	if e.LockPath == "" && e.Validated {
		return fmt.Sprintf("plugin %s: %s changed after the runbook was validated (sha256 %s, was %s when its actions were checked); refusing to run a binary other than the one validated. Run the command again; pin plugins with `%s` to refuse any binary but the pinned one",
			e.Plugin, e.Path, e.Got, e.Want, lockCommand(e.Command))
	}
	if e.LockPath == "" {
		return fmt.Sprintf("plugin %s: %s changed while the run was in progress (sha256 %s, was %s); refusing to run a different binary mid-run",
			e.Plugin, e.Path, e.Got, e.Want)
	}
	return fmt.Sprintf("plugin %s: %s has sha256 %s, but %s pins %s; if this binary is the one you mean to run, update the lock with `%s`",
		e.Plugin, e.Path, e.Got, e.LockPath, e.Want, lockCommand(e.Command))
}

// NotLockedError refuses a plugin that has no entry in an existing lock
// file, or, in locked mode, that no lock file pins.
type NotLockedError struct {
	Plugin   string
	Path     string
	LockPath string
	// NoLockFile: there is no lock file at LockPath (locked mode).
	NoLockFile bool
	// Command pins it (DefaultLockCommand if empty).
	Command string
}

func (e *NotLockedError) Error() string {
	if e.NoLockFile {
		return fmt.Sprintf("plugin %s (%s) is not pinned: there is no %s, and locked mode (--locked, $%s) runs only plugins it pins, so nothing was run, not even `%s describe`; review the plugins, then pin them with `%s`",
			e.Plugin, e.Path, e.LockPath, LockedEnv, e.Path, lockCommand(e.Command))
	}
	return fmt.Sprintf("plugin %s (%s) is not pinned in %s; run `%s` to pin it", e.Plugin, e.Path, e.LockPath, lockCommand(e.Command))
}

// LockedEnv, when set to a true value (1, true, yes), puts the command line
// in locked mode, like --locked: every plugin must be pinned by
// runbook.lock, or it is refused before it is run.
const LockedEnv = "RUNBOOK_LOCKED"

// CheckPinned is the check of locked mode: nil if lock pins r (its checksum
// matches), else why not. A nil lock means there is no lock file in dir.
// command is the command that pins the plugins, for the message.
func CheckPinned(lock *LockFile, dir string, r *Resolved, command string) error {
	if lock == nil {
		return &NotLockedError{Plugin: r.Name, Path: r.Path, LockPath: LockPath(dir), NoLockFile: true, Command: command}
	}
	return lock.Check(r)
}

// Check verifies a resolved plugin against the lock file: nil if its
// checksum matches its entry, else a *NotLockedError or a
// *ChecksumMismatchError.
func (l *LockFile) Check(r *Resolved) error {
	where := l.Path
	if where == "" {
		where = LockFileName
	}
	e, ok := l.Plugins[r.Name]
	if !ok {
		return &NotLockedError{Plugin: r.Name, Path: r.Path, LockPath: where, Command: l.Command}
	}
	if !strings.EqualFold(e.SHA256, r.SHA256) {
		return &ChecksumMismatchError{Plugin: r.Name, Path: r.Path, Got: r.SHA256, Want: strings.ToLower(e.SHA256), LockPath: where, Command: l.Command}
	}
	return nil
}
