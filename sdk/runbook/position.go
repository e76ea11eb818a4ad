package runbook

import (
	"sort"
	"unicode/utf8"

	yaml "gopkg.in/yaml.v3"
)

// source is a runbook's text with a line index, for turning yaml.v3 node
// positions and offsets inside scalar values into file positions.
type source struct {
	file  string
	src   []byte
	lines []int // byte offset where each line starts
}

func newSource(file string, src []byte) *source {
	s := &source{file: file, src: src, lines: []int{0}}
	for i := 0; i < len(src); i++ {
		if n := lineBreak(src[i:]); n > 0 {
			i += n - 1
			s.lines = append(s.lines, i+1)
		}
	}
	return s
}

// lineBreak returns the length of the line break at the start of b, or 0.
// These are YAML's (and yaml.v3's) line breaks: \n, \r\n, a lone \r, and
// the Unicode NEL, LS and PS.
func lineBreak(b []byte) int {
	switch {
	case len(b) == 0:
		return 0
	case b[0] == '\n':
		return 1
	case b[0] == '\r':
		if len(b) > 1 && b[1] == '\n' {
			return 2
		}
		return 1
	case len(b) > 1 && b[0] == 0xC2 && b[1] == 0x85:
		return 2
	case len(b) > 2 && b[0] == 0xE2 && b[1] == 0x80 && (b[2] == 0xA8 || b[2] == 0xA9):
		return 3
	}
	return 0
}

// offset returns the byte offset of a 1-based line and column (columns
// count characters, as yaml.v3 does).
func (s *source) offset(line, col int) int {
	if line < 1 {
		return 0
	}
	if line > len(s.lines) {
		return len(s.src)
	}
	off := s.lines[line-1]
	for c := 1; c < col && off < len(s.src) && lineBreak(s.src[off:]) == 0; c++ {
		_, n := utf8.DecodeRune(s.src[off:])
		off += n
	}
	return off
}

// posAt returns the position of a byte offset.
func (s *source) posAt(off int) Pos {
	if off > len(s.src) {
		off = len(s.src)
	}
	line := sort.Search(len(s.lines), func(i int) bool { return s.lines[i] > off })
	start := s.lines[line-1]
	return Pos{File: s.file, Line: line, Col: utf8.RuneCount(s.src[start:off]) + 1}
}

// line returns the text of a 1-based line, without its line break.
func (s *source) line(n int) string {
	if n < 1 || n > len(s.lines) {
		return ""
	}
	start, end := s.lines[n-1], len(s.src)
	if n < len(s.lines) {
		end = s.lines[n]
	}
	for i := start; i < end; i++ {
		if lineBreak(s.src[i:]) > 0 {
			return string(s.src[start:i])
		}
	}
	return string(s.src[start:end])
}

func (s *source) pos(n *yaml.Node) Pos {
	return Pos{File: s.file, Line: n.Line, Col: n.Column}
}

// valuePos locates byte offset off of scalar n's value in the source. It
// aligns the value with the text from the node's start, skipping what YAML
// removes (quotes, escapes' backslashes, indentation and line folding);
// where the two cannot be aligned (an escape sequence before off), it
// falls back to the node's own position.
func (s *source) valuePos(n *yaml.Node, off int) Pos {
	if n.Kind != yaml.ScalarNode || n.Line == 0 || n.Style&yaml.TaggedStyle != 0 {
		return s.pos(n)
	}
	value := n.Value
	if off > len(value) {
		off = len(value)
	}
	i := s.offset(n.Line, n.Column)
	switch {
	case n.Style&(yaml.LiteralStyle|yaml.FoldedStyle) != 0:
		// The node starts at the | or > indicator; the text on the next line.
		if n.Line >= len(s.lines) {
			return s.pos(n)
		}
		i = s.lines[n.Line]
	case n.Style&(yaml.DoubleQuotedStyle|yaml.SingleQuotedStyle) != 0:
		i++
	}
	for j := 0; j < off; j++ {
		var ok bool
		if i, ok = s.align(i, value[j]); !ok {
			return s.pos(n)
		}
		i++
	}
	if off < len(value) {
		var ok bool
		if i, ok = s.align(i, value[off]); !ok {
			return s.pos(n)
		}
	}
	return s.posAt(i)
}

// align advances i to the next source byte equal to b, skipping only bytes
// YAML may drop from a scalar's value.
func (s *source) align(i int, b byte) (int, bool) {
	for ; i < len(s.src); i++ {
		c := s.src[i]
		if c == b {
			return i, true
		}
		switch c {
		case ' ', '\t', '\r', '\n', '\\', '"', '\'':
			continue
		}
		return i, false
	}
	return i, false
}
