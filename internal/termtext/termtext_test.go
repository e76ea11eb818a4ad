package termtext

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"unicode/utf8"
)

// hostile are the strings of the terminal class of the adversarial corpus
// (testdata/adversarial/terminal).
var hostile = map[string]string{
	"clear screen":   "\x1b[2J\x1b[H",
	"window title":   "\x1b]0;pwned\a",
	"carriage ret":   "ok\r✓ confirm approved",
	"backspaces":     "abc\b\b\bXYZ",
	"new line":       "x\n2026-01-01T00:00:00Z run r1 finished",
	"bidi override":  "a\u202eevil\u202c",
	"bidi isolate":   "\u2067x\u2069",
	"C1 CSI":         "\u009b31m",
	"DEL":            "a\x7fb",
	"cursor up":      "\x1b[1A\x1b[2K",
	"NUL":            "a\x00b",
	"zero width":     "a\u200bb\ufeff",
	"invalid UTF-8":  "a\xff\xfeb",
	"next line (C1)": "a\u0085b",
}

func TestEscapeLeavesNothingATerminalActsOn(t *testing.T) {
	for name, s := range hostile {
		got := Escape(s)
		for i, r := range got {
			if r < 0x20 && r != '\t' || r == 0x7f || unsafe(r) {
				t.Errorf("%s: %q keeps %U at %d", name, got, r, i)
			}
		}
		if !utf8.ValidString(got) {
			t.Errorf("%s: %q is not valid UTF-8", name, got)
		}
		if !strings.Contains(got, `\`) {
			t.Errorf("%s: %q shows no escape", name, got)
		}
	}
	for _, s := range []string{"", "plain text", "tab\there", "é € 𝄞 русский 日本", "✓ ◆ ↻ …"} {
		if got := Escape(s); got != s {
			t.Errorf("Escape(%q) = %q, want it unchanged", s, got)
		}
	}
	if got := Escape("a\x1b[2Jb\nc\u202e"); got != `a\x1b[2Jb\nc\u202e` {
		t.Errorf("escapes: %q", got)
	}
}

func TestLinesKeepsLineBreaks(t *testing.T) {
	got := Lines("one\r\ntwo \x1b[1A\nthree\r")
	want := []string{"one", `two \x1b[1A`, `three\r`}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Errorf("Lines = %q, want %q", got, want)
	}
}

// A log entry is one line, whatever its message holds.
func TestWriterKeepsOneLinePerEntry(t *testing.T) {
	var b bytes.Buffer
	w := Writer(&b)
	for _, s := range hostile {
		if _, err := w.Write([]byte("[WARN] plugin: " + s + "\n")); err != nil {
			t.Fatal(err)
		}
	}
	if n := strings.Count(b.String(), "\n"); n != len(hostile) {
		t.Errorf("%d lines for %d entries:\n%s", n, len(hostile), b.String())
	}
	if got := Escape(strings.ReplaceAll(b.String(), "\n", "")); got != strings.ReplaceAll(b.String(), "\n", "") {
		t.Errorf("controls left in %q", b.String())
	}
}

// JSON keeps its meaning and loses what a terminal would act on.
func TestJSONEscapesWhatEncodingJSONLeaves(t *testing.T) {
	for name, s := range hostile {
		b, err := json.Marshal(map[string]string{"v": s})
		if err != nil {
			t.Fatal(err)
		}
		out := JSON(b)
		var back, want map[string]string
		if err := json.Unmarshal(out, &back); err != nil {
			t.Fatalf("%s: %q is not JSON: %v", name, out, err)
		}
		_ = json.Unmarshal(b, &want)
		if back["v"] != want["v"] {
			t.Errorf("%s: decodes to %q, want %q", name, back["v"], want["v"])
		}
		for _, r := range string(out) {
			if r < 0x20 || r == 0x7f || unsafe(r) {
				t.Errorf("%s: %q keeps %U", name, out, r)
			}
		}
	}
}
