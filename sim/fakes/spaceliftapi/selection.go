package spaceliftapi

import (
	"fmt"
	"strings"
	"unicode"
)

// field is one field of a GraphQL selection set: its name and, for an
// object field, the fields selected inside it. Arguments are skipped (the
// operation's arguments are read separately); aliases and fragments are not
// supported, and a query using them is refused rather than half-answered.
type field struct {
	name string
	sub  []field
}

// parseSelection parses the selection set that starts at the first "{" of
// s: `{ a b c { d } }`. It returns the fields and what follows the set.
func parseSelection(s string) ([]field, string, error) {
	s = strings.TrimLeftFunc(s, unicode.IsSpace)
	if !strings.HasPrefix(s, "{") {
		return nil, s, nil // a scalar field: no selection set
	}
	s = s[1:]
	var out []field
	for {
		s = strings.TrimLeftFunc(s, func(r rune) bool { return unicode.IsSpace(r) || r == ',' })
		switch {
		case s == "":
			return nil, "", fmt.Errorf("unterminated selection set")
		case s[0] == '}':
			return out, s[1:], nil
		case strings.HasPrefix(s, "..."):
			return nil, "", fmt.Errorf("fragments are not supported by this fake")
		}
		n := 0
		for n < len(s) && (s[n] == '_' || unicode.IsLetter(rune(s[n])) || unicode.IsDigit(rune(s[n]))) {
			n++
		}
		if n == 0 {
			return nil, "", fmt.Errorf("unexpected %q in selection set", s[:1])
		}
		f := field{name: s[:n]}
		s = strings.TrimLeftFunc(s[n:], unicode.IsSpace)
		if strings.HasPrefix(s, ":") {
			return nil, "", fmt.Errorf("aliases are not supported by this fake")
		}
		if strings.HasPrefix(s, "(") {
			end := strings.IndexByte(s, ')')
			if end < 0 {
				return nil, "", fmt.Errorf("unterminated arguments of %s", f.name)
			}
			s = s[end+1:]
		}
		sub, rest, err := parseSelection(s)
		if err != nil {
			return nil, "", err
		}
		f.sub, s = sub, rest
		out = append(out, f)
	}
}

// project answers a selection from an object's fields: only what was
// asked for, and an error naming the first field the type does not have,
// as a GraphQL server validates a query against its schema.
func project(typ string, sel []field, resolve func(name string) (any, bool)) (map[string]any, error) {
	out := map[string]any{}
	for _, f := range sel {
		v, ok := resolve(f.name)
		if !ok {
			return nil, fmt.Errorf("Cannot query field %q on type %q.", f.name, typ)
		}
		out[f.name] = v
	}
	return out, nil
}
