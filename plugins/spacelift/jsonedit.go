package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
)

// The installer config files are edited in place, byte for byte: only the
// values that change are rewritten (or a missing key inserted), so key
// order, formatting, number spelling and unknown fields stay exactly as the
// operator wrote them.

// jsonObject is a parsed JSON object: where it is in the document and where
// each member's value is.
type jsonObject struct {
	open, close int // offsets of '{' and '}'
	members     []jsonMember
}

type jsonMember struct {
	key        string
	keyStart   int // offset of the key's opening quote
	start, end int // the value's bytes: doc[start:end]
}

func (o *jsonObject) member(key string) (jsonMember, bool) {
	for _, m := range o.members {
		if m.key == key {
			return m, true
		}
	}
	return jsonMember{}, false
}

// parseObjectAt parses the object that starts at doc[pos] (after
// whitespace). doc must already be valid JSON.
func parseObjectAt(doc []byte, pos int) (*jsonObject, error) {
	p := &scanner{doc: doc, pos: pos}
	p.ws()
	if p.peek() != '{' {
		return nil, errors.New("not a JSON object")
	}
	o := &jsonObject{open: p.pos}
	p.pos++
	seen := map[string]bool{}
	for {
		p.ws()
		if p.peek() == '}' {
			o.close = p.pos
			return o, nil
		}
		if p.peek() == ',' {
			p.pos++
			p.ws()
		}
		keyStart := p.pos
		if err := p.str(); err != nil {
			return nil, err
		}
		var key string
		if err := json.Unmarshal(doc[keyStart:p.pos], &key); err != nil {
			return nil, err
		}
		if seen[key] {
			return nil, fmt.Errorf("key %q appears twice", key)
		}
		seen[key] = true
		p.ws()
		p.pos++ // ':'
		p.ws()
		start := p.pos
		if err := p.value(); err != nil {
			return nil, err
		}
		o.members = append(o.members, jsonMember{key: key, keyStart: keyStart, start: start, end: p.pos})
	}
}

// scanner skips over JSON values in a document known to be valid.
type scanner struct {
	doc []byte
	pos int
}

func (s *scanner) peek() byte {
	if s.pos >= len(s.doc) {
		return 0
	}
	return s.doc[s.pos]
}

func (s *scanner) ws() {
	for s.pos < len(s.doc) && strings.IndexByte(" \t\r\n", s.doc[s.pos]) >= 0 {
		s.pos++
	}
}

func (s *scanner) str() error {
	if s.peek() != '"' {
		return fmt.Errorf("expected a string at offset %d", s.pos)
	}
	for s.pos++; s.pos < len(s.doc); s.pos++ {
		switch s.doc[s.pos] {
		case '\\':
			s.pos++
		case '"':
			s.pos++
			return nil
		}
	}
	return errors.New("unterminated string")
}

func (s *scanner) value() error {
	switch c := s.peek(); {
	case c == '"':
		return s.str()
	case c == '{' || c == '[':
		depth := 0
		for s.pos < len(s.doc) {
			switch s.doc[s.pos] {
			case '"':
				if err := s.str(); err != nil {
					return err
				}
				continue
			case '{', '[':
				depth++
			case '}', ']':
				depth--
				if depth == 0 {
					s.pos++
					return nil
				}
			}
			s.pos++
		}
		return errors.New("unterminated object or array")
	default:
		for s.pos < len(s.doc) && strings.IndexByte(",}] \t\r\n", s.doc[s.pos]) < 0 {
			s.pos++
		}
		return nil
	}
}

// edit replaces doc[start:end] with text.
type edit struct {
	start, end int
	text       string
}

func applyEdits(doc []byte, edits []edit) []byte {
	sort.Slice(edits, func(i, j int) bool { return edits[i].start > edits[j].start })
	out := append([]byte(nil), doc...)
	for _, e := range edits {
		out = append(out[:e.start], append([]byte(e.text), out[e.end:]...)...)
	}
	return out
}

// setMember returns the edit that makes o[key] hold the JSON text value:
// the old value is replaced, or the key is appended to the object in the
// style (indentation) of its existing members. ok is false when the value
// is already there.
func setMember(doc []byte, o *jsonObject, key, value string) (e edit, ok bool) {
	if m, found := o.member(key); found {
		if string(doc[m.start:m.end]) == value {
			return edit{}, false
		}
		return edit{start: m.start, end: m.end, text: value}, true
	}
	k, _ := json.Marshal(key)
	if len(o.members) == 0 {
		return edit{start: o.open + 1, end: o.open + 1, text: string(k) + ": " + value}, true
	}
	last := o.members[len(o.members)-1]
	// Separate the new member the way the last one is separated from the
	// one before it (or, for a single member, from the opening brace).
	var sep string
	if n := len(o.members); n > 1 {
		sep = string(doc[o.members[n-2].end:last.keyStart])
	} else {
		ws := doc[o.open+1 : last.keyStart]
		if i := bytes.LastIndexByte(ws, '\n'); i >= 0 {
			ws = ws[i:]
		}
		sep = "," + string(ws)
	}
	colon := ": "
	if gap := doc[last.keyStart:last.start]; !bytes.Contains(gap, []byte(": ")) {
		colon = ":"
	}
	return edit{start: last.end, end: last.end, text: sep + string(k) + colon + value}, true
}
