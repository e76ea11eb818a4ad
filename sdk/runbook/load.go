package runbook

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"unicode/utf8"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/safefile"
)

// Options configure Load and Parse.
type Options struct {
	// Catalog is called once, after the `plugins:` section is decoded, with
	// the plugins the runbook declares, so that the host describes only
	// those. Nil means the plugins are unknown: everything else is
	// validated and every use of a plugin action is reported as an error
	// (for tests; real callers pass a catalog).
	//
	// A runbook that calls others (uses: ./file.yaml) calls it once per
	// file, with that file's plugins.
	Catalog func(plugins []*PluginRef) Catalog

	// Context, when it ends (the operator pressed Ctrl-C), stops
	// validation: the diagnostics then say it was interrupted. Nil: never.
	Context context.Context

	// program is shared by the runbooks of one program while they load.
	program *program
}

// Load reads and validates the runbook at path. It returns a *Runbook only
// if no diagnostic is an error; warnings may accompany it.
func Load(path string, opts Options) (*Runbook, Diagnostics) {
	src, err := readCapped(path, MaxSourceBytes)
	if err != nil {
		return nil, Diagnostics{{Pos: Pos{File: path}, Severity: Error, Message: err.Error()}}
	}
	return Parse(path, src, opts)
}

// recoverBug turns a panic in validation into an error diagnostic: a bug
// must not crash the command that validates, nor let a runbook through.
func recoverBug(file string, rb **Runbook, ds *Diagnostics) {
	if r := recover(); r != nil {
		*rb = nil
		*ds = append(*ds, Diagnostic{Pos: Pos{File: file}, Severity: Error,
			Message: fmt.Sprintf("internal error while validating (a bug in runbook, please report it): %v", r)})
	}
}

// readCapped reads a regular file of at most limit bytes: a FIFO or a
// device (or a symbolic link to one) is refused without being opened for
// reading, so it can neither block nor stream forever.
func readCapped(path string, limit int64) ([]byte, error) {
	src, err := safefile.ReadFile(path, limit)
	var nr *safefile.NotRegularError
	var tl *safefile.TooLargeError
	switch {
	case errors.As(err, &nr):
		return nil, fmt.Errorf("cannot read: it is %s, not a regular file", nr.Kind)
	case errors.As(err, &tl):
		return nil, fmt.Errorf("file is larger than %d MiB; refusing it", limit>>20)
	case err != nil:
		return nil, friendlyFileError(err)
	}
	return src, nil
}

func friendlyFileError(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return fmt.Errorf("cannot read: %v", pe.Err)
	}
	return err
}

// Parse validates a runbook from its source; path is used in diagnostics
// and kept as Runbook.Path.
func Parse(path string, src []byte, opts Options) (rb *Runbook, ds Diagnostics) {
	defer recoverBug(path, &rb, &ds)
	abs, err := filepath.Abs(path)
	if err != nil {
		abs = path
	}
	opts.program = &program{stack: []string{abs}, plugins: map[string]*PluginRef{}, commands: map[string]string{}}
	rb, ds = parseOne(path, src, opts)
	ds.Sort()
	return rb, ds
}

// parseOne validates one runbook of a program (the one run, or one it calls).
func parseOne(path string, src []byte, opts Options) (rb *Runbook, ds Diagnostics) {
	d := &decoder{source: newSource(path, src)}
	root := d.parseYAML()
	if root == nil {
		d.diags.Sort()
		return nil, d.diags
	}
	l := newLoader(d, opts)
	rb = l.load(root)
	d.diags.Sort()
	if d.diags.HasErrors() {
		return nil, d.diags
	}
	rb.Path, rb.Source, rb.Hash = path, src, programHash(src, rb)
	return rb, d.diags
}

// parseYAML parses the runbook's YAML document: a mapping.
func (d *decoder) parseYAML() *yaml.Node {
	root, ok := d.parseDocument()
	if !ok {
		return nil
	}
	if root == nil || isNull(root) {
		d.add(Pos{File: d.file, Line: 1, Col: 1}, Error, "the file is empty: a runbook starts with `version: 1`")
		return nil
	}
	if root.Kind != yaml.MappingNode {
		d.errorf(root, "a runbook is a mapping (version, name, inputs, steps...), not %s", describeNode(root))
		return nil
	}
	return root
}

// parseDocument parses the single YAML document of the source (strict JSON
// for a file named .json), after cheap checks that bound the parser's
// memory, and bounds its nesting and alias expansion. It returns the document's content (nil for
// an empty document); ok is false after a problem was reported.
func (d *decoder) parseDocument() (*yaml.Node, bool) {
	top := Pos{File: d.file, Line: 1, Col: 1}
	if len(d.src) > MaxSourceBytes {
		d.add(Pos{File: d.file}, Error, "file is larger than %d MiB; refusing it", MaxSourceBytes>>20)
		return nil, false
	}
	if !utf8.Valid(d.src) {
		d.add(d.posAt(invalidUTF8(d.src)), Error, "the file is not valid UTF-8")
		return nil, false
	}
	if n := len(d.lines) + bytes.Count(d.src, []byte(",")); n > MaxLines {
		d.add(top, Error, "the file has more than %d lines and list items; refusing it", MaxLines)
		return nil, false
	}
	if isJSONFile(d.file) {
		root, ok := d.parseJSON()
		if !ok || root == nil {
			return nil, ok
		}
		if !d.checkTree(root) {
			return nil, false
		}
		return root, true
	}
	dec := yaml.NewDecoder(bytes.NewReader(d.src))
	var doc yaml.Node
	if err := dec.Decode(&doc); err != nil {
		if err == io.EOF {
			return nil, true
		}
		d.syntaxError(err)
		return nil, false
	}
	var next yaml.Node
	switch err := dec.Decode(&next); {
	case err == io.EOF:
	case err != nil:
		d.syntaxError(err)
		return nil, false
	default:
		p := d.pos(&next)
		if len(next.Content) > 0 {
			p = d.pos(next.Content[0])
		}
		if sep := d.documentSeparator(p.Line); sep > 0 {
			p = Pos{File: d.file, Line: sep, Col: 1}
		}
		d.add(p, Error, "the file holds more than one YAML document (remove the ---)")
		return nil, false
	}
	if !d.checkTree(&doc) {
		return nil, false
	}
	root := deref(&doc)
	if root.Kind == yaml.DocumentNode {
		if len(root.Content) == 0 {
			return nil, true
		}
		root = deref(root.Content[0])
	}
	return root, true
}

// documentSeparator finds the --- line that starts the document whose
// content begins at line.
func (d *decoder) documentSeparator(line int) int {
	for l := line; l >= 1; l-- {
		if strings.HasPrefix(d.line(l), "---") {
			return l
		}
	}
	return 0
}

func invalidUTF8(b []byte) int {
	for i := 0; i < len(b); {
		r, n := utf8.DecodeRune(b[i:])
		if r == utf8.RuneError && n == 1 {
			return i
		}
		i += n
	}
	return 0
}

var yamlLineRe = regexp.MustCompile(`^yaml: line (\d+): (.*)$`)

// syntaxError reports a yaml.v3 parse error. yaml.v3 gives only a line, and
// for parser errors the line where the enclosing construct starts (counted
// from 0); the line that holds the problem is found by parsing ever longer
// prefixes of the file until the same error appears.
func (d *decoder) syntaxError(err error) {
	if d.jsonSyntaxError() {
		return
	}
	msg := err.Error()
	line := 0
	if m := yamlLineRe.FindStringSubmatch(msg); m != nil {
		line, _ = strconv.Atoi(m[1])
		msg = m[2]
	} else {
		msg = strings.TrimPrefix(msg, "yaml: ")
	}
	if m := regexp.MustCompile(`^unknown anchor '(.*)' referenced$`).FindStringSubmatch(msg); m != nil {
		if i := bytes.Index(d.src, []byte("*"+m[1])); i >= 0 {
			d.add(d.posAt(i), Error, "YAML: unknown anchor %q (define it with &%s before using *%s)", m[1], m[1], m[1])
			return
		}
	}
	line = d.problemLine(err.Error(), max(line, 1))
	text := d.line(line)
	col := len(text) - len(strings.TrimLeft(text, " \t")) + 1
	if i := strings.IndexByte(text, '\t'); i >= 0 && strings.Contains(msg, "tab character") {
		col = i + 1
	}
	hint := ""
	if i := strings.Index(text, "${{"); i >= 0 && strings.ContainsAny(text[:i], "{[") && !quoted(text, i) {
		col = utf8.RuneCountInString(text[:i]) + 1
		hint = ` (inside { } or [ ], a value containing ${{ }} must be quoted: "${{ ... }}")`
	} else if strings.HasPrefix(msg, "mapping values are not allowed") {
		hint = ` (a value that contains ": " must be quoted)`
		if i := strings.Index(text, ": "); i >= 0 {
			if j := strings.Index(text[i+2:], ": "); j >= 0 {
				col = utf8.RuneCountInString(text[:i+2+j]) + 1
			}
		}
	}
	d.add(Pos{File: d.file, Line: line, Col: col}, Error, "YAML syntax error: %s%s", msg, hint)
}

// jsonSyntaxError reports the exact position of a syntax error in YAML
// text that is meant to be JSON (it starts with { or [), which
// encoding/json gives as an offset where yaml.v3 gives only a line. Files
// named .json never get here: they are parsed as JSON (parseJSON).
func (d *decoder) jsonSyntaxError() bool {
	trimmed := bytes.TrimLeft(d.src, " \t\r\n")
	if len(trimmed) == 0 || trimmed[0] != '{' && trimmed[0] != '[' {
		return false
	}
	var v json.RawMessage
	err := json.Unmarshal(d.src, &v)
	var se *json.SyntaxError
	if !errors.As(err, &se) {
		return false
	}
	d.jsonError(0, se)
	return true
}

// quoted reports whether position i of a line is inside quotes.
func quoted(text string, i int) bool {
	var q byte
	for j := 0; j < i; j++ {
		switch c := text[j]; {
		case q == 0 && (c == '"' || c == '\''):
			q = c
		case q == '"' && c == '\\':
			j++
		case c == q:
			q = 0
		}
	}
	return q != 0
}

// maxRefineBytes bounds the files whose syntax errors are located by
// re-parsing prefixes (a few dozen parses at most); larger files get the
// line yaml.v3 reports.
const maxRefineBytes = 512 << 10

// problemLine returns the first line L >= from such that the file's first
// L lines fail to parse with the same error, or from when none does.
func (d *decoder) problemLine(full string, from int) int {
	fails := func(l int) bool {
		end := len(d.src)
		if l < len(d.lines) {
			end = d.lines[l]
		}
		dec := yaml.NewDecoder(bytes.NewReader(d.src[:end]))
		for {
			var n yaml.Node
			err := dec.Decode(&n)
			if err == nil {
				continue
			}
			return err != io.EOF && err.Error() == full
		}
	}
	lo, hi := from, len(d.lines)
	if lo > hi || len(d.src) > maxRefineBytes || !fails(hi) {
		return from
	}
	for lo < hi {
		mid := (lo + hi) / 2
		if fails(mid) {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}
