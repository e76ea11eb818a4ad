package runbook

import (
	"context"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

// What validation can evaluate (literals, inputs with defaults) it does, so
// that `validate` reports what `plan` or `run` would otherwise stop on.
func TestValidationEvaluatesWhatItCan(t *testing.T) {
	_, ds := parse(t, `version: 1
inputs:
  n: { type: number, default: 100000000 }
  given: { type: number }
steps:
  - id: a
    uses: core.log
    if: 'len(repeat(repeat("a", 999999), 999999)) > 0'
    with: { message: "${{ [1][5] }} and ${{ join(map(1..int(inputs.n), 'x'), '') }}" }
  - id: b
    uses: core.log
    with: { message: "${{ join(map(1..int(inputs.given), 'x'), '') }} ${{ [1][int(inputs.given)] }}" }
`)
	want := []string{
		`rb.yaml:8:10: if: evaluating "len(repeat(repeat(\"a\", 999999), 999999)) > 0": value too large: more than 4 MiB as JSON (1:5)`,
		`rb.yaml:9:27: with.message: evaluating "[1][5]": index out of range: 5 (array length is 1) (1:4)`,
		`rb.yaml:9:45: with.message: evaluating "join(map(1..int(inputs.n), 'x'), '')": memory budget exceeded (1:11)`,
	}
	if diff := cmp.Diff(want, messages(ds)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

// Expressions that read only inputs are evaluated with the values given
// before anything runs; a limit they hit is an error at their position.
func TestResolveInputsEvaluatesInputExpressions(t *testing.T) {
	rb, ds := parse(t, `version: 1
inputs:
  n: { type: number }
steps:
  - id: a
    uses: core.log
    if: inputs.n > 0
    with: { message: "x${{ join(map(1..int(inputs.n), 'x'), '') }}" }
`)
	if rb == nil {
		t.Fatal(ds)
	}
	if _, ds := ResolveInputs(rb, InputSources{Vars: []string{"n=10"}}); len(ds) > 0 {
		t.Fatalf("n=10: %v", ds)
	}
	_, ds = ResolveInputs(rb, InputSources{Vars: []string{"n=5000000"}})
	want := []string{`rb.yaml:8:28: with.message: evaluating "join(map(1..int(inputs.n), 'x'), '')": memory budget exceeded (1:11)`}
	if diff := cmp.Diff(want, messages(ds)); diff != "" {
		t.Errorf("(-want +got):\n%s", diff)
	}
}

func TestValidationStopsWhenItsContextEnds(t *testing.T) {
	var b strings.Builder
	b.WriteString("version: 1\nsteps:\n")
	for i := 0; i < 50; i++ {
		b.WriteString("  - { uses: core.log, with: { message: hi } }\n")
	}
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	opts, _ := testOptions()
	opts.Context = ctx
	rb, ds := Parse("rb.yaml", []byte(b.String()), opts)
	if rb != nil || len(ds) != 1 || ds[0].Message != "validation interrupted" {
		t.Errorf("got %v, %v; want only: validation interrupted", rb, messages(ds))
	}
}
