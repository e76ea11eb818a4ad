package pluginhost

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/runbook"
)

func resolved(t *testing.T, name, path string, env ...string) *Resolved {
	t.Helper()
	sum, err := fileSHA256(path)
	if err != nil {
		t.Fatal(err)
	}
	return &Resolved{Name: name, Command: path, Path: path, SHA256: sum, Env: env}
}

func TestDescribe(t *testing.T) {
	t.Parallel()
	d, err := Describe(context.Background(), resolved(t, "test", bin.plugin))
	if err != nil {
		t.Fatal(err)
	}
	if d.Name != "testplugin" || d.Version != "0.1.0" || d.ProtocolVersion != plugin.ProtocolVersion {
		t.Errorf("description = %s %s v%d", d.Name, d.Version, d.ProtocolVersion)
	}
	a, ok := d.Action("record")
	if !ok || a.Idempotent || !a.SupportsPlan || a.Params == nil || len(a.Params.Required) != 2 {
		t.Errorf("record action = %+v", a)
	}
	if a, ok := d.Action("noop"); !ok || !a.Idempotent || !a.ReadOnly {
		t.Errorf("noop action = %+v", a)
	}
}

func TestDescribeRefusals(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	tests := map[string]struct {
		r       *Resolved
		wantErr []string
	}{
		"another protocol version": {
			r:       resolved(t, "new", bin.v2),
			wantErr: []string{"plugin new", bin.v2, "protocol v2", "speaks v1"},
		},
		"garbage on stdout": {
			r:       resolved(t, "chatty", bin.plugin, "RUNBOOK_TESTPLUGIN_STARTUP=garbage"),
			wantErr: []string{"plugin chatty", "did not print a plugin description", "nothing else to stdout", `"debug: testplugin starting up`},
		},
		"output after the description": {
			r:       resolved(t, "trailing", writeScript(t, dir, "trailing", `echo '{"name":"t","protocol_version":1}'; echo done`+"\n")),
			wantErr: []string{"unexpected output after the description"},
		},
		"not a plugin": {
			r:       resolved(t, "true", writeScript(t, dir, "silent", "exit 0\n")),
			wantErr: []string{"printed nothing", "not a runbook plugin"},
		},
		"no protocol version": {
			r:       resolved(t, "old", writeScript(t, dir, "old", `echo '{"name":"old"}'`+"\n")),
			wantErr: []string{"did not report a protocol version"},
		},
		"failing": {
			r:       resolved(t, "broken", writeScript(t, dir, "broken", "echo 'cannot load config' >&2; exit 3\n")),
			wantErr: []string{"plugin broken", "failed (exit status 3)", "cannot load config"},
		},
		"unknown subcommand (a non-plugin program)": {
			r:       resolved(t, "ls", writeScript(t, dir, "strict", `echo "unknown argument $1" >&2; exit 2`+"\n")),
			wantErr: []string{"exit status 2", "unknown argument describe"},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			_, err := Describe(context.Background(), tc.r)
			if err == nil {
				t.Fatal("Describe succeeded")
			}
			for _, s := range tc.wantErr {
				if !strings.Contains(err.Error(), s) {
					t.Errorf("error lacks %q:\n%v", s, err)
				}
			}
		})
	}
	_, err := Describe(context.Background(), resolved(t, "new", bin.v2))
	var pv *ProtocolVersionError
	if !errors.As(err, &pv) || pv.Got != 2 || pv.Want != 1 {
		t.Errorf("want a *ProtocolVersionError 2 vs 1, got %v", err)
	}
}

func TestDescribeTimeoutKillsThePluginAndItsChildren(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	pidFile := filepath.Join(dir, "child.pid")
	// The script starts a child that holds stdout, records its pid, and hangs.
	script := writeScript(t, dir, "hang", "sleep 300 &\necho $! > "+pidFile+"\nsleep 300\n")
	ctx, cancel := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel()
	_, err := Describe(ctx, resolved(t, "slow", script))
	if err == nil || !strings.Contains(err.Error(), "did not finish within") {
		t.Fatalf("error = %v", err)
	}
	b, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	if processAlive(pid) {
		t.Errorf("describe's child %d outlived it", pid)
	}
}

func TestCatalogDescribesDeclaredPluginsOnceEach(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	count := filepath.Join(dir, "count")
	// A plugin that counts how often `describe` runs; it cannot speak gRPC,
	// so the catalog working at all shows that it opens no session.
	writeScript(t, filepath.Join(dir, "bin"), "runbook-plugin-counted",
		"echo x >> "+count+"\necho '{\"name\":\"counted\",\"version\":\"1.0.0\",\"protocol_version\":1,\"actions\":[{\"name\":\"a\"}]}'\n")
	copyBinary(t, bin.plugin, filepath.Join(dir, "bin"), "runbook-plugin-test")
	refs := []*runbook.PluginRef{ref("counted", ""), ref("test", ""), ref("core", "")}

	for range 2 {
		c := NewCatalog(context.Background(), CatalogConfig{Dir: dir, Plugins: refs})
		d, err := c.Plugin("counted")
		if err != nil {
			t.Fatal(err)
		}
		if _, ok := d.Action("a"); !ok || d.Version != "1.0.0" {
			t.Errorf("description = %+v", d)
		}
		if d, err := c.Plugin("test"); err != nil || d.Name != "testplugin" {
			t.Errorf("test plugin: %v, %v", d, err)
		}
		if _, err := c.Plugin("core"); err == nil || !strings.Contains(err.Error(), "built in") {
			t.Errorf("core: %v", err)
		}
		if _, err := c.Plugin("undeclared"); err == nil || !strings.Contains(err.Error(), "not declared") {
			t.Errorf("undeclared: %v", err)
		}
	}
	b, _ := os.ReadFile(count)
	if n := strings.Count(string(b), "x"); n != 1 {
		t.Errorf("describe ran %d times for one binary, want 1 (cached by checksum)", n)
	}
}

func TestCatalogEnforcesTheLock(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	copyBinary(t, bin.plugin, filepath.Join(dir, "bin"), "runbook-plugin-test")
	copyBinary(t, bin.plugin, filepath.Join(dir, "bin"), "runbook-plugin-unpinned")
	lock := &LockFile{Version: 1, Path: filepath.Join(dir, LockFileName), Plugins: map[string]LockEntry{
		"test": {SHA256: strings.Repeat("0", 64)},
	}}
	c := NewCatalog(context.Background(), CatalogConfig{Dir: dir, Lock: lock})
	c.Declare(ref("test", ""), ref("unpinned", ""), ref("missing", ""))
	var mm *ChecksumMismatchError
	if _, err := c.Plugin("test"); !errors.As(err, &mm) {
		t.Errorf("test: want a checksum mismatch, got %v", err)
	}
	var nl *NotLockedError
	if _, err := c.Plugin("unpinned"); !errors.As(err, &nl) {
		t.Errorf("unpinned: want not locked, got %v", err)
	}
	var nf *NotFoundError
	if _, err := c.Plugin("missing"); !errors.As(err, &nf) {
		t.Errorf("missing: want not found, got %v", err)
	}
}
