package ui

import (
	"strings"
	"unicode/utf8"

	"github.com/runbookhq/runbook/internal/termtext"
)

// ANSI control sequences the live view writes. Only these: test/pty and
// internal/ui/vt check that nothing else appears.
const (
	csi         = "\x1b["
	clearLine   = csi + "K" // erase from the cursor to the end of the line
	clearBelow  = csi + "J" // erase from the cursor to the end of the screen
	sgrReset    = csi + "0m"
	sgrBold     = csi + "1m"
	sgrDim      = csi + "2m"
	sgrRed      = csi + "31m"
	sgrGreen    = csi + "32m"
	sgrYellow   = csi + "33m"
	sgrCyan     = csi + "36m"
	sgrDefaults = csi + "22;39m" // normal intensity, default colour
)

func cursorUp(n int) string {
	if n <= 0 {
		return ""
	}
	return csi + itoa(n) + "A"
}

func itoa(n int) string {
	if n == 0 {
		return "0"
	}
	var b [20]byte
	i := len(b)
	for n > 0 {
		i--
		b[i] = byte('0' + n%10)
		n /= 10
	}
	return string(b[i:])
}

// painter applies colours only when they are wanted.
type painter struct{ on bool }

func (p painter) paint(style, s string) string {
	if !p.on || s == "" || style == "" {
		return s
	}
	return style + s + sgrReset
}

// visibleLen counts the runes of s outside escape sequences. Every rune the
// live view prints is one column wide.
func visibleLen(s string) int {
	n := 0
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			i = skipEscape(s, i)
			continue
		}
		_, size := utf8.DecodeRuneInString(s[i:])
		i += size
		n++
	}
	return n
}

// skipEscape returns the index after the CSI sequence starting at i.
func skipEscape(s string, i int) int {
	j := i + 1
	if j < len(s) && s[j] == '[' {
		j++
		for j < len(s) && (s[j] < 0x40 || s[j] > 0x7e) {
			j++
		}
	}
	return min(j+1, len(s))
}

// fit cuts s to at most width visible columns, ending with "…" when cut.
// Escape sequences are kept (so colours are still reset); a line redrawn in
// place must never wrap, or the cursor arithmetic of the live view breaks.
func fit(s string, width int) string {
	if width <= 0 || visibleLen(s) <= width {
		return s
	}
	var b strings.Builder
	n := 0
	cut := false
	for i := 0; i < len(s); {
		if s[i] == 0x1b {
			j := skipEscape(s, i)
			b.WriteString(s[i:j])
			i = j
			continue
		}
		r, size := utf8.DecodeRuneInString(s[i:])
		i += size
		if cut {
			continue
		}
		if n == width-1 {
			b.WriteRune('…')
			cut = true
			continue
		}
		b.WriteRune(r)
		n++
	}
	return b.String()
}

// clean makes text from plugins and runbooks safe to draw: one line, runs
// of whitespace collapsed, and no control characters, which could move the
// cursor or recolour the terminal (an escape sequence in a progress
// message) and break the redraw: they are shown escaped (termtext).
func clean(s string) string {
	s = strings.Map(func(r rune) rune {
		if r == '\t' || r == '\n' || r == '\r' {
			return ' '
		}
		return r
	}, s)
	return strings.Join(strings.Fields(termtext.Escape(s)), " ")
}
