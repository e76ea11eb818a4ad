package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/safefile"
)

// PluginPathEnv names the environment variable holding extra directories
// (colon-separated) searched first for plugin executables.
const PluginPathEnv = "RUNBOOK_PLUGIN_PATH"

// CommandPrefix is prepended to a plugin's name when `command` is empty:
// plugin `aws` is the executable `runbook-plugin-aws`.
const CommandPrefix = "runbook-plugin-"

// CorePlugin is the name of the built-in actions (core.approve, ...). It is
// not a plugin process; the host and the catalog skip it.
const CorePlugin = "core"

// Resolved is a plugin whose executable has been found.
type Resolved struct {
	// Name is the plugin's name in the runbook (`plugins: {aws: ...}`).
	Name string
	// Command is the command as written, or runbook-plugin-<name>.
	Command string
	// Path is the absolute path of the executable.
	Path string
	// SHA256 is the hex sha256 of the executable when it was resolved.
	SHA256 string
	// Env is extra environment (KEY=VALUE) for the plugin process, on top
	// of the host's own.
	Env []string
}

// NotFoundError says a plugin's executable could not be found, and where
// the host looked.
type NotFoundError struct {
	Plugin  string
	Command string
	// Searched lists every candidate path, in search order.
	Searched []string
	// Reason is set when a candidate exists but is unusable (a directory,
	// not executable).
	Reason string
}

func (e *NotFoundError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "plugin %s: executable %q not found", e.Plugin, e.Command)
	if e.Reason != "" {
		fmt.Fprintf(&b, " (%s)", e.Reason)
	}
	if strings.Contains(e.Command, "/") {
		fmt.Fprintf(&b, " at %s", strings.Join(e.Searched, ", "))
		return b.String()
	}
	b.WriteString("; looked in:")
	for _, p := range e.Searched {
		b.WriteString("\n  " + p)
	}
	fmt.Fprintf(&b, "\nbuild or install it into one of these directories, set `command:` to its path, or add its directory to $%s", PluginPathEnv)
	return b.String()
}

// searchEnv is what discovery reads from the process: split out so tests
// can run in parallel without touching the real environment.
type searchEnv struct {
	pluginPath string // $RUNBOOK_PLUGIN_PATH
	path       string // $PATH
	cwd        string
}

func processSearchEnv() searchEnv {
	cwd, _ := os.Getwd()
	return searchEnv{pluginPath: os.Getenv(PluginPathEnv), path: os.Getenv("PATH"), cwd: cwd}
}

// Resolve finds ref's executable and hashes it. dir is the runbook's
// directory ("" for the current directory).
//
// A command containing a slash is a path, relative to dir unless absolute.
// A bare name (or runbook-plugin-<name> when command is empty) is looked up
// in $RUNBOOK_PLUGIN_PATH, then ./bin relative to the runbook's directory,
// then ./bin relative to the current directory, then $PATH.
func Resolve(dir string, ref *runbook.PluginRef) (*Resolved, error) {
	return processSearchEnv().resolve(dir, ref)
}

func (se searchEnv) resolve(dir string, ref *runbook.PluginRef) (*Resolved, error) {
	if ref == nil || ref.Name == "" {
		return nil, errors.New("plugin reference without a name")
	}
	if err := checkEnv(ref.Name, ref.Env); err != nil {
		return nil, err
	}
	command := ref.Command
	if command == "" {
		command = CommandPrefix + ref.Name
	}
	if dir == "" {
		dir = se.cwd
	} else if !filepath.IsAbs(dir) {
		dir = filepath.Join(se.cwd, dir)
	}
	nf := &NotFoundError{Plugin: ref.Name, Command: command}
	var found string
	if strings.Contains(command, "/") {
		p := command
		if !filepath.IsAbs(p) {
			p = filepath.Join(dir, p)
		}
		nf.Searched = []string{filepath.Clean(p)}
		if reason := checkExecutable(p); reason != "" {
			if reason != "does not exist" {
				nf.Reason = reason
			}
			return nil, nf
		}
		found = filepath.Clean(p)
	} else {
		for _, d := range se.searchDirs(dir) {
			p := filepath.Join(d, command)
			nf.Searched = append(nf.Searched, p)
			reason := checkExecutable(p)
			if reason == "" {
				found = p
				break
			}
			if reason != "does not exist" && nf.Reason == "" {
				nf.Reason = p + " " + reason
			}
		}
		if found == "" {
			return nil, nf
		}
	}
	sum, err := fileSHA256(found)
	if err != nil {
		return nil, fmt.Errorf("plugin %s: hashing %s: %w", ref.Name, found, err)
	}
	return &Resolved{Name: ref.Name, Command: command, Path: found, SHA256: sum, Env: envList(ref.Env)}, nil
}

// searchDirs lists the directories a bare command is looked up in, in
// order, without duplicates. Relative entries of $RUNBOOK_PLUGIN_PATH are
// relative to the current directory; empty and relative entries of $PATH
// are skipped (as os/exec does since Go 1.19, so a plugin is never run from
// "." by accident).
func (se searchEnv) searchDirs(runbookDir string) []string {
	var dirs []string
	seen := map[string]bool{}
	add := func(d string) {
		d = filepath.Clean(d)
		if !seen[d] {
			seen[d] = true
			dirs = append(dirs, d)
		}
	}
	for _, d := range filepath.SplitList(se.pluginPath) {
		if d == "" {
			continue
		}
		if !filepath.IsAbs(d) {
			d = filepath.Join(se.cwd, d)
		}
		add(d)
	}
	add(filepath.Join(runbookDir, "bin"))
	if se.cwd != "" {
		add(filepath.Join(se.cwd, "bin"))
	}
	for _, d := range filepath.SplitList(se.path) {
		if d == "" || !filepath.IsAbs(d) {
			continue
		}
		add(d)
	}
	return dirs
}

// checkExecutable returns "" if p is a regular executable file, or why not.
func checkExecutable(p string) string {
	fi, err := os.Stat(p)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return "does not exist"
	case err != nil:
		return err.Error()
	case fi.IsDir():
		return "is a directory"
	case !fi.Mode().IsRegular():
		return "is not a regular file"
	case fi.Mode().Perm()&0o111 == 0:
		return "is not executable"
	}
	return ""
}

// fileSHA256 is the hex sha256 of the file at p. A run hashes each plugin
// for validation, at start and before any restart; hashing a 40 MB binary
// costs tens of milliseconds each time, so a digest is remembered with the
// identity of the file it was computed from (device, inode, size,
// modification and change times) and reused while that identity holds. The
// change time (ctime) cannot be set back by the file's owner, and any write
// or rename updates it; a digest is remembered only if the file did not
// change while it was hashed and its ctime is at least racyWindow old (as
// git does for racily clean index entries), so a write in the same clock
// tick as the hash, on a file system with coarse timestamps, is not missed.
// Remembered digests are also kept on disk for the next runs (diskcache.go).
func fileSHA256(p string) (string, error) {
	f, err := safefile.Open(p, os.O_RDONLY)
	if err != nil {
		return "", err
	}
	defer f.Close()
	before, err := f.Stat()
	if err != nil {
		return "", err
	}
	id, ok := identityOf(p, before)
	if ok {
		if sum, hit := digestCache.Load(id); hit {
			return sum.(string), nil
		}
		if sum, hit := loadDigest(id); hit {
			digestCache.Store(id, sum)
			return sum, nil
		}
	}
	if before.Size() > MaxExecutableBytes {
		return "", &safefile.TooLargeError{Path: p, Limit: MaxExecutableBytes}
	}
	h := sha256.New()
	if _, err := io.Copy(h, io.LimitReader(f, MaxExecutableBytes+1)); err != nil {
		return "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if after, err := os.Stat(p); ok && err == nil {
		if id2, ok2 := identityOf(p, after); ok2 && id2 == id && time.Since(id.ctime()) > racyWindow {
			digestCache.Store(id, sum)
			storeDigest(id, sum)
		}
	}
	return sum, nil
}

// MaxExecutableBytes caps the size of a plugin executable that is hashed
// (the shipped plugins are tens of megabytes).
const MaxExecutableBytes = 1 << 30

// racyWindow: a file changed more recently than this is hashed every time.
var racyWindow = 2 * time.Second

// digestCache maps a fileIdentity to the hex digest of that file.
var digestCache sync.Map

func envList(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k, v := range m {
		out = append(out, k+"="+v)
	}
	sort.Strings(out)
	return out
}
