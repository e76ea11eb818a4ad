package pluginhost

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/runbook"
)

func TestResolveSearchOrder(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	rbDir := filepath.Join(root, "runbooks")
	cwd := filepath.Join(root, "cwd")
	extra := filepath.Join(root, "extra")
	sys := filepath.Join(root, "sys")
	for _, d := range []string{rbDir, cwd, extra, sys} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// The same name in every location: each case removes the earlier ones.
	exe := func(dir string) string { return writeScript(t, dir, "runbook-plugin-x", "exit 0\n") }
	inExtra, inRunbookBin, inCwdBin, inPath := exe(extra), exe(filepath.Join(rbDir, "bin")), exe(filepath.Join(cwd, "bin")), exe(sys)
	se := searchEnv{pluginPath: extra + ":relative-ignored-if-missing", path: "::.:" + sys, cwd: cwd}

	for _, want := range []string{inExtra, inRunbookBin, inCwdBin, inPath} {
		r, err := se.resolve(rbDir, ref("x", ""))
		if err != nil {
			t.Fatal(err)
		}
		if r.Path != want {
			t.Fatalf("resolved %s, want %s", r.Path, want)
		}
		if r.Command != "runbook-plugin-x" {
			t.Errorf("command = %q", r.Command)
		}
		sum, _ := fileSHA256(want)
		if r.SHA256 != sum || len(sum) != 64 {
			t.Errorf("sha256 = %q, want %q", r.SHA256, sum)
		}
		if err := os.Remove(want); err != nil {
			t.Fatal(err)
		}
	}

	_, err := se.resolve(rbDir, ref("x", ""))
	var nf *NotFoundError
	if !errors.As(err, &nf) {
		t.Fatalf("want *NotFoundError, got %v", err)
	}
	wantSearched := []string{
		filepath.Join(extra, "runbook-plugin-x"),
		filepath.Join(cwd, "relative-ignored-if-missing", "runbook-plugin-x"),
		filepath.Join(rbDir, "bin", "runbook-plugin-x"),
		filepath.Join(cwd, "bin", "runbook-plugin-x"),
		filepath.Join(sys, "runbook-plugin-x"),
	}
	if d := cmp.Diff(wantSearched, nf.Searched); d != "" {
		t.Errorf("searched (-want +got):\n%s", d)
	}
	msg := err.Error()
	for _, p := range wantSearched {
		if !strings.Contains(msg, p) {
			t.Errorf("error does not list %s:\n%s", p, msg)
		}
	}
	if !strings.Contains(msg, PluginPathEnv) {
		t.Errorf("error does not mention %s:\n%s", PluginPathEnv, msg)
	}
}

func TestResolvePaths(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	rbDir := filepath.Join(root, "rb")
	script := writeScript(t, filepath.Join(rbDir, "tools"), "hello", "exit 0\n")
	notExec := filepath.Join(rbDir, "tools", "notexec")
	if err := os.WriteFile(notExec, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	se := searchEnv{cwd: root}

	tests := map[string]struct {
		dir, command string
		want         string
		wantErr      string
	}{
		"relative to the runbook":     {dir: rbDir, command: "./tools/hello", want: script},
		"relative without dot":        {dir: rbDir, command: "tools/hello", want: script},
		"runbook dir relative to cwd": {dir: "rb", command: "tools/../tools/hello", want: script},
		"absolute":                    {dir: "/nonexistent", command: script, want: script},
		"missing":                     {dir: rbDir, command: "./tools/nope", wantErr: `executable "./tools/nope" not found at ` + filepath.Join(rbDir, "tools", "nope")},
		"not executable":              {dir: rbDir, command: "./tools/notexec", wantErr: "(is not executable)"},
		"directory":                   {dir: rbDir, command: "./tools", wantErr: "(is a directory)"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r, err := se.resolve(tc.dir, &runbook.PluginRef{Name: "h", Command: tc.command, Env: map[string]string{"B": "2", "A": "1"}})
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("error = %v, want it to contain %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if r.Path != tc.want || r.Command != tc.command || r.Name != "h" {
				t.Errorf("got %+v", r)
			}
			if d := cmp.Diff([]string{"A=1", "B=2"}, r.Env); d != "" {
				t.Errorf("env (-want +got):\n%s", d)
			}
		})
	}
}

func TestResolveSkipsUnusableCandidates(t *testing.T) {
	t.Parallel()
	root := t.TempDir()
	a, b := filepath.Join(root, "a"), filepath.Join(root, "b")
	if err := os.MkdirAll(filepath.Join(a, "runbook-plugin-x"), 0o755); err != nil { // a directory
		t.Fatal(err)
	}
	want := writeScript(t, b, "runbook-plugin-x", "exit 0\n")
	r, err := searchEnv{pluginPath: a + ":" + b, cwd: root}.resolve(root, ref("x", ""))
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != want {
		t.Errorf("resolved %s, want %s", r.Path, want)
	}
}

func TestResolveUsesProcessEnvironment(t *testing.T) {
	dir := t.TempDir()
	want := writeScript(t, dir, "runbook-plugin-envtest", "exit 0\n")
	t.Setenv(PluginPathEnv, dir)
	r, err := Resolve(t.TempDir(), ref("envtest", ""))
	if err != nil {
		t.Fatal(err)
	}
	if r.Path != want {
		t.Errorf("resolved %s, want %s", r.Path, want)
	}
}
