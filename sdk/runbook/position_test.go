package runbook

import (
	"strings"
	"testing"
	"unicode/utf8"

	"github.com/google/go-cmp/cmp"
)

// posOf returns the position of the first occurrence of marker in src.
func posOf(src, marker string) Pos { return posAtIndex(src, strings.Index(src, marker)) }

func posAtIndex(src string, i int) Pos {
	line := strings.Count(src[:i], "\n") + 1
	start := strings.LastIndex(src[:i], "\n") + 1
	return Pos{File: "rb.yaml", Line: line, Col: utf8.RuneCountInString(src[start:i]) + 1}
}

// TestExpressionPositions: a problem inside an expression is reported at
// its exact place in the file, whatever the YAML scalar style.
func TestExpressionPositions(t *testing.T) {
	t.Parallel()
	head := "version: 1\ninputs:\n  region: { type: string, default: x }\nsteps:\n  - id: a\n    uses: core.log\n"
	tests := map[string]struct {
		with   string
		marker string // where the diagnostic must point
	}{
		"plain":                   {"    with: { message: hi }\n    if: inputs.region == 'x' && inputs.zzz == 'y'\n", "zzz"},
		"plain template":          {"    with:\n      message: region ${{ inputs.region }} and ${{ inputs.zzz }}\n", "zzz"},
		"double quoted":           {"    with: { message: \"say \\\"hi\\\" from ${{ inputs.zzz }}\" }\n", "zzz"},
		"single quoted":           {"    with: { message: 'it''s ${{ inputs.zzz }}' }\n", "zzz"},
		"non-ASCII before":        {"    with: { message: \"déjà vu → ${{ inputs.zzz }}\" }\n", "zzz"},
		"literal block":           {"    with:\n      message: |\n        line one ${{ inputs.region }}\n\n        line three ${{ inputs.zzz }}\n", "zzz"},
		"folded block":            {"    with:\n      message: >-\n        first\n        second ${{ inputs.zzz }}\n", "zzz"},
		"multi-line plain":        {"    with:\n      message: first line\n        continues ${{ inputs.zzz }}\n", "zzz"},
		"multi-line expression":   {"    if: >-\n      inputs.region == 'x' &&\n      inputs.zzz == 'y'\n    with: { message: hi }\n", "zzz"},
		"second of two":           {"    with: { message: \"${{ inputs.zzz }} ${{ inputs.zzz }}x\" }\n", "zzz"},
		"compile error":           {"    with: { message: \"${{ inputs.region + 1 }}\" }\n", "+ 1"},
		"unterminated":            {"    with: { message: \"a ${{ inputs.region\" }\n", "${{"},
		"if wrapped in ${{ }}":    {"    if: \"${{ inputs.zzz }}\"\n    with: { message: hi }\n", "zzz"},
		"escape before: fallback": {"    with: { message: \"tab\\there ${{ inputs.zzz }}\" }\n", "\"tab"},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			src := head + tc.with
			_, ds := parse(t, src)
			if len(ds) == 0 {
				t.Fatal("no diagnostic")
			}
			want := posOf(src, tc.marker)
			if name == "second of two" {
				// Both are reported, each at its own place.
				first := strings.Index(src, "zzz")
				want2 := posAtIndex(src, first+1+strings.Index(src[first+1:], "zzz"))
				if diff := cmp.Diff([]Pos{want, want2}, []Pos{ds[0].Pos, ds[1].Pos}); diff != "" {
					t.Errorf("(-want +got):\n%s\n%s", diff, carets(src, ds))
				}
				return
			}
			if ds[0].Pos != want {
				t.Errorf("at %v, want %v\n%s", ds[0].Pos, want, carets(src, ds))
			}
		})
	}
}
