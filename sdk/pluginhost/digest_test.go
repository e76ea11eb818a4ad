package pluginhost

import (
	"crypto/sha256"
	"encoding/hex"
	"os"
	"path/filepath"
	"testing"
	"time"
)

func sumOf(b []byte) string {
	s := sha256.Sum256(b)
	return hex.EncodeToString(s[:])
}

// A remembered digest is never served for a file that changed: rewritten
// in place with the same size and modification time, or replaced by a
// rename.
func TestDigestCacheSeesChanges(t *testing.T) {
	old := racyWindow
	racyWindow = -time.Hour // remember every digest at once
	t.Cleanup(func() { racyWindow = old })
	dir := t.TempDir()
	p := filepath.Join(dir, "runbook-plugin-x")
	a, b := []byte("binary A"), []byte("binary B")
	if err := os.WriteFile(p, a, 0o755); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	check := func(want []byte, what string) {
		t.Helper()
		got, err := fileSHA256(p)
		if err != nil {
			t.Fatal(err)
		}
		if got != sumOf(want) {
			t.Fatalf("%s: digest %s, want that of %q", what, got, want)
		}
	}
	check(a, "first hash")
	check(a, "remembered")

	// Same inode, same size, modification time put back: only the change
	// time tells.
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Chtimes(p, fi.ModTime(), fi.ModTime()); err != nil {
		t.Fatal(err)
	}
	check(b, "rewritten in place")

	// Replaced by a rename (a new inode).
	tmp := filepath.Join(dir, "new")
	if err := os.WriteFile(tmp, a, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(tmp, p); err != nil {
		t.Fatal(err)
	}
	check(a, "replaced by rename")
}

// A file changed within racyWindow is hashed every time.
func TestDigestCacheSkipsRacyFiles(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, err := fileSHA256(p); err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(p)
	id, ok := identityOf(p, fi)
	if !ok {
		t.Skip("no file identity on this platform")
	}
	if _, hit := digestCache.Load(id); hit {
		t.Fatal("the digest of a file changed a moment ago was remembered")
	}
}
