package runbook

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	yaml "gopkg.in/yaml.v3"
)

// isJSONFile reports whether a file is meant to be JSON: its name ends in
// .json. Such a file is parsed as strict JSON, not as YAML (which would
// accept trailing commas, unquoted keys, single quotes and NaN).
func isJSONFile(name string) bool {
	return strings.EqualFold(filepath.Ext(name), ".json")
}

// utf8BOM may start a JSON file written by some editors; RFC 8259 lets a
// parser ignore it.
var utf8BOM = []byte{0xEF, 0xBB, 0xBF}

// parseJSON parses the source as one strict JSON value (encoding/json)
// into yaml.v3 nodes carrying their line and column, so that a JSON file
// goes through the same checks and conversions as YAML and its problems
// are reported at their position. It returns nil for a file holding only
// white space; ok is false after a syntax error was reported.
func (d *decoder) parseJSON() (*yaml.Node, bool) {
	base := 0
	if bytes.HasPrefix(d.src, utf8BOM) {
		base = len(utf8BOM)
	}
	src := d.src[base:]
	if len(bytes.TrimLeft(src, " \t\r\n")) == 0 {
		return nil, true
	}
	// Syntax first, over the whole file (trailing data included): its
	// error carries the byte offset that the position is computed from.
	var raw json.RawMessage
	if err := json.Unmarshal(src, &raw); err != nil {
		var se *json.SyntaxError
		if errors.As(err, &se) {
			d.jsonError(base, se)
		} else {
			d.add(Pos{File: d.file, Line: 1, Col: 1}, Error, "JSON: %v", err)
		}
		return nil, false
	}
	p := &jsonParser{d: d, base: base, src: src, dec: json.NewDecoder(bytes.NewReader(src))}
	p.dec.UseNumber()
	n, err := p.value()
	if err != nil {
		// The syntax was checked above: only a bug gets here.
		d.add(d.posAt(base+int(p.dec.InputOffset())), Error, "JSON: %v", err)
		return nil, false
	}
	return n, true
}

// jsonError reports a JSON syntax error at the byte it names; a } or ]
// after a comma is reported at the comma, which is what is wrong.
func (d *decoder) jsonError(base int, se *json.SyntaxError) {
	off := base + int(se.Offset)
	if se.Offset > 0 {
		off-- // Offset counts the byte that broke the syntax
	}
	if off < len(d.src) && (d.src[off] == '}' || d.src[off] == ']') {
		i := off - 1
		for i >= base && strings.IndexByte(" \t\r\n", d.src[i]) >= 0 {
			i--
		}
		if i >= base && d.src[i] == ',' {
			d.add(d.posAt(i), Error, "JSON syntax error: a comma before %c (JSON allows no trailing comma)", d.src[off])
			return
		}
	}
	d.add(d.posAt(off), Error, "JSON syntax error: %s", strings.TrimPrefix(se.Error(), "json: "))
}

// jsonParser turns encoding/json's token stream into nodes. Tokens carry
// no position; the offset after the previous token, past white space and
// the separators the decoder consumes silently (, and :), is where the
// next one starts.
type jsonParser struct {
	d    *decoder
	base int
	src  []byte
	dec  *json.Decoder
}

func (p *jsonParser) next() (json.Token, Pos, error) {
	off := int(p.dec.InputOffset())
	for off < len(p.src) && strings.IndexByte(" \t\r\n,:", p.src[off]) >= 0 {
		off++
	}
	tok, err := p.dec.Token()
	return tok, p.d.posAt(p.base + off), err
}

func (p *jsonParser) value() (*yaml.Node, error) {
	tok, at, err := p.next()
	if err != nil {
		return nil, err
	}
	return p.node(tok, at)
}

func (p *jsonParser) node(tok json.Token, at Pos) (*yaml.Node, error) {
	n := &yaml.Node{Line: at.Line, Column: at.Col}
	switch x := tok.(type) {
	case json.Delim:
		n.Style = yaml.FlowStyle
		switch x {
		case '{':
			n.Kind, n.Tag = yaml.MappingNode, "!!map"
			for p.dec.More() {
				k, kat, err := p.next()
				if err != nil {
					return nil, err
				}
				key, ok := k.(string)
				if !ok {
					return nil, fmt.Errorf("expected an object key, got %v", k)
				}
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				kn := &yaml.Node{Kind: yaml.ScalarNode, Tag: "!!str", Value: key, Style: yaml.DoubleQuotedStyle, Line: kat.Line, Column: kat.Col}
				n.Content = append(n.Content, kn, v)
			}
		case '[':
			n.Kind, n.Tag = yaml.SequenceNode, "!!seq"
			for p.dec.More() {
				v, err := p.value()
				if err != nil {
					return nil, err
				}
				n.Content = append(n.Content, v)
			}
		default:
			return nil, fmt.Errorf("unexpected %v", x)
		}
		if _, _, err := p.next(); err != nil { // the closing } or ]
			return nil, err
		}
		return n, nil
	case string:
		n.Kind, n.Tag, n.Value, n.Style = yaml.ScalarNode, "!!str", x, yaml.DoubleQuotedStyle
	case json.Number:
		// An integer beyond int64 is a float, as yaml.v3 would resolve it.
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!float", string(x)
		if _, err := strconv.ParseInt(n.Value, 10, 64); err == nil {
			n.Tag = "!!int"
		}
	case bool:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!bool", fmt.Sprint(x)
	case nil:
		n.Kind, n.Tag, n.Value = yaml.ScalarNode, "!!null", "null"
	default:
		return nil, fmt.Errorf("unexpected token %v", tok)
	}
	return n, nil
}
