// Package termtext makes text that comes from data — step outputs, plugin
// messages and logs, inputs, runbook names — safe to print on a terminal
// or in a log line. A control character in such text could move the
// cursor, clear or recolour the screen, rewrite the line above (an
// approval's question), or start a line that looks like the program's own;
// a bidirectional override could show text in another order than it is.
// Each is written as a Go escape instead (\x1b, \r, \n, \u202e), visible
// and harmless.
package termtext

import (
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// Escape returns s for one line: every control character but tab (C0,
// DEL, C1, line breaks included), invalid UTF-8, and every character that
// reorders or hides text (bidirectional overrides, embeddings, isolates
// and marks; zero-width spaces; the byte order mark) as a Go escape.
func Escape(s string) string {
	if clean(s) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		switch {
		case r == utf8.RuneError && size == 1:
			fmt.Fprintf(&b, `\x%02x`, s[i])
		case unsafe(r):
			b.WriteString(escapeRune(r))
		default:
			b.WriteString(s[i : i+size])
		}
		i += size
	}
	return b.String()
}

// Lines returns s's lines, each made safe by Escape: for text whose line
// breaks are meant (an approval's message), printed one line at a time
// under a marker of the caller's.
func Lines(s string) []string {
	lines := strings.Split(strings.ReplaceAll(s, "\r\n", "\n"), "\n")
	for i, l := range lines {
		lines[i] = Escape(l)
	}
	return lines
}

// clean reports whether s needs no escaping (the common case, checked
// byte by byte).
func clean(s string) bool {
	for i := 0; i < len(s); i++ {
		c := s[i]
		if c < 0x20 && c != '\t' || c == 0x7f || c >= 0x80 {
			if c >= 0x80 {
				return cleanRunes(s[i:])
			}
			return false
		}
	}
	return true
}

func cleanRunes(s string) bool {
	for i := 0; i < len(s); {
		r, size := utf8.DecodeRuneInString(s[i:])
		if r == utf8.RuneError && size == 1 || unsafe(r) {
			return false
		}
		i += size
	}
	return true
}

// unsafe reports whether r is escaped.
func unsafe(r rune) bool {
	switch {
	case r < 0x20:
		return r != '\t'
	case r == 0x7f, r >= 0x80 && r < 0xa0: // DEL, C1 (0x9b is a CSI)
		return true
	case r == 0x061c, r == 0x200e, r == 0x200f, // Arabic letter mark, LRM, RLM
		r >= 0x202a && r <= 0x202e,            // embeddings and overrides
		r >= 0x2066 && r <= 0x2069,            // isolates
		r == 0x200b, r == 0x2060, r == 0xfeff: // zero-width space, word joiner, BOM
		return true
	}
	return false
}

func escapeRune(r rune) string {
	switch r {
	case '\n':
		return `\n`
	case '\r':
		return `\r`
	case '\b':
		return `\b`
	case 0x1b:
		return `\x1b`
	}
	if r < 0x80 {
		return fmt.Sprintf(`\x%02x`, r)
	}
	return fmt.Sprintf(`\u%04x`, r)
}

// Writer returns a writer for log entries, one per Write call (as hclog
// writes them): each entry is escaped as Escape does but for its final
// line break, so an entry is one line whatever its message holds.
func Writer(w io.Writer) io.Writer { return entryWriter{w} }

type entryWriter struct{ w io.Writer }

func (e entryWriter) Write(p []byte) (int, error) {
	s := string(p)
	end := ""
	if strings.HasSuffix(s, "\n") {
		s, end = s[:len(s)-1], "\n"
	}
	if _, err := io.WriteString(e.w, Escape(s)+end); err != nil {
		return 0, err
	}
	return len(p), nil
}

// JSON escapes, in JSON text, what encoding/json leaves as it is but a
// terminal acts on: DEL, C1 controls and the characters Escape escapes
// above ASCII, as \u escapes (the JSON means the same). JSON output
// printed on a terminal is then as safe as text.
func JSON(b []byte) []byte {
	if clean(string(b)) {
		return b
	}
	var out []byte
	for i := 0; i < len(b); {
		r, size := utf8.DecodeRune(b[i:])
		if r == 0x7f || r >= 0x80 && unsafe(r) {
			out = fmt.Appendf(out, `\u%04x`, r)
		} else {
			out = append(out, b[i:i+size]...)
		}
		i += size
	}
	return out
}

// JSONWriter applies JSON to each write: for an encoding/json Encoder,
// which writes each value whole.
func JSONWriter(w io.Writer) io.Writer { return jsonWriter{w} }

type jsonWriter struct{ w io.Writer }

func (j jsonWriter) Write(p []byte) (int, error) {
	if _, err := j.w.Write(JSON(p)); err != nil {
		return 0, err
	}
	return len(p), nil
}
