package acceptance_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"unicode/utf8"
)

// advGiven is the hostile string given on the command line (--var given=).
const advGiven = "arg \x1b[2J\x1b]0;t\a\r\u202e\u009b31m\x7f\nforged line"

// advUnsafe reports the first byte or character of b a terminal would act
// on: a control character but newline and tab, DEL, a C1 control, a
// bidirectional override or isolate, a zero-width space, a BOM.
func advUnsafe(b []byte) (string, int) {
	s := string(b)
	for i, r := range s {
		switch {
		case r == utf8.RuneError:
			if _, size := utf8.DecodeRuneInString(s[i:]); size == 1 {
				return "invalid UTF-8", i
			}
		case r < 0x20 && r != '\n' && r != '\t', r == 0x7f, r >= 0x80 && r < 0xa0,
			r >= 0x202a && r <= 0x202e, r >= 0x2066 && r <= 0x2069, r == 0x200b, r == 0xfeff:
			return fmt.Sprintf("%U", r), i
		}
	}
	return "", -1
}

// forgedStarts are lines the corpus's strings try to print as if they were
// the program's own.
var forgedStarts = []string{"2026-01-01T00:00:00Z run r1", "✓ confirm approved", "  Approve? Type", "forged line"}

// TestDataCannotForgeThePlainOutput runs testdata/adversarial/terminal in
// text (not a terminal: plain lines), with every log level's lines, and in
// JSON; reports and lists it; and validates a runbook whose names and
// keys hold the same strings. Nothing written may hold a character a
// terminal acts on, and no line may start as the strings try to.
func TestDataCannotForgeThePlainOutput(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	b, err := os.ReadFile(filepath.Join(adversarialDir(), "terminal", "hostile.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	w.write("hostile.yaml", string(b))
	w.write("bad.yaml", "version: 1\nname: \"bad \\e[2J\"\nsteps:\n  - id: \"st\\e[2Ja\\u202ert\"\n    uses: core.log\n    \"with\\r\\e[1A\": { message: hi }\n")
	state := filepath.Join(w.dir, "state")
	outputs := map[string][]byte{}
	run := func(label string, wantCode int, args ...string) secResult {
		r := secRun(t, w, nil, args...)
		if r.code != wantCode {
			t.Errorf("%s: exit %d, want %d\nstdout:\n%s\nstderr:\n%s", label, r.code, wantCode, r.stdout, r.stderr)
		}
		outputs[label+" stdout"], outputs[label+" stderr"] = []byte(r.stdout), []byte(r.stderr)
		return r
	}
	r := run("run (text)", 0, "run", "hostile.yaml", "--auto-approve", "--log-level", "trace", "--state", state, "--var", "given="+advGiven)
	for _, want := range []string{`clear \x1b[2J\x1b[H`, `reorder \u202eevil\u202c`, `\n2026-01-01T00:00:00Z run r1`} {
		if !strings.Contains(r.stdout+r.stderr, want) {
			t.Errorf("the escaped form %s is missing: the strings did not go where they were sent", want)
		}
	}
	run("run (json)", 0, "run", "hostile.yaml", "--auto-approve", "-o", "json", "--state", state, "--var", "given="+advGiven)
	run("plan", 0, "plan", "hostile.yaml", "--var", "given="+advGiven)
	run("runs", 0, "runs", "--state", state)
	id := secRunID(t, r)
	run("report", 0, "report", id, "--state", state)
	if v := run("validate", 2, "validate", "bad.yaml"); !strings.Contains(v.stderr, `invalid step id "st\x1b[2Ja\u202ert"`) || !strings.Contains(v.stderr, `unknown key "with\r\x1b[1A"`) {
		t.Errorf("validate: the bad id and key are not named, escaped:\n%s", v.stderr)
	}
	checked := 0
	for label, out := range outputs {
		checked += len(out)
		if what, at := advUnsafe(out); at >= 0 {
			lo, hi := max(0, at-60), min(len(out), at+20)
			t.Errorf("%s: %s at byte %d: %q", label, what, at, out[lo:hi])
		}
		for _, line := range strings.Split(string(out), "\n") {
			for _, f := range forgedStarts {
				if strings.HasPrefix(line, f) {
					t.Errorf("%s: a line starts as data made it: %q", label, line)
				}
			}
		}
	}
	t.Logf("%d outputs, %d bytes: no character a terminal acts on, no forged line", len(outputs), checked)
}
