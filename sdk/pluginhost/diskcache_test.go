package pluginhost

import (
	"context"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// useDiskCache points the on-disk cache at dir (or "off") for one test, and
// forgets what this process remembered, as a new run would start.
func useDiskCache(t *testing.T, dir string) {
	t.Helper()
	t.Setenv(DiskCacheEnv, dir)
	forget := func() {
		diskCacheOnce = sync.Once{}
		diskCacheRoot = ""
		digestCache.Clear()
		describeCache.Clear()
	}
	forget()
	t.Cleanup(forget)
}

// newProcess forgets the in-process caches, as the next `runbook run` would.
func newProcess() {
	digestCache.Clear()
	describeCache.Clear()
}

func oldFile(t *testing.T, p string, content []byte, mode os.FileMode) {
	t.Helper()
	if err := os.WriteFile(p, content, mode); err != nil {
		t.Fatal(err)
	}
}

// A digest computed by one run is served to the next from disk, and never
// for a file that changed since (rewritten in place with its modification
// time put back, or replaced by a rename).
func TestDiskDigestCache(t *testing.T) {
	old := racyWindow
	racyWindow = -time.Hour
	t.Cleanup(func() { racyWindow = old })
	cache := t.TempDir()
	useDiskCache(t, cache)
	dir := t.TempDir()
	p := filepath.Join(dir, "runbook-plugin-x")
	a, b := []byte("binary A"), []byte("binary B")
	oldFile(t, p, a, 0o755)
	fi, _ := os.Stat(p)
	check := func(want []byte, what string) {
		t.Helper()
		newProcess()
		got, err := fileSHA256(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != sumOf(want) {
			t.Fatalf("%s: digest %s, want that of %q", what, got, want)
		}
	}
	check(a, "first hash")
	entries, _ := os.ReadDir(filepath.Join(cache, "digests"))
	if len(entries) != 1 {
		t.Fatalf("%d digest entries on disk, want 1", len(entries))
	}
	// The entry is what the next run uses: plant a wrong digest in it and
	// the next run returns it (this is how we know it was read at all).
	entry := filepath.Join(cache, "digests", entries[0].Name())
	oldFile(t, entry, []byte(sumOf(b)+"\n"), 0o600)
	check(b, "read from disk")
	oldFile(t, entry, []byte(sumOf(a)+"\n"), 0o600)
	check(a, "read from disk again")

	oldFile(t, p, b, 0o755)
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	check(b, "rewritten in place")
	tmp := filepath.Join(dir, "new")
	oldFile(t, tmp, a, 0o755)
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	check(a, "replaced by rename")

	// A corrupt entry is recomputed, not trusted.
	entries, _ = os.ReadDir(filepath.Join(cache, "digests"))
	for _, e := range entries {
		oldFile(t, filepath.Join(cache, "digests", e.Name()), []byte("not a digest"), 0o600)
	}
	check(a, "corrupt entry")
}

// The cache is not used where someone else could write it, nor when off.
func TestDiskCacheRefusedUnlessPrivate(t *testing.T) {
	shared := t.TempDir()
	if err := os.Chmod(shared, 0o777); err != nil {
		t.Fatal(err)
	}
	useDiskCache(t, shared)
	if d := diskCacheDir(); d != "" {
		t.Fatalf("a world-writable cache directory was used: %s", d)
	}
	useDiskCache(t, "off")
	if d := diskCacheDir(); d != "" {
		t.Fatalf("RUNBOOK_CACHE_DIR=off still used %s", d)
	}
	private := t.TempDir()
	useDiskCache(t, private)
	if d := diskCacheDir(); d != private {
		t.Fatalf("cache dir %q, want %s", d, private)
	}
	if err := os.Chmod(filepath.Join(private, "describe"), 0o770); err != nil {
		t.Fatal(err)
	}
	useDiskCache(t, private)
	if d := diskCacheDir(); d != "" {
		t.Fatalf("a group-writable describe directory was used: %s", d)
	}
}

// describeScript is a plugin whose `describe` appends to a counter file, so
// the test sees how many times it really ran.
func describeScript(counter string) string {
	return `#!/bin/sh
echo x >> ` + counter + `
printf '{"name":"x","protocol_version":%d,"actions":[]}\n' ` + itoa(plugin.ProtocolVersion) + `
`
}

func itoa(n int) string { return strconv.Itoa(n) }

func runs(t *testing.T, counter string) int {
	t.Helper()
	b, err := os.ReadFile(counter)
	if os.IsNotExist(err) {
		return 0
	}
	if err != nil {
		t.Fatal(err)
	}
	return strings.Count(string(b), "x")
}

// A description printed by one run is reused by the next, keyed by the
// executable's digest and the plugin's environment; a script is described
// every time (its digest does not cover what it loads).
func TestDiskDescribeCache(t *testing.T) {
	old := racyWindow
	racyWindow = -time.Hour
	t.Cleanup(func() { racyWindow = old })
	useDiskCache(t, t.TempDir())
	dir := t.TempDir()
	counter := filepath.Join(dir, "count")
	script := filepath.Join(dir, "runbook-plugin-x")
	oldFile(t, script, []byte(describeScript(counter)), 0o755)
	ctx := context.Background()
	describeVia := func(path string, env map[string]string) {
		t.Helper()
		newProcess()
		r, err := Resolve(dir, &runbook.PluginRef{Name: "x", Command: path, Env: env})
		if err != nil {
			t.Fatal(err)
		}
		d, err := describeCached(ctx, r, nil)
		if err != nil {
			t.Fatal(err)
		}
		if d.Name != "x" {
			t.Fatalf("description %+v", d)
		}
	}
	describeVia(script, nil)
	describeVia(script, nil)
	if n := runs(t, counter); n != 2 {
		t.Fatalf("a script was described %d times in two runs, want 2 (never from the cache)", n)
	}

	// As if it were a compiled plugin: described once, then from the
	// cache, in every later run.
	scriptCheck = func(string) bool { return false }
	t.Cleanup(func() { scriptCheck = isScript })
	before := runs(t, counter)
	for i := 0; i < 3; i++ {
		describeVia(script, nil)
	}
	if n := runs(t, counter) - before; n != 1 {
		t.Fatalf("described %d times in three runs, want 1 (then from the cache)", n)
	}
	// Another environment is another entry.
	describeVia(script, map[string]string{"REGION": "x"})
	if n := runs(t, counter) - before; n != 2 {
		t.Fatalf("a different environment reused the cached description (%d describes)", n-1)
	}
	// So is another value of any variable of the host's environment.
	t.Setenv("DESCRIBE_TEST_VAR", "1")
	describeVia(script, nil)
	describeVia(script, nil)
	if n := runs(t, counter) - before; n != 3 {
		t.Fatalf("a different host environment reused the cached description (%d describes)", n-1)
	}
	before++
	// A changed executable is another digest, hence another entry.
	oldFile(t, script, []byte(describeScript(counter)+"# v2\n"), 0o755)
	describeVia(script, nil)
	if n := runs(t, counter) - before; n != 3 {
		t.Fatalf("a changed executable reused the cached description (%d describes)", n-1)
	}
	// A cached description is checked as fresh output is: one of another
	// protocol version is not served.
	entries, _ := os.ReadDir(filepath.Join(diskCacheDir(), "describe"))
	for _, e := range entries {
		oldFile(t, filepath.Join(diskCacheDir(), "describe", e.Name()), []byte(`{"name":"x","protocol_version":999,"actions":[]}`), 0o600)
	}
	describeVia(script, nil)
	if n := runs(t, counter) - before; n != 4 {
		t.Fatalf("a cached description of another protocol version was served (%d describes)", n-1)
	}
}

func TestIsScript(t *testing.T) {
	dir := t.TempDir()
	sh := filepath.Join(dir, "s")
	oldFile(t, sh, []byte("#!/bin/sh\n"), 0o755)
	self, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	if !isScript(sh) || isScript(self) {
		t.Fatalf("isScript(script) = %v, isScript(test binary) = %v", isScript(sh), isScript(self))
	}
}

// The cache keeps at most maxEntries of each kind, dropping the oldest.
func TestDiskCachePruned(t *testing.T) {
	useDiskCache(t, t.TempDir())
	old := maxEntries["describe"]
	maxEntries["describe"] = 3
	t.Cleanup(func() { maxEntries["describe"] = old })
	for i := range 5 {
		diskCachePut("describe", strconv.Itoa(i), []byte("x"))
		time.Sleep(10 * time.Millisecond) // distinct modification times
	}
	for i := range 5 {
		_, ok := diskCacheGet("describe", strconv.Itoa(i))
		if ok != (i >= 2) {
			t.Errorf("entry %d kept = %v", i, ok)
		}
	}
}
