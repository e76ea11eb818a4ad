package scaffold_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"go/format"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/scaffold"
	"github.com/runbookhq/runbook/sdk/plugin"
)

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs(filepath.Join("..", ".."))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("repository root not found at %s: %v", root, err)
	}
	return root
}

// goCmd runs the go command in dir without the network: modules come from
// the local module cache, checksums from the seeded go.sum. Only `go mod`
// may change go.mod; builds and tests must work with it as it is.
func goCmd(t *testing.T, dir string, args ...string) string {
	t.Helper()
	gobin, err := exec.LookPath("go")
	if err != nil {
		t.Fatalf("the go command is needed to build the scaffolded module: %v", err)
	}
	cmd := exec.Command(gobin, args...)
	cmd.Dir = dir
	mod := "-mod=readonly"
	if args[0] == "mod" {
		mod = "-mod=mod"
	}
	cmd.Env = append(os.Environ(), "GOFLAGS="+mod, "GOPROXY=off", "GOWORK=off", "GOTOOLCHAIN=local")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("go %s (in %s): %v\n%s", strings.Join(args, " "), dir, err, out)
	}
	return string(out)
}

func TestScaffoldedPluginBuildsAndPassesItsTests(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "runbook-plugin-motd")
	err := scaffold.Plugin(dir, "motd", scaffold.Options{
		Module:      "example.com/acme/runbook-plugin-motd",
		ReplacePath: repoRoot(t),
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{"main.go", "main_test.go"} {
		src, err := os.ReadFile(filepath.Join(dir, f))
		if err != nil {
			t.Fatal(err)
		}
		formatted, err := format.Source(src)
		if err != nil {
			t.Fatalf("%s does not parse: %v", f, err)
		}
		if !bytes.Equal(formatted, src) {
			t.Errorf("%s is not gofmt-formatted", f)
		}
	}

	// Offline, tidy cannot fetch the test-only dependencies of dependencies
	// (testify, ...), which it wants only for go.sum completeness; -e lets
	// it finish. What the module itself needs must then build and test
	// with go.mod as tidy left it.
	goCmd(t, dir, "mod", "tidy", "-e")
	goCmd(t, dir, "vet", "./...")
	out := goCmd(t, dir, "test", "-count=1", "-v", "./...")
	for _, name := range []string{"TestWriteFileIsIdempotent", "TestPlanChangesNothing", "TestValidate", "TestWriteFailureNamesTheFile"} {
		if !strings.Contains(out, "--- PASS: "+name) {
			t.Errorf("scaffolded test %s did not pass:\n%s", name, out)
		}
	}
	goCmd(t, dir, "build", "-o", filepath.Join("bin", "runbook-plugin-motd"), ".")

	// The binary is a plugin: it describes itself as runbook expects.
	descr, err := exec.Command(filepath.Join(dir, "bin", "runbook-plugin-motd"), "describe").Output()
	if err != nil {
		t.Fatalf("describe: %v", err)
	}
	var d plugin.Description
	if err := json.Unmarshal(descr, &d); err != nil {
		t.Fatalf("describe output: %v\n%s", err, descr)
	}
	a, ok := d.Action("write_file")
	if d.Name != "motd" || d.ProtocolVersion != plugin.ProtocolVersion || !ok {
		t.Fatalf("description = %+v", d)
	}
	if !a.Idempotent || !a.SupportsPlan || a.ReadOnly || !a.Params.IsRequired("path") || !a.Params.IsRequired("content") {
		t.Fatalf("write_file = %+v", a)
	}
}

func TestRenderedGoMod(t *testing.T) {
	root := repoRoot(t)
	tmp := t.TempDir()
	cases := map[string]struct {
		opts    scaffold.Options
		dir     string
		want    []string
		notWant []string
	}{
		"released version, no checkout": {
			opts: scaffold.Options{RunbookVersion: "v0.3.0"},
			dir:  filepath.Join(tmp, "a"),
			want: []string{
				"module example.com/runbook-plugin-x\n",
				"\ngo " + scaffold.DefaultGoVersion + "\n",
				"\nrequire github.com/runbookhq/runbook v0.3.0\n",
			},
			notWant: []string{"replace"},
		},
		"absolute checkout": {
			opts: scaffold.Options{ReplacePath: root, Module: "github.com/acme/x"},
			dir:  filepath.Join(tmp, "b"),
			want: []string{
				"module github.com/acme/x\n",
				"require github.com/runbookhq/runbook " + scaffold.PseudoVersion + "\n",
				"replace github.com/runbookhq/runbook => " + root + "\n",
			},
		},
		// Relative paths are taken from the working directory (this
		// package's), and written from the new module's directory. Render
		// writes nothing, so the directory need not exist.
		"relative checkout is written relative to the module": {
			opts: scaffold.Options{ReplacePath: filepath.Join("..", "..")},
			dir:  filepath.Join("..", "..", "plugins-under-test", "x"),
			want: []string{"replace github.com/runbookhq/runbook => ../..\n"},
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			files, err := scaffold.Render(tc.dir, "x", tc.opts)
			if err != nil {
				t.Fatal(err)
			}
			mod := fileContent(t, files, "go.mod")
			for _, w := range tc.want {
				if !strings.Contains(mod, w) {
					t.Errorf("go.mod lacks %q:\n%s", w, mod)
				}
			}
			for _, w := range tc.notWant {
				if strings.Contains(mod, w) {
					t.Errorf("go.mod has %q:\n%s", w, mod)
				}
			}
			_, hasSum := findFile(files, "go.sum")
			if hasSum != (tc.opts.ReplacePath != "") {
				t.Errorf("go.sum rendered: %v, want it exactly when a checkout is given", hasSum)
			}
			readme := fileContent(t, files, "README.md")
			if !strings.Contains(readme, "runbook-plugin-x") || !strings.Contains(readme, "uses: x.write_file") {
				t.Errorf("README does not show the plugin's use:\n%s", readme)
			}
		})
	}
}

func TestRefusesToOverwrite(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "main.go"), []byte("package main // mine\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	err := scaffold.Plugin(dir, "motd", scaffold.Options{RunbookVersion: "v0.3.0"})
	var ee *scaffold.ExistsError
	if !errors.As(err, &ee) || len(ee.Files) != 1 || ee.Files[0] != "main.go" {
		t.Fatalf("err = %v", err)
	}
	entries, _ := os.ReadDir(dir)
	if len(entries) != 1 {
		t.Fatalf("files written despite the refusal: %v", entries)
	}
	if b, _ := os.ReadFile(filepath.Join(dir, "main.go")); string(b) != "package main // mine\n" {
		t.Fatalf("main.go was changed: %q", b)
	}
}

func TestNames(t *testing.T) {
	for name, valid := range map[string]bool{
		"motd": true, "aws2": true, "my-plugin": true, "my_plugin": true, "a": true,
		"": false, "Motd": false, "2fa": false, "-x": false, "my plugin": false, "a/b": false, "ünï": false, "x.y": false,
	} {
		if got := scaffold.ValidName(name); got != valid {
			t.Errorf("ValidName(%q) = %v, want %v", name, got, valid)
		}
		_, err := scaffold.Render(t.TempDir(), name, scaffold.Options{RunbookVersion: "v0.3.0"})
		var ne *scaffold.InvalidNameError
		if valid == errors.As(err, &ne) {
			t.Errorf("Render(%q): err = %v", name, err)
		}
	}
}

func TestOptionErrors(t *testing.T) {
	dir := t.TempDir()
	// A test binary is a development build: there is no version to default to.
	if _, err := scaffold.Render(dir, "x", scaffold.Options{}); !errors.Is(err, scaffold.ErrNoVersion) {
		t.Errorf("no version: err = %v", err)
	}
	for name, opts := range map[string]scaffold.Options{
		"bad version":      {RunbookVersion: "0.3"},
		"bad go version":   {RunbookVersion: "v0.3.0", GoVersion: "go1.26"},
		"bad module path":  {RunbookVersion: "v0.3.0", Module: "example.com/a b"},
		"not a checkout":   {ReplacePath: dir},
		"another checkout": {ReplacePath: writeGoMod(t, "module example.com/other\n")},
	} {
		if _, err := scaffold.Render(filepath.Join(dir, "m"), "x", opts); err == nil {
			t.Errorf("%s: no error", name)
		}
	}
}

// DefaultGoVersion must follow runbook's own go directive: a plugin module
// cannot declare an older Go than the SDK it requires.
func TestDefaultGoVersionIsRunbooks(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "go.mod"))
	if err != nil {
		t.Fatal(err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) == 2 && f[0] == "go" {
			if f[1] != scaffold.DefaultGoVersion {
				t.Fatalf("DefaultGoVersion = %s, runbook's go.mod says go %s", scaffold.DefaultGoVersion, f[1])
			}
			return
		}
	}
	t.Fatal("no go directive in runbook's go.mod")
}

func writeGoMod(t *testing.T, content string) string {
	t.Helper()
	d := t.TempDir()
	if err := os.WriteFile(filepath.Join(d, "go.mod"), []byte(content), 0o644); err != nil {
		t.Fatal(err)
	}
	return d
}

func findFile(files []scaffold.File, path string) (scaffold.File, bool) {
	for _, f := range files {
		if f.Path == path {
			return f, true
		}
	}
	return scaffold.File{}, false
}

func fileContent(t *testing.T, files []scaffold.File, path string) string {
	t.Helper()
	f, ok := findFile(files, path)
	if !ok {
		t.Fatalf("%s not rendered", path)
	}
	return string(f.Content)
}
