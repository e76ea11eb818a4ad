package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/runbook"
)

func TestLockWriteReadRoundTrip(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	p := copyBinary(t, bin.plugin, filepath.Join(dir, "bin"), "runbook-plugin-test")
	sum, err := fileSHA256(p)
	if err != nil {
		t.Fatal(err)
	}

	lf, err := Lock(context.Background(), dir, []*runbook.PluginRef{
		ref("test", ""), ref("core", ""), ref("second", "bin/runbook-plugin-test"),
	})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]LockEntry{
		"test":   {Command: "runbook-plugin-test", Path: "./bin/runbook-plugin-test", Version: "0.1.0", ProtocolVersion: 1, SHA256: sum},
		"second": {Command: "bin/runbook-plugin-test", Path: "./bin/runbook-plugin-test", Version: "0.1.0", ProtocolVersion: 1, SHA256: sum},
	}
	if d := cmp.Diff(want, lf.Plugins); d != "" {
		t.Fatalf("lock entries (-want +got):\n%s", d)
	}
	if err := WriteLock(dir, lf); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, LockFileName))
	if err != nil {
		t.Fatal(err)
	}
	wantText := `{
  "version": 1,
  "plugins": {
    "second": {
      "command": "bin/runbook-plugin-test",
      "path": "./bin/runbook-plugin-test",
      "version": "0.1.0",
      "protocol_version": 1,
      "sha256": "` + sum + `"
    },
    "test": {
      "command": "runbook-plugin-test",
      "path": "./bin/runbook-plugin-test",
      "version": "0.1.0",
      "protocol_version": 1,
      "sha256": "` + sum + `"
    }
  }
}
`
	if d := cmp.Diff(wantText, string(b)); d != "" {
		t.Errorf("lock file text (-want +got):\n%s", d)
	}
	entries, _ := os.ReadDir(dir)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), ".runbook.lock") {
			t.Errorf("temporary file left behind: %s", e.Name())
		}
	}

	got, err := ReadLock(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.Path != filepath.Join(dir, LockFileName) {
		t.Errorf("path = %q", got.Path)
	}
	if d := cmp.Diff(want, got.Plugins); d != "" {
		t.Errorf("read entries (-want +got):\n%s", d)
	}
}

func TestReadLockMissingIsNotAnError(t *testing.T) {
	t.Parallel()
	lf, err := ReadLock(t.TempDir())
	if lf != nil || err != nil {
		t.Fatalf("got %v, %v; want nil, nil", lf, err)
	}
}

func TestReadLockRejectsBadFiles(t *testing.T) {
	t.Parallel()
	// Each error names the file with the line and column of the problem.
	tests := map[string]struct{ text, wantErr string }{
		"not json":        {"plugins: {}", "runbook.lock:1:1: not a valid lock file"},
		"unknown field":   {`{"version":1,"plugins":{},"extra":1}`, `runbook.lock:1:27: unknown key "extra"`},
		"future format":   {`{"version":2,"plugins":{}}`, "runbook.lock:1:12: lock file format version 2 is not supported"},
		"short checksum":  {`{"version":1,"plugins":{"aws":{"sha256":"abc"}}}`, "runbook.lock:1:41: plugin aws: sha256 \"abc\" is not 64 hex digits"},
		"non-hex":         {"{\"version\":1,\n \"plugins\":{\"aws\":{\"sha256\":\"" + strings.Repeat("z", 64) + "\"}}}", "runbook.lock:2:29: plugin aws: sha256"},
		"missing version": {`{"plugins":{}}`, "runbook.lock:1:1: the lock file has no version"},
		"wrong type":      {`{"version":1,"plugins":{"aws":{"sha256":1}}}`, "runbook.lock:1:41: plugin aws: sha256 must be a string, not the number 1"},
		"repeated key":    {`{"version":1,"version":1,"plugins":{}}`, `runbook.lock:1:14: "version" is given twice`},
		"trailing":        {`{"version":1,"plugins":{}} {}`, "runbook.lock:1:28: unexpected an object after"},
		"truncated":       {`{"version":1,"plugins":{"aws":`, "ends too early"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			if err := os.WriteFile(filepath.Join(dir, LockFileName), []byte(tc.text), 0o644); err != nil {
				t.Fatal(err)
			}
			_, err := ReadLock(dir)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) || !strings.Contains(err.Error(), LockFileName) {
				t.Fatalf("error = %v, want it to name the file and contain %q", err, tc.wantErr)
			}
		})
	}
}

func TestLockReportsEveryFailure(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyBinary(t, bin.v2, filepath.Join(dir, "bin"), "runbook-plugin-new")
	_, err := Lock(context.Background(), dir, []*runbook.PluginRef{ref("missing", ""), ref("new", "")})
	if err == nil {
		t.Fatal("Lock succeeded")
	}
	var nf *NotFoundError
	var pv *ProtocolVersionError
	if !errors.As(err, &nf) || !errors.As(err, &pv) {
		t.Fatalf("want both a NotFoundError and a ProtocolVersionError, got: %v", err)
	}
}

func TestLockMerge(t *testing.T) {
	t.Parallel()
	a := LockEntry{Command: "a", SHA256: strings.Repeat("a", 64)}
	b := LockEntry{Command: "b", SHA256: strings.Repeat("b", 64)}
	b2 := LockEntry{Command: "b2", SHA256: strings.Repeat("c", 64)}
	old := &LockFile{Version: 1, Plugins: map[string]LockEntry{"a": a, "b": b}, Path: "/x/runbook.lock"}
	got := old.Merge(&LockFile{Plugins: map[string]LockEntry{"b": b2}})
	if d := cmp.Diff(map[string]LockEntry{"a": a, "b": b2}, got.Plugins); d != "" {
		t.Errorf("merged (-want +got):\n%s", d)
	}
	if got.Path != old.Path || old.Plugins["b"] != b {
		t.Errorf("merge changed its receiver or lost the path: %+v", got)
	}
	var none *LockFile
	if got := none.Merge(old); len(got.Plugins) != 2 {
		t.Errorf("nil.Merge = %+v", got)
	}
}

func TestLockCheck(t *testing.T) {
	t.Parallel()
	sum := strings.Repeat("ab", 32)
	lf := &LockFile{Version: 1, Path: "/rb/runbook.lock", Plugins: map[string]LockEntry{"aws": {SHA256: strings.ToUpper(sum)}}}
	if err := lf.Check(&Resolved{Name: "aws", Path: "/bin/aws", SHA256: sum}); err != nil {
		t.Errorf("matching checksum (different case) refused: %v", err)
	}
	other := strings.Repeat("cd", 32)
	err := lf.Check(&Resolved{Name: "aws", Path: "/bin/aws", SHA256: other})
	var mm *ChecksumMismatchError
	if !errors.As(err, &mm) {
		t.Fatalf("want *ChecksumMismatchError, got %v", err)
	}
	for _, s := range []string{"plugin aws", "/bin/aws", sum, other, "/rb/runbook.lock", "runbook plugins lock"} {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("mismatch error lacks %q: %v", s, err)
		}
	}
	err = lf.Check(&Resolved{Name: "dns", Path: "/bin/dns", SHA256: sum})
	var nl *NotLockedError
	if !errors.As(err, &nl) || !strings.Contains(err.Error(), "runbook plugins lock") || !strings.Contains(err.Error(), "plugin dns") {
		t.Fatalf("want *NotLockedError naming the plugin and the fix, got %v", err)
	}
}
