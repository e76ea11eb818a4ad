package runbook

import (
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/sdk/schema"
)

// Severity of a diagnostic.
type Severity int

const (
	Error Severity = iota
	Warning
)

// Diagnostic is a problem in a runbook or its inputs, located by Pos (a
// file position, or for inputs given on the command line, Pos.File names
// the source, e.g. "--var dr_region").
type Diagnostic struct {
	Pos      Pos
	Severity Severity
	Message  string
}

func (d Diagnostic) String() string {
	sev := ""
	if d.Severity == Warning {
		sev = "warning: "
	}
	return d.Pos.String() + ": " + sev + d.Message
}

// Diagnostics is a list of problems; as an error it prints one per line.
type Diagnostics []Diagnostic

// HasErrors reports whether any diagnostic is an error.
func (ds Diagnostics) HasErrors() bool {
	for _, d := range ds {
		if d.Severity == Error {
			return true
		}
	}
	return false
}

func (ds Diagnostics) Error() string {
	lines := make([]string, len(ds))
	for i, d := range ds {
		lines[i] = d.String()
	}
	return strings.Join(lines, "\n")
}

// Sort orders diagnostics by file, line and column.
func (ds Diagnostics) Sort() {
	sort.SliceStable(ds, func(i, j int) bool {
		a, b := ds[i].Pos, ds[j].Pos
		if a.File != b.File {
			return a.File < b.File
		}
		if a.Line != b.Line {
			return a.Line < b.Line
		}
		return a.Col < b.Col
	})
}

// shownName is a name from a file (a key, an id, an input) as a message
// quotes it with %q: schema.QuoteName's form.
type shownName string

func (n shownName) Format(f fmt.State, verb rune) {
	if verb != 'q' {
		_, _ = io.WriteString(f, string(n))
		return
	}
	_, _ = io.WriteString(f, schema.QuoteName(string(n)))
}
