// Package schema is the small JSON Schema subset runbook uses to describe
// action parameters and outputs: derived from Go structs on the plugin side,
// checked against `with` values on the host side, and published by
// `runbook schema` for editors.
//
// Supported keywords: type, description, enum, default, format ("duration"),
// properties, required, additionalProperties (false or a schema), items,
// minimum, minItems, writeOnly (a secret value). Anything else is ignored.
package schema

import (
	"encoding/json"
	"fmt"
	"sort"
)

// Type names as JSON Schema spells them. The empty type accepts any value.
const (
	String  = "string"
	Number  = "number"
	Integer = "integer"
	Boolean = "boolean"
	Array   = "array"
	Object  = "object"
)

// FormatDuration marks a string parsed by time.ParseDuration ("90s", "15m").
const FormatDuration = "duration"

// Schema describes one value.
type Schema struct {
	Type        string             `json:"type,omitempty"`
	Description string             `json:"description,omitempty"`
	Enum        []any              `json:"enum,omitempty"`
	Default     any                `json:"default,omitempty"`
	Format      string             `json:"format,omitempty"`
	Properties  map[string]*Schema `json:"properties,omitempty"`
	Required    []string           `json:"required,omitempty"`
	Items       *Schema            `json:"items,omitempty"`
	Minimum     *float64           `json:"minimum,omitempty"`
	MinItems    *int               `json:"minItems,omitempty"`
	// WriteOnly marks a secret: its value is redacted wherever it is shown.
	WriteOnly bool `json:"writeOnly,omitempty"`

	// Closed objects reject properties they do not declare
	// ("additionalProperties": false). Additional, when set, is the schema
	// of every undeclared property (a map).
	Closed     bool    `json:"-"`
	Additional *Schema `json:"-"`

	// Order keeps the declaration order of Properties for documentation and
	// "did you mean" suggestions. It is serialised as "x-order".
	Order []string `json:"x-order,omitempty"`
}

type schemaJSON Schema

// MarshalJSON writes additionalProperties from Closed/Additional.
func (s *Schema) MarshalJSON() ([]byte, error) {
	type wire struct {
		*schemaJSON
		AdditionalProperties any `json:"additionalProperties,omitempty"`
	}
	w := wire{schemaJSON: (*schemaJSON)(s)}
	switch {
	case s.Additional != nil:
		w.AdditionalProperties = s.Additional
	case s.Closed:
		w.AdditionalProperties = false
	}
	return json.Marshal(w)
}

// UnmarshalJSON reads additionalProperties into Closed/Additional.
func (s *Schema) UnmarshalJSON(b []byte) error {
	type wire struct {
		*schemaJSON
		AdditionalProperties json.RawMessage `json:"additionalProperties,omitempty"`
	}
	w := wire{schemaJSON: (*schemaJSON)(s)}
	if err := json.Unmarshal(b, &w); err != nil {
		return err
	}
	switch ap := string(w.AdditionalProperties); ap {
	case "", "true":
	case "false":
		s.Closed = true
	default:
		s.Additional = new(Schema)
		if err := json.Unmarshal(w.AdditionalProperties, s.Additional); err != nil {
			return fmt.Errorf("additionalProperties: %w", err)
		}
	}
	return nil
}

// PropertyNames returns the declared property names in declaration order
// (Order first, then any others sorted).
func (s *Schema) PropertyNames() []string {
	if s == nil {
		return nil
	}
	seen := make(map[string]bool, len(s.Properties))
	names := make([]string, 0, len(s.Properties))
	for _, n := range s.Order {
		if _, ok := s.Properties[n]; ok && !seen[n] {
			names = append(names, n)
			seen[n] = true
		}
	}
	var rest []string
	for n := range s.Properties {
		if !seen[n] {
			rest = append(rest, n)
		}
	}
	sort.Strings(rest)
	return append(names, rest...)
}

// IsRequired reports whether name is a required property.
func (s *Schema) IsRequired(name string) bool {
	for _, r := range s.Required {
		if r == name {
			return true
		}
	}
	return false
}

// Property returns the schema of a property, or of undeclared properties for
// an open map, or nil if the object does not allow it.
func (s *Schema) Property(name string) (*Schema, bool) {
	if s == nil {
		return nil, true
	}
	if p, ok := s.Properties[name]; ok {
		return p, true
	}
	if s.Additional != nil {
		return s.Additional, true
	}
	if s.Closed {
		return nil, false
	}
	return &Schema{}, true
}

// SecretPaths lists the JSON pointers of writeOnly values under s (array
// items as "/*"). The host redacts the values it finds there.
func (s *Schema) SecretPaths() []string {
	var out []string
	var walk func(s *Schema, p string)
	walk = func(s *Schema, p string) {
		if s == nil {
			return
		}
		if s.WriteOnly {
			out = append(out, p)
			return
		}
		for _, n := range s.PropertyNames() {
			walk(s.Properties[n], p+"/"+EscapePointer(n))
		}
		if s.Additional != nil {
			walk(s.Additional, p+"/*")
		}
		walk(s.Items, p+"/*")
	}
	walk(s, "")
	return out
}
