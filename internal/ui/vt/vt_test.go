package vt

import (
	"strings"
	"testing"
)

func TestScreen(t *testing.T) {
	for _, tc := range []struct {
		name, in   string
		w, h       int
		want       string
		scrollback string
	}{
		{name: "lines", in: "a\nb\n", w: 10, h: 3, want: "a\nb"},
		{name: "carriage return overwrites", in: "hello\rJ", w: 10, h: 2, want: "Jello"},
		{name: "redraw in place", in: "one\ntwo\n\x1b[2Aüno\x1b[K\nzwei\x1b[K\n\x1b[J", w: 10, h: 4, want: "üno\nzwei"},
		{name: "erase below", in: "1\n2\n3\n\x1b[2A\x1b[J", w: 5, h: 4, want: "1"},
		{name: "deferred wrap", in: "abcd\r\nx", w: 4, h: 3, want: "abcd\nx"},
		{name: "wrap", in: "abcdef", w: 4, h: 3, want: "abcd\nef"},
		{name: "scroll", in: "1\n2\n3\n4", w: 3, h: 2, want: "3\n4", scrollback: "1\n2"},
		{name: "cursor up stops at the top", in: "a\x1b[9Ab", w: 3, h: 2, want: "ab"},
		{name: "column and erase line", in: "abcdef\x1b[3G\x1b[K", w: 10, h: 1, want: "ab"},
		{name: "split escape", in: "\x1b", w: 5, h: 1, want: ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := New(tc.w, tc.h)
			// Byte by byte: sequences and runes split across writes.
			for i := 0; i < len(tc.in); i++ {
				s.Write([]byte{tc.in[i]})
			}
			if got := strings.TrimRight(strings.Join(s.Lines(), "\n"), "\n"); got != tc.want {
				t.Errorf("screen %q, want %q", got, tc.want)
			}
			if got := strings.Join(s.Scrollback(), "\n"); got != tc.scrollback {
				t.Errorf("scrollback %q, want %q", got, tc.scrollback)
			}
			if len(s.Unknown) > 0 {
				t.Errorf("unknown: %q", s.Unknown)
			}
		})
	}
}

func TestColoursAndUnknown(t *testing.T) {
	s := New(20, 2)
	s.Write([]byte("\x1b[32m✓\x1b[0m ok \x1b[2mdim\x1b[0m\x1b[5n"))
	if s.SGRs != 4 {
		t.Errorf("SGRs = %d, want 4", s.SGRs)
	}
	if fg := s.FG("✓"); fg != 32 {
		t.Errorf("FG = %d, want 32", fg)
	}
	if fg := s.FG("ok"); fg != 0 {
		t.Errorf("FG after reset = %d", fg)
	}
	if len(s.Unknown) != 1 || s.Unknown[0] != "CSI 5n" {
		t.Errorf("unknown = %q", s.Unknown)
	}
}
