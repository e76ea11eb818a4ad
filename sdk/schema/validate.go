package schema

import (
	"fmt"
	"math"
	"strconv"
	"strings"
	"time"
)

// Problem is one way a value does not match its schema.
type Problem struct {
	// Path is a JSON pointer (RFC 6901) to the offending value, "" for the root.
	Path string
	// Property is set when the problem is an unknown property: its name, so
	// the caller can point at the key rather than the value.
	Property string
	Message  string
}

func (p Problem) String() string {
	if p.Path == "" {
		return p.Message
	}
	return p.Path + ": " + p.Message
}

// Validate checks a JSON-like value (as produced by encoding/json or
// yaml.v3: map[string]any, []any, string, bool, numbers, nil) against s.
// Values at the JSON pointers in unknown are only known at run time and are
// accepted as they are.
func Validate(s *Schema, v any, unknown map[string]bool) []Problem {
	var ps []Problem
	validate(s, v, "", unknown, &ps)
	return ps
}

func validate(s *Schema, v any, path string, unknown map[string]bool, ps *[]Problem) {
	if s == nil || unknown[path] {
		return
	}
	add := func(format string, args ...any) {
		*ps = append(*ps, Problem{Path: path, Message: fmt.Sprintf(format, args...)})
	}
	if s.Type != "" && !typeMatches(s, v) {
		add("must be %s, not %s", article(s), Describe(v))
		return
	}
	if len(s.Enum) > 0 && !inEnum(s.Enum, v) {
		add("must be one of %s, not %s", enumList(s.Enum), short(v))
		return
	}
	switch x := v.(type) {
	case string:
		if s.Format == FormatDuration {
			if _, err := time.ParseDuration(x); err != nil {
				add("%q is not a duration (use Go syntax such as 90s, 15m or 1h30m)", x)
			}
		}
	case map[string]any:
		for _, r := range s.Required {
			if _, ok := x[r]; !ok {
				add("missing required property %q", r)
			}
		}
		for _, k := range sortedKeys(x) {
			ks, ok := s.Property(k)
			if !ok {
				msg := fmt.Sprintf("unknown property %q", k)
				if sug := Suggest(k, s.PropertyNames()); sug != "" {
					msg += fmt.Sprintf(" (did you mean %q?)", sug)
				}
				*ps = append(*ps, Problem{Path: path + "/" + EscapePointer(k), Property: k, Message: msg})
				continue
			}
			validate(ks, x[k], path+"/"+EscapePointer(k), unknown, ps)
		}
	case []any:
		if s.MinItems != nil && len(x) < *s.MinItems {
			add("must have at least %d item(s)", *s.MinItems)
		}
		for i, e := range x {
			validate(s.Items, e, path+"/"+strconv.Itoa(i), unknown, ps)
		}
	}
	if s.Minimum != nil {
		if f, ok := toFloat(v); ok && f < *s.Minimum {
			add("must be at least %v", *s.Minimum)
		}
	}
}

func typeMatches(s *Schema, v any) bool {
	switch s.Type {
	case String:
		_, ok := v.(string)
		return ok
	case Boolean:
		_, ok := v.(bool)
		return ok
	case Number:
		_, ok := toFloat(v)
		return ok
	case Integer:
		f, ok := toFloat(v)
		return ok && f == math.Trunc(f)
	case Array:
		_, ok := v.([]any)
		return ok
	case Object:
		_, ok := v.(map[string]any)
		return ok
	}
	return true
}

func toFloat(v any) (float64, bool) {
	switch n := v.(type) {
	case float64:
		return n, true
	case float32:
		return float64(n), true
	case int:
		return float64(n), true
	case int64:
		return float64(n), true
	case int32:
		return float64(n), true
	case uint64:
		return float64(n), true
	case uint:
		return float64(n), true
	}
	return 0, false
}

func inEnum(enum []any, v any) bool {
	for _, e := range enum {
		if e == v {
			return true
		}
		if a, ok := toFloat(e); ok {
			if b, ok := toFloat(v); ok && a == b {
				return true
			}
		}
	}
	return false
}

func enumList(enum []any) string {
	parts := make([]string, len(enum))
	for i, e := range enum {
		parts[i] = short(e)
	}
	return strings.Join(parts, ", ")
}

func article(s *Schema) string {
	switch s.Type {
	case Integer:
		return "an integer"
	case Array:
		return "a list"
	case Object:
		return "a mapping"
	case Boolean:
		return "a boolean (true or false)"
	case String:
		if s.Format == FormatDuration {
			return "a duration string"
		}
		return "a string"
	}
	return "a " + s.Type
}

// Describe names the kind of a JSON-like value for messages.
func Describe(v any) string {
	switch v.(type) {
	case nil:
		return "null"
	case string:
		return "a string"
	case bool:
		return "a boolean"
	case map[string]any:
		return "a mapping"
	case []any:
		return "a list"
	}
	if f, ok := toFloat(v); ok {
		if f == math.Trunc(f) {
			return "an integer"
		}
		return "a number"
	}
	return fmt.Sprintf("%T", v)
}

func short(v any) string {
	switch x := v.(type) {
	case string:
		return strconv.Quote(x)
	case nil:
		return "null"
	}
	return fmt.Sprint(v)
}

// EscapePointer escapes one JSON pointer segment.
func EscapePointer(s string) string {
	s = strings.ReplaceAll(s, "~", "~0")
	return strings.ReplaceAll(s, "/", "~1")
}

// SplitPointer splits a JSON pointer into unescaped segments.
func SplitPointer(p string) []string {
	if p == "" {
		return nil
	}
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	for i, s := range parts {
		s = strings.ReplaceAll(s, "~1", "/")
		parts[i] = strings.ReplaceAll(s, "~0", "~")
	}
	return parts
}
