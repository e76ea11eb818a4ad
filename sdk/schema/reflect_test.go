package schema

import (
	"reflect"
	"testing"
	"time"
)

type inner struct {
	A string `json:"a" required:"true"`
}

type Exported struct {
	B int `json:"b"`
}

type outer struct {
	inner
	*Exported
	C       time.Duration `json:"c" default:"5s"`
	Skipped string        `json:"-"`
	hidden  string
}

func TestForPromotesEmbeddedFields(t *testing.T) {
	s, err := For(reflect.TypeFor[outer]())
	if err != nil {
		t.Fatal(err)
	}
	got := s.PropertyNames()
	if !reflect.DeepEqual(got, []string{"a", "b", "c"}) {
		t.Fatalf("properties = %v", got)
	}
	if !s.IsRequired("a") || s.Properties["c"].Format != FormatDuration || s.Properties["c"].Default != "5s" {
		t.Fatalf("schema = %+v", s)
	}
	_ = outer{}.hidden
}

func TestValidateProblems(t *testing.T) {
	s := MustFor[outer]()
	probs := Validate(s, map[string]any{"b": "x", "c": "soon", "d": 1}, nil)
	if len(probs) != 4 { // missing a, b type, c duration, unknown d
		t.Fatalf("problems = %v", probs)
	}
	if probs := Validate(s, map[string]any{"a": nil}, map[string]bool{"/a": true}); len(probs) != 0 {
		t.Fatalf("unknown value reported: %v", probs)
	}
}
