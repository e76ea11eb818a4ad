package pluginhost

import (
	"cmp"
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"sync"

	"github.com/runbookhq/runbook/sdk/safefile"
)

// The on-disk cache keeps, between runs, what the in-process caches keep
// within one: the digest of a plugin executable by the identity of the file
// it was computed from (see fileSHA256), and the output of `<plugin>
// describe` by the executable's digest and environment. Each `runbook run`
// otherwise hashes every plugin (~180 MB for the five shipped plugins) and
// starts every plugin twice (describe, then serve).
//
// It lives in $RUNBOOK_CACHE_DIR, else <user cache dir>/runbook
// (~/.cache/runbook on Linux); RUNBOOK_CACHE_DIR=off disables it. Entries
// are one file each, written to a temporary name and renamed, so concurrent
// runs never read a partial entry. The directory is used only if it is
// owned by this user and writable by no one else: whoever can write it
// could make a tampered plugin pass its pin, which only its owner can
// already do (they can edit runbook.lock). An entry that cannot be read or
// written is simply recomputed; the cache never changes a result, only its
// cost.

// DiskCacheEnv names the environment variable that sets (or, with "off",
// disables) the on-disk cache directory.
const DiskCacheEnv = "RUNBOOK_CACHE_DIR"

var (
	diskCacheOnce sync.Once
	diskCacheRoot string // "" when disabled or unusable
)

func diskCacheDir() string {
	diskCacheOnce.Do(func() { diskCacheRoot = openDiskCache() })
	return diskCacheRoot
}

func openDiskCache() string {
	dir := os.Getenv(DiskCacheEnv)
	switch {
	case strings.EqualFold(dir, "off"):
		return ""
	case dir == "":
		base, err := os.UserCacheDir()
		if err != nil {
			return ""
		}
		dir = filepath.Join(base, "runbook")
	}
	for _, sub := range []string{"digests", "describe"} {
		if err := os.MkdirAll(filepath.Join(dir, sub), 0o700); err != nil {
			return ""
		}
	}
	for _, d := range []string{dir, filepath.Join(dir, "digests"), filepath.Join(dir, "describe")} {
		if !privateDir(d) {
			return ""
		}
	}
	return dir
}

// privateDir: a directory (not a symlink) owned by this user and writable
// by no one else.
func privateDir(d string) bool {
	fi, err := os.Lstat(d)
	if err != nil || !fi.IsDir() {
		return false
	}
	if runtime.GOOS == "windows" {
		return true
	}
	if fi.Mode().Perm()&0o022 != 0 {
		return false
	}
	return ownedByMe(fi)
}

// cacheName is the file name of the entry for key: its sha256, so that the
// key (which may hold a plugin's environment) is never written down.
func cacheName(key string) string {
	s := sha256.Sum256([]byte(key))
	return hex.EncodeToString(s[:])
}

func diskCacheGet(kind, key string) ([]byte, bool) {
	root := diskCacheDir()
	if root == "" {
		return nil, false
	}
	b, err := safefile.ReadFile(filepath.Join(root, kind, cacheName(key)), maxDescribeOutput)
	return b, err == nil
}

func diskCachePut(kind, key string, value []byte) {
	root := diskCacheDir()
	if root == "" {
		return
	}
	final := filepath.Join(root, kind, cacheName(key))
	f, err := os.CreateTemp(filepath.Join(root, kind), ".tmp-*")
	if err != nil {
		return
	}
	_, werr := f.Write(value)
	cerr := f.Close()
	if werr != nil || cerr != nil || os.Rename(f.Name(), final) != nil {
		_ = os.Remove(f.Name())
		return
	}
	pruneCache(root, kind)
}

// loadDigest returns the remembered digest of the file with identity id.
func loadDigest(id fileIdentity) (string, bool) {
	b, ok := diskCacheGet("digests", id.key())
	if !ok {
		return "", false
	}
	sum := strings.TrimSpace(string(b))
	if len(sum) != 64 {
		return "", false
	}
	if _, err := hex.DecodeString(sum); err != nil {
		return "", false
	}
	return sum, true
}

func storeDigest(id fileIdentity, sum string) { diskCachePut("digests", id.key(), []byte(sum+"\n")) }

// describeKey is the cache key of a describe: the executable's digest and
// the whole environment the plugin gets, in a canonical order.
func describeKey(sum string, env []string) string {
	env = slices.Clone(env)
	slices.Sort(env)
	return "v1\x00" + sum + "\x00" + strings.Join(env, "\x00")
}

// maxEntries bounds each part of the cache: past it, the least recently
// written entries are removed when a new one is written.
var maxEntries = map[string]int{"describe": 256, "digests": 1024}

func pruneCache(root, kind string) {
	dir := filepath.Join(root, kind)
	limit := maxEntries[kind]
	entries, err := os.ReadDir(dir)
	if err != nil || len(entries) <= limit {
		return
	}
	type aged struct {
		name string
		mod  int64
	}
	all := make([]aged, 0, len(entries))
	for _, e := range entries {
		if fi, err := e.Info(); err == nil {
			all = append(all, aged{e.Name(), fi.ModTime().UnixNano()})
		}
	}
	slices.SortFunc(all, func(a, b aged) int { return cmp.Compare(a.mod, b.mod) })
	for _, a := range all[:max(0, len(all)-limit)] {
		_ = os.Remove(filepath.Join(dir, a.name))
	}
}

// scriptCheck is isScript; tests replace it.
var scriptCheck = isScript

// isScript: the executable is an interpreted script ("#!"). What a script
// describes depends on files its digest does not cover (the modules it
// loads), so its description is never kept on disk; it is described on
// every run.
func isScript(path string) bool {
	f, err := safefile.Open(path, os.O_RDONLY)
	if err != nil {
		return true
	}
	defer f.Close()
	var b [2]byte
	n, _ := f.Read(b[:])
	return n < 2 || string(b[:]) == "#!"
}
