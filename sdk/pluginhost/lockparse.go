package pluginhost

import (
	"bytes"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"unicode/utf8"
)

// LockParseError is a lock file that cannot be used, with the position of
// the problem.
type LockParseError struct {
	// File is the lock file's path ("" when parsing bytes).
	File      string
	Line, Col int
	Msg       string
}

func (e *LockParseError) Error() string {
	file := e.File
	if file == "" {
		file = LockFileName
	}
	return fmt.Sprintf("%s:%d:%d: %s", file, e.Line, e.Col, e.Msg)
}

// ParseLock decodes and checks a lock file's contents: one JSON object with
// "version" (LockFormat) and "plugins", each plugin an object of the
// LockEntry fields with a sha256 of 64 hex digits. Unknown or repeated
// keys, wrong types and trailing content are refused; every error is a
// *LockParseError with the line and column of the problem.
func ParseLock(b []byte) (*LockFile, error) {
	p := &lockParser{src: b, dec: json.NewDecoder(bytes.NewReader(b))}
	p.dec.UseNumber()
	return p.file()
}

type lockParser struct {
	src []byte
	dec *json.Decoder
}

// next returns the next token and the offset where it starts.
func (p *lockParser) next() (json.Token, int, error) {
	off := p.offset()
	tok, err := p.dec.Token()
	if err != nil {
		var se *json.SyntaxError
		switch {
		case errors.As(err, &se):
			at := p.syntaxErrorAt(se)
			return nil, at, p.errAt(at, "not a valid lock file: %v", se)
		case err == io.EOF:
			return nil, off, p.errAt(off, "the lock file ends too early")
		case errors.Is(err, io.ErrUnexpectedEOF):
			return nil, off, p.errAt(off, "the lock file ends too early")
		}
		return nil, off, p.errAt(off, "not a valid lock file: %v", err)
	}
	return tok, off, nil
}

// syntaxErrorAt is the offset of the character a syntax error is about.
// encoding/json counts the offending byte as read (Offset one past it) when
// it decodes a value, and not when it reads a token (Offset at it): the
// character the message quotes tells which.
func (p *lockParser) syntaxErrorAt(se *json.SyntaxError) int {
	off := int(se.Offset)
	if _, rest, ok := strings.Cut(se.Error(), "invalid character '"); ok && rest != "" {
		c := rest[0]
		if c == '\\' && len(rest) > 1 {
			c = rest[1]
		}
		if off < len(p.src) && p.src[off] == c {
			return off
		}
	}
	return off - 1
}

func (p *lockParser) errAt(off int, format string, args ...any) error {
	off = min(max(off, 0), len(p.src))
	before := p.src[:off]
	line := 1 + bytes.Count(before, []byte{'\n'})
	col := 1 + utf8.RuneCount(before[bytes.LastIndexByte(before, '\n')+1:])
	return &LockParseError{Line: line, Col: col, Msg: fmt.Sprintf(format, args...)}
}

// object reads an object's opening brace (what names it in errors), then
// calls member for each key, refusing a key given twice.
func (p *lockParser) object(what string, member func(key string, keyOff int) error) error {
	tok, off, err := p.next()
	if err != nil {
		return err
	}
	if d, ok := tok.(json.Delim); !ok || d != '{' {
		return p.errAt(off, "%s must be an object, not %s", what, describeToken(tok))
	}
	seen := map[string]bool{}
	for {
		tok, off, err := p.next()
		if err != nil {
			return err
		}
		if d, ok := tok.(json.Delim); ok && d == '}' {
			return nil
		}
		key := tok.(string) // the decoder only returns strings in key position
		if seen[key] {
			return p.errAt(off, "%q is given twice in %s", key, what)
		}
		seen[key] = true
		if err := member(key, off); err != nil {
			return err
		}
	}
}

func (p *lockParser) str(what string) (string, error) {
	tok, off, err := p.next()
	if err != nil {
		return "", err
	}
	s, ok := tok.(string)
	if !ok {
		return "", p.errAt(off, "%s must be a string, not %s", what, describeToken(tok))
	}
	return s, nil
}

func (p *lockParser) integer(what string) (int, int, error) {
	tok, off, err := p.next()
	if err != nil {
		return 0, off, err
	}
	n, ok := tok.(json.Number)
	if !ok {
		return 0, off, p.errAt(off, "%s must be a number, not %s", what, describeToken(tok))
	}
	v, err := n.Int64()
	if err != nil || v < 0 || v > 1<<30 {
		return 0, off, p.errAt(off, "%s must be a small whole number, not %s", what, n)
	}
	return int(v), off, nil
}

func (p *lockParser) file() (*LockFile, error) {
	lf := &LockFile{Plugins: map[string]LockEntry{}}
	sawVersion, sawPlugins := false, false
	err := p.object("the lock file", func(key string, keyOff int) error {
		switch key {
		case "version":
			v, off, err := p.integer("version")
			if err != nil {
				return err
			}
			if v != LockFormat {
				return p.errAt(off, "lock file format version %d is not supported (this runbook reads version %d)", v, LockFormat)
			}
			lf.Version, sawVersion = v, true
		case "plugins":
			sawPlugins = true
			return p.object("plugins", func(name string, nameOff int) error {
				e, err := p.entry(name)
				if err != nil {
					return err
				}
				lf.Plugins[name] = e
				return nil
			})
		default:
			return p.errAt(keyOff, "unknown key %q (a lock file has version and plugins)", key)
		}
		return nil
	})
	if err != nil {
		return nil, err
	}
	if p.dec.More() {
		tok, off, err := p.next()
		if err != nil {
			return nil, err
		}
		return nil, p.errAt(off, "unexpected %s after the lock file's object", describeToken(tok))
	}
	switch {
	case !sawVersion:
		return nil, p.errAt(0, "the lock file has no version (want \"version\": %d)", LockFormat)
	case !sawPlugins:
		return nil, p.errAt(0, "the lock file has no plugins")
	}
	return lf, nil
}

func (p *lockParser) entry(name string) (LockEntry, error) {
	var e LockEntry
	what := "plugin " + name
	sawSum := false
	err := p.object(what, func(key string, keyOff int) error {
		var err error
		switch key {
		case "command":
			e.Command, err = p.str(what + ": command")
		case "path":
			e.Path, err = p.str(what + ": path")
		case "version":
			e.Version, err = p.str(what + ": version")
		case "protocol_version":
			e.ProtocolVersion, _, err = p.integer(what + ": protocol_version")
		case "sha256":
			off := p.offset()
			if e.SHA256, err = p.str(what + ": sha256"); err != nil {
				return err
			}
			if _, herr := hex.DecodeString(e.SHA256); herr != nil || len(e.SHA256) != 64 {
				return p.errAt(off, "%s: sha256 %q is not 64 hex digits", what, e.SHA256)
			}
			sawSum = true
		default:
			return p.errAt(keyOff, "%s: unknown key %q (an entry has command, path, version, protocol_version and sha256)", what, key)
		}
		return err
	})
	if err == nil && !sawSum {
		err = p.errAt(int(p.dec.InputOffset())-1, "%s: no sha256", what)
	}
	return e, err
}

// offset is where the next token starts.
func (p *lockParser) offset() int {
	off := int(p.dec.InputOffset())
	for off < len(p.src) && strings.IndexByte(" \t\r\n,:", p.src[off]) >= 0 {
		off++
	}
	return off
}

func describeToken(tok json.Token) string {
	switch t := tok.(type) {
	case json.Delim:
		if t == '[' {
			return "a list"
		}
		if t == '{' {
			return "an object"
		}
		return fmt.Sprintf("%q", string(t))
	case string:
		return fmt.Sprintf("the string %q", t)
	case json.Number:
		return "the number " + t.String()
	case bool:
		return fmt.Sprintf("%v", t)
	case nil:
		return "null"
	}
	return fmt.Sprintf("%v", tok)
}
