// Package scaffold writes the skeleton of a new runbook plugin: a Go module
// with a main.go that serves one example action (with Plan, Validate and
// honest idempotency), its tests on the in-process gRPC harness, and a
// README saying how to build, lock and use it. `runbook plugins new NAME`
// is a thin command over Plugin.
package scaffold

import (
	"bytes"
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"text/template"
)

// RunbookModule is the module path of runbook's SDK.
const RunbookModule = "github.com/runbookhq/runbook"

// DefaultGoVersion is the go directive of a new plugin module: the one
// runbook's own go.mod declares (a module cannot declare less than its
// dependencies).
const DefaultGoVersion = "1.26.0"

// PseudoVersion is required when the SDK comes from a local checkout
// (Options.ReplacePath): the replace directive makes the version moot.
const PseudoVersion = "v0.0.0-00010101000000-000000000000"

// BinaryPrefix is prepended to a plugin's name to make its executable's
// name, as runbook looks it up.
const BinaryPrefix = "runbook-plugin-"

//go:embed templates/*.tmpl
var templateFS embed.FS

// The templates use {% %} as delimiters: Go source is full of {{ }}.
var templates = template.Must(template.New("").Delims("{%", "%}").Option("missingkey=error").ParseFS(templateFS, "templates/*.tmpl"))

// files maps each template to the file it renders, in writing order.
var files = []struct{ tmpl, path string }{
	{"go.mod.tmpl", "go.mod"},
	{"main.go.tmpl", "main.go"},
	{"main_test.go.tmpl", "main_test.go"},
	{"README.md.tmpl", "README.md"},
	{"gitignore.tmpl", ".gitignore"},
}

// Options shape the new module. The zero value is valid only in a runbook
// binary built at a released version (see RunbookVersion).
type Options struct {
	// Module is the new module's path; default "example.com/runbook-plugin-NAME".
	Module string
	// RunbookVersion is the version of github.com/runbookhq/runbook to
	// require. Default: PseudoVersion when ReplacePath is set, else the
	// version this binary was built from, if it is a release.
	RunbookVersion string
	// ReplacePath, when set, is a local checkout of runbook that the new
	// module builds against (a replace directive). A relative path is taken
	// from the current directory and written relative to the new module.
	ReplacePath string
	// GoVersion is the go directive; default DefaultGoVersion.
	GoVersion string
}

// File is one rendered file of the new module.
type File struct {
	// Path is relative to the module's directory.
	Path    string
	Content []byte
}

// InvalidNameError rejects a plugin name.
type InvalidNameError struct{ Name string }

func (e *InvalidNameError) Error() string {
	return fmt.Sprintf("invalid plugin name %q: use lower-case letters, digits, '-' and '_', starting with a letter (it becomes %sNAME and the NAME.action prefix in runbooks)", e.Name, BinaryPrefix)
}

// ExistsError refuses to overwrite files that are already there.
type ExistsError struct {
	Dir   string
	Files []string
}

func (e *ExistsError) Error() string {
	return fmt.Sprintf("%s already has %s: scaffolding never overwrites files; choose another directory or move them away",
		e.Dir, strings.Join(e.Files, ", "))
}

// ErrNoVersion is returned when neither a runbook version nor a local
// checkout is given and this binary is not a release build.
var ErrNoVersion = errors.New("no runbook version to require: this runbook is not a release build, so give a version (e.g. v0.3.0) or a local checkout of runbook to build against")

var nameRE = regexp.MustCompile(`^[a-z][a-z0-9_-]*$`)

// ValidName reports whether name can name a plugin.
func ValidName(name string) bool { return nameRE.MatchString(name) }

// Plugin writes a new plugin module named name into dir (created if it
// does not exist). It writes go.mod, main.go, main_test.go, README.md and
// .gitignore, refuses to overwrite any of them, and writes all of them or
// none. With ReplacePath it also seeds go.sum from the checkout's, so the
// module builds offline with the versions runbook was tested with.
func Plugin(dir, name string, opts Options) error {
	out, err := Render(dir, name, opts)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	var exist []string
	for _, f := range out {
		if _, err := os.Lstat(filepath.Join(dir, f.Path)); err == nil {
			exist = append(exist, f.Path)
		} else if !errors.Is(err, fs.ErrNotExist) {
			return err
		}
	}
	if len(exist) > 0 {
		return &ExistsError{Dir: dir, Files: exist}
	}
	var written []string
	for _, f := range out {
		p := filepath.Join(dir, f.Path)
		if err := writeNew(p, f.Content); err != nil {
			for _, w := range written {
				_ = os.Remove(w)
			}
			return err
		}
		written = append(written, p)
	}
	return nil
}

// Render returns the files Plugin would write into dir, without writing.
func Render(dir, name string, opts Options) ([]File, error) {
	if !ValidName(name) {
		return nil, &InvalidNameError{Name: name}
	}
	data, err := templateData(dir, name, opts)
	if err != nil {
		return nil, err
	}
	var out []File
	for _, f := range files {
		var b bytes.Buffer
		if err := templates.ExecuteTemplate(&b, f.tmpl, data); err != nil {
			return nil, fmt.Errorf("scaffold: rendering %s: %w", f.path, err)
		}
		out = append(out, File{Path: f.path, Content: b.Bytes()})
	}
	if data.replaceAbs != "" {
		sum, err := os.ReadFile(filepath.Join(data.replaceAbs, "go.sum"))
		if err != nil && !errors.Is(err, fs.ErrNotExist) {
			return nil, err
		}
		if len(sum) > 0 {
			out = append(out, File{Path: "go.sum", Content: sum})
		}
	}
	return out, nil
}

type tmplData struct {
	Name, Binary, Module, RunbookVersion, ReplacePath, GoVersion string
	replaceAbs                                                   string
}

func templateData(dir, name string, opts Options) (*tmplData, error) {
	d := &tmplData{
		Name:           name,
		Binary:         BinaryPrefix + name,
		Module:         opts.Module,
		RunbookVersion: opts.RunbookVersion,
		GoVersion:      opts.GoVersion,
	}
	if d.Module == "" {
		d.Module = "example.com/" + d.Binary
	}
	if err := checkModulePath(d.Module); err != nil {
		return nil, err
	}
	if d.GoVersion == "" {
		d.GoVersion = DefaultGoVersion
	}
	if !goVersionRE.MatchString(d.GoVersion) {
		return nil, fmt.Errorf("go version %q: want a release such as %s", d.GoVersion, DefaultGoVersion)
	}
	if opts.ReplacePath != "" {
		abs, err := filepath.Abs(opts.ReplacePath)
		if err != nil {
			return nil, err
		}
		if err := checkCheckout(abs); err != nil {
			return nil, err
		}
		d.replaceAbs = abs
		d.ReplacePath, err = replaceTarget(dir, opts.ReplacePath, abs)
		if err != nil {
			return nil, err
		}
		if d.RunbookVersion == "" {
			d.RunbookVersion = PseudoVersion
		}
	}
	if d.RunbookVersion == "" {
		d.RunbookVersion = builtVersion()
		if d.RunbookVersion == "" {
			return nil, ErrNoVersion
		}
	}
	if !versionRE.MatchString(d.RunbookVersion) {
		return nil, fmt.Errorf("runbook version %q is not a module version (want e.g. v0.3.0)", d.RunbookVersion)
	}
	return d, nil
}

// replaceTarget writes the checkout's path as go.mod wants it: relative to
// the new module when the caller gave a relative path, absolute otherwise.
func replaceTarget(dir, given, abs string) (string, error) {
	p := abs
	if !filepath.IsAbs(given) {
		absDir, err := filepath.Abs(dir)
		if err != nil {
			return "", err
		}
		rel, err := filepath.Rel(absDir, abs)
		if err != nil {
			return "", err
		}
		p = filepath.ToSlash(rel)
		// go.mod takes a path as a directory only with ./ or ../ in front.
		if p != ".." && !strings.HasPrefix(p, "../") {
			p = "./" + p
		}
	}
	if strings.ContainsAny(p, " \t\"'`\\") {
		p = strconv.Quote(p)
	}
	return p, nil
}

// checkCheckout makes sure a replace target is runbook, not a typo that
// would fail later inside `go build` with a less useful message.
func checkCheckout(abs string) error {
	b, err := os.ReadFile(filepath.Join(abs, "go.mod"))
	if err != nil {
		return fmt.Errorf("%s is not a runbook checkout: %w", abs, err)
	}
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) == 2 && f[0] == "module" && strings.Trim(f[1], `"`) == RunbookModule {
			return nil
		}
	}
	return fmt.Errorf("%s is not a runbook checkout: its go.mod is not module %s", abs, RunbookModule)
}

// versionRE is a semantic version as modules spell it (v1.2.3, with an
// optional pre-release and build suffix).
var versionRE = regexp.MustCompile(`^v(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(-[0-9A-Za-z.-]+)?(\+[0-9A-Za-z.-]+)?$`)

var goVersionRE = regexp.MustCompile(`^1\.\d+(\.\d+)?$`)

var modulePathRE = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._~-]*(/[A-Za-z0-9._~-]+)*$`)

func checkModulePath(p string) error {
	if !modulePathRE.MatchString(p) || strings.Contains(p, "..") || strings.HasSuffix(p, ".") {
		return fmt.Errorf("invalid module path %q (want e.g. github.com/acme/runbook-plugin-x)", p)
	}
	return nil
}

// builtVersion is the runbook version this binary was built from, if it is
// a release (not a development build).
func builtVersion() string {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return ""
	}
	// A release has no pre-release part; development builds are "(devel)"
	// or a pseudo-version, which a module proxy would not have.
	v := bi.Main.Version
	if bi.Main.Path == RunbookModule && versionRE.MatchString(v) && !strings.ContainsAny(v, "-+") {
		return v
	}
	return ""
}

// writeNew creates path, failing if it exists (a file that appeared after
// the check is not overwritten either).
func writeNew(path string, content []byte) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	if _, err := f.Write(content); err != nil {
		f.Close()
		_ = os.Remove(path)
		return err
	}
	if err := f.Close(); err != nil {
		_ = os.Remove(path)
		return err
	}
	return nil
}
