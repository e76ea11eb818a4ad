package schema

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"
	"strings"
	"time"
)

var (
	durationType = reflect.TypeFor[time.Duration]()
	timeType     = reflect.TypeFor[time.Time]()
	rawType      = reflect.TypeFor[json.RawMessage]()
)

// For derives the schema of a Go type. Struct fields are named by their
// `json` tag and described by these tags:
//
//	doc:"what it is"        description
//	required:"true"         the property must be present
//	enum:"a,b,c"            allowed values (parsed to the field's type)
//	default:"v"             default value (parsed to the field's type)
//	secret:"true"           the value is redacted wherever it is shown
//	min:"1"                 minimum (numbers) or minItems (arrays)
//
// time.Duration is a string in Go duration syntax ("90s"); time.Time is an
// RFC 3339 string; any and json.RawMessage accept any value. Structs are
// closed: unknown properties are errors. Maps with string keys are open
// objects.
func For(t reflect.Type) (*Schema, error) {
	return forType(t, map[reflect.Type]bool{})
}

// MustFor is For for types known at compile time; it panics on an
// unsupported type, which is a programming error in the plugin.
func MustFor[T any]() *Schema {
	s, err := For(reflect.TypeFor[T]())
	if err != nil {
		panic(err)
	}
	return s
}

func forType(t reflect.Type, visiting map[reflect.Type]bool) (*Schema, error) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t {
	case durationType:
		return &Schema{Type: String, Format: FormatDuration}, nil
	case timeType:
		return &Schema{Type: String, Format: "date-time"}, nil
	case rawType:
		return &Schema{}, nil
	}
	switch t.Kind() {
	case reflect.String:
		return &Schema{Type: String}, nil
	case reflect.Bool:
		return &Schema{Type: Boolean}, nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return &Schema{Type: Integer}, nil
	case reflect.Float32, reflect.Float64:
		return &Schema{Type: Number}, nil
	case reflect.Interface:
		return &Schema{}, nil
	case reflect.Slice, reflect.Array:
		items, err := forType(t.Elem(), visiting)
		if err != nil {
			return nil, err
		}
		return &Schema{Type: Array, Items: items}, nil
	case reflect.Map:
		if t.Key().Kind() != reflect.String {
			return nil, fmt.Errorf("schema: map key of %s must be a string", t)
		}
		v, err := forType(t.Elem(), visiting)
		if err != nil {
			return nil, err
		}
		return &Schema{Type: Object, Additional: v}, nil
	case reflect.Struct:
		if visiting[t] {
			return nil, fmt.Errorf("schema: recursive type %s", t)
		}
		visiting[t] = true
		defer delete(visiting, t)
		s := &Schema{Type: Object, Closed: true, Properties: map[string]*Schema{}}
		if err := addFields(s, t, visiting); err != nil {
			return nil, err
		}
		return s, nil
	}
	return nil, fmt.Errorf("schema: unsupported type %s", t)
}

func addFields(s *Schema, t reflect.Type, visiting map[reflect.Type]bool) error {
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		// encoding/json promotes the fields of embedded structs even when
		// the embedded type itself is unexported; so do we.
		if !f.IsExported() && !(f.Anonymous && indirect(f.Type).Kind() == reflect.Struct) {
			continue
		}
		name, embedded := fieldName(f)
		if name == "-" {
			continue
		}
		if embedded {
			et := f.Type
			for et.Kind() == reflect.Pointer {
				et = et.Elem()
			}
			if err := addFields(s, et, visiting); err != nil {
				return err
			}
			continue
		}
		ps, err := forType(f.Type, visiting)
		if err != nil {
			return fmt.Errorf("%s.%s: %w", t.Name(), f.Name, err)
		}
		ps.Description = f.Tag.Get("doc")
		if f.Tag.Get("secret") == "true" {
			ps.WriteOnly = true
		}
		if e := f.Tag.Get("enum"); e != "" {
			for _, v := range strings.Split(e, ",") {
				pv, err := parseTagValue(ps, v)
				if err != nil {
					return fmt.Errorf("%s.%s: enum: %w", t.Name(), f.Name, err)
				}
				ps.Enum = append(ps.Enum, pv)
			}
		}
		if d, ok := f.Tag.Lookup("default"); ok {
			pv, err := parseTagValue(ps, d)
			if err != nil {
				return fmt.Errorf("%s.%s: default: %w", t.Name(), f.Name, err)
			}
			ps.Default = pv
		}
		if m := f.Tag.Get("min"); m != "" {
			n, err := strconv.ParseFloat(m, 64)
			if err != nil {
				return fmt.Errorf("%s.%s: min: %w", t.Name(), f.Name, err)
			}
			if ps.Type == Array {
				k := int(n)
				ps.MinItems = &k
			} else {
				ps.Minimum = &n
			}
		}
		if f.Tag.Get("required") == "true" {
			s.Required = append(s.Required, name)
		}
		s.Properties[name] = ps
		s.Order = append(s.Order, name)
	}
	return nil
}

func fieldName(f reflect.StructField) (name string, embedded bool) {
	tag := f.Tag.Get("json")
	name, _, _ = strings.Cut(tag, ",")
	if name == "" && f.Anonymous {
		return "", true
	}
	if name == "" {
		name = f.Name
	}
	return name, false
}

func parseTagValue(s *Schema, v string) (any, error) {
	switch s.Type {
	case Integer:
		n, err := strconv.ParseInt(v, 10, 64)
		return float64(n), err
	case Number:
		return strconv.ParseFloat(v, 64)
	case Boolean:
		return strconv.ParseBool(v)
	case String:
		if s.Format == FormatDuration {
			if _, err := time.ParseDuration(v); err != nil {
				return nil, err
			}
		}
		return v, nil
	}
	var out any
	if err := json.Unmarshal([]byte(v), &out); err != nil {
		return nil, err
	}
	return out, nil
}

func indirect(t reflect.Type) reflect.Type {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	return t
}
