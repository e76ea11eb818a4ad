// Package vt is a small terminal emulator for tests: it interprets the
// subset of VT100/ANSI output the live view writes (text, CR, LF, BS, TAB,
// cursor movement, erase in line and display, SGR attributes) into a grid of
// cells, with the lines scrolled off the top kept as scrollback. Tests use
// it to assert what an operator would actually see, redraws and all.
//
// Any control sequence outside that subset is recorded in Unknown, so a
// test can fail when the renderer starts emitting something the emulator
// (and perhaps a real terminal) would not understand.
package vt

import (
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"
)

// Screen is the emulated terminal.
type Screen struct {
	width, height int
	// ONLCR: a line feed also returns the carriage, as a tty's output
	// processing does by default (stty onlcr).
	ONLCR bool

	grid       [][]cell
	scrollback [][]cell
	row, col   int
	// wrapNext: the last column was written; the next printable character
	// wraps first (xterm's deferred wrap).
	wrapNext bool
	attr     attr

	// Unknown lists control sequences the emulator does not implement.
	Unknown []string
	// SGRs counts Select Graphic Rendition sequences (colours, bold, dim).
	SGRs int

	pending []byte // an incomplete escape sequence or UTF-8 rune
}

type attr struct {
	bold, dim bool
	fg        int // 0: default, 30-37/90-97
}

type cell struct {
	r rune
	a attr
}

// New returns a blank screen of the given size, with ONLCR on.
func New(width, height int) *Screen {
	s := &Screen{width: width, height: height, ONLCR: true}
	s.grid = make([][]cell, height)
	for i := range s.grid {
		s.grid[i] = s.blankLine()
	}
	return s
}

func (s *Screen) blankLine() []cell {
	l := make([]cell, s.width)
	for i := range l {
		l[i] = cell{r: ' '}
	}
	return l
}

// Write interprets p. It never fails.
func (s *Screen) Write(p []byte) (int, error) {
	n := len(p)
	data := append(s.pending, p...)
	s.pending = nil
	for len(data) > 0 {
		b := data[0]
		switch {
		case b == 0x1b:
			used, ok := s.escape(data)
			if !ok {
				s.pending = append([]byte(nil), data...)
				return n, nil
			}
			data = data[used:]
			continue
		case b == '\r':
			s.col, s.wrapNext = 0, false
		case b == '\n':
			s.lineFeed()
			if s.ONLCR {
				s.col = 0
			}
			s.wrapNext = false
		case b == '\b':
			if s.col > 0 {
				s.col--
			}
			s.wrapNext = false
		case b == '\t':
			s.col = min((s.col/8+1)*8, s.width-1)
		case b == 0x07: // bell
		case b < 0x20 || b == 0x7f:
			s.Unknown = append(s.Unknown, fmt.Sprintf("control 0x%02x", b))
		default:
			if !utf8.FullRune(data) {
				s.pending = append([]byte(nil), data...)
				return n, nil
			}
			r, size := utf8.DecodeRune(data)
			s.put(r)
			data = data[size:]
			continue
		}
		data = data[1:]
	}
	return n, nil
}

func (s *Screen) put(r rune) {
	if s.wrapNext {
		s.col = 0
		s.lineFeed()
		s.wrapNext = false
	}
	s.grid[s.row][s.col] = cell{r: r, a: s.attr}
	if s.col == s.width-1 {
		s.wrapNext = true
	} else {
		s.col++
	}
}

func (s *Screen) lineFeed() {
	if s.row < s.height-1 {
		s.row++
		return
	}
	s.scrollback = append(s.scrollback, s.grid[0])
	copy(s.grid, s.grid[1:])
	s.grid[s.height-1] = s.blankLine()
}

// escape interprets the sequence at the start of data; ok is false when it
// is incomplete.
func (s *Screen) escape(data []byte) (used int, ok bool) {
	if len(data) < 2 {
		return 0, false
	}
	if data[1] != '[' {
		switch data[1] {
		case '7', '8', '=', '>': // save/restore cursor, keypad modes: unused here
			s.Unknown = append(s.Unknown, "ESC "+string(data[1]))
			return 2, true
		}
		s.Unknown = append(s.Unknown, fmt.Sprintf("ESC %q", data[1]))
		return 2, true
	}
	// CSI: parameters and intermediates, then a final byte 0x40-0x7e.
	i := 2
	for i < len(data) && (data[i] < 0x40 || data[i] > 0x7e) {
		i++
	}
	if i == len(data) {
		return 0, false
	}
	params, final := string(data[2:i]), data[i]
	s.csi(params, final)
	return i + 1, true
}

func (s *Screen) csi(params string, final byte) {
	private := strings.HasPrefix(params, "?")
	nums := func(def int) []int {
		var out []int
		for _, p := range strings.Split(strings.TrimPrefix(params, "?"), ";") {
			if p == "" {
				out = append(out, def)
				continue
			}
			v, err := strconv.Atoi(p)
			if err != nil {
				v = def
			}
			out = append(out, v)
		}
		return out
	}
	arg := func(def int) int {
		v := nums(def)[0]
		if v == 0 && def == 1 {
			v = 1
		}
		return v
	}
	if private {
		if (final == 'l' || final == 'h') && params == "?25" { // cursor visibility
			return
		}
		s.Unknown = append(s.Unknown, "CSI "+params+string(final))
		return
	}
	s.wrapNext = false
	switch final {
	case 'A':
		s.row = max(0, s.row-arg(1))
	case 'B':
		s.row = min(s.height-1, s.row+arg(1))
	case 'C':
		s.col = min(s.width-1, s.col+arg(1))
	case 'D':
		s.col = max(0, s.col-arg(1))
	case 'G':
		s.col = min(s.width-1, max(0, arg(1)-1))
	case 'H', 'f':
		n := nums(1)
		r, c := n[0], 1
		if len(n) > 1 {
			c = n[1]
		}
		s.row = min(s.height-1, max(0, r-1))
		s.col = min(s.width-1, max(0, c-1))
	case 'K':
		switch arg(0) {
		case 0:
			s.clear(s.row, s.col, s.width)
		case 1:
			s.clear(s.row, 0, s.col+1)
		case 2:
			s.clear(s.row, 0, s.width)
		}
	case 'J':
		switch arg(0) {
		case 0:
			s.clear(s.row, s.col, s.width)
			for r := s.row + 1; r < s.height; r++ {
				s.clear(r, 0, s.width)
			}
		case 1:
			for r := 0; r < s.row; r++ {
				s.clear(r, 0, s.width)
			}
			s.clear(s.row, 0, s.col+1)
		case 2, 3:
			for r := 0; r < s.height; r++ {
				s.clear(r, 0, s.width)
			}
		}
	case 'm':
		s.SGRs++
		for _, v := range nums(0) {
			switch {
			case v == 0:
				s.attr = attr{}
			case v == 1:
				s.attr.bold = true
			case v == 2:
				s.attr.dim = true
			case v == 22:
				s.attr.bold, s.attr.dim = false, false
			case v == 39:
				s.attr.fg = 0
			case v >= 30 && v <= 37, v >= 90 && v <= 97:
				s.attr.fg = v
			}
		}
	default:
		s.Unknown = append(s.Unknown, "CSI "+params+string(final))
	}
}

func (s *Screen) clear(row, from, to int) {
	for c := from; c < to && c < s.width; c++ {
		s.grid[row][c] = cell{r: ' '}
	}
}

// Lines returns the visible screen, one string per row, trailing spaces
// removed.
func (s *Screen) Lines() []string { return render(s.grid) }

// Scrollback returns the lines scrolled off the top, oldest first.
func (s *Screen) Scrollback() []string { return render(s.scrollback) }

// All is the scrollback followed by the screen, with trailing blank rows
// dropped: the whole transcript an operator could scroll through.
func (s *Screen) All() []string {
	all := append(s.Scrollback(), s.Lines()...)
	for len(all) > 0 && all[len(all)-1] == "" {
		all = all[:len(all)-1]
	}
	return all
}

// String is All joined with newlines.
func (s *Screen) String() string { return strings.Join(s.All(), "\n") }

// Cursor returns the cursor's row and column (0-based).
func (s *Screen) Cursor() (row, col int) { return s.row, s.col }

// FG returns the foreground colour code of the first cell of the line
// (on screen, 0-based) holding needle, at needle's first rune; 0 for the
// default colour or if needle is not on screen.
func (s *Screen) FG(needle string) int {
	for _, l := range s.grid {
		text := []rune(renderLine(l))
		idx := strings.Index(string(text), needle)
		if idx < 0 {
			continue
		}
		col := utf8.RuneCountInString(string(text)[:idx])
		return l[col].a.fg
	}
	return 0
}

func render(lines [][]cell) []string {
	out := make([]string, len(lines))
	for i, l := range lines {
		out[i] = renderLine(l)
	}
	return out
}

func renderLine(l []cell) string {
	var b strings.Builder
	for _, c := range l {
		b.WriteRune(c.r)
	}
	return strings.TrimRight(b.String(), " ")
}
