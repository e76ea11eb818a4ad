package runbook

import (
	"fmt"
	"strings"
	"testing"
)

// generateRunbook writes a runbook of n steps with expressions in every
// step: an if over an input and the previous step's status, `with`
// templates reading inputs and the previous step's typed outputs, and a
// parallel group every 10 steps.
func generateRunbook(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: generated\ninputs:\n  region: { type: string, default: eu-west-3 }\n  count: { type: number, default: 2 }\n  enabled: { type: bool, default: true }\nplugins:\n  aws: { command: runbook-plugin-aws }\nsteps:\n")
	for i := 0; i < n; {
		if i%10 == 9 && i+2 < n {
			fmt.Fprintf(&b, "  - id: g%d\n    if: inputs.enabled\n    parallel:\n", i)
			for j := 0; j < 2; j++ {
				fmt.Fprintf(&b, "      - id: s%d\n        uses: core.log\n        with: { message: \"step %d in ${{ inputs.region }} after ${{ steps.s%d.outputs.status }}\" }\n", i+j+1, i+j+1, i-1)
			}
			i += 3
			continue
		}
		fmt.Fprintf(&b, "  - id: s%d\n    uses: aws.ecs_service_scale\n", i)
		if i > 0 {
			prev := fmt.Sprintf("s%d", i-1)
			if (i-1)%10 == 9 {
				prev = fmt.Sprintf("s%d", i-2)
			}
			fmt.Fprintf(&b, "    if: inputs.enabled && steps.%s.status == \"succeeded\"\n", prev)
		}
		fmt.Fprintf(&b, "    with:\n      cluster: \"c-${{ inputs.region }}\"\n      service: svc%d\n      desired_count: ${{ inputs.count + %d }}\n      region: ${{ inputs.region }}\n", i, i)
		fmt.Fprintf(&b, "    until: outputs.running_count >= inputs.count\n")
		i++
	}
	return b.String()
}

func TestGeneratedRunbookIsValid(t *testing.T) {
	rb, ds := parse(t, generateRunbook(1000))
	if rb == nil {
		t.Fatal(ds)
	}
	n := 0
	rb.Walk(func(s *Step) {
		if !s.IsGroup() {
			n++
		}
	})
	if n < 900 {
		t.Fatalf("only %d action steps", n)
	}
}

// BenchmarkValidate1000Steps measures Parse (decode, catalog lookups,
// schema checks, every expression compiled) of a 1,000-step runbook.
func BenchmarkValidate1000Steps(b *testing.B) {
	src := []byte(generateRunbook(1000))
	opts, _ := testOptions()
	b.SetBytes(int64(len(src)))
	b.ReportAllocs()
	for b.Loop() {
		if rb, ds := Parse("bench.yaml", src, opts); rb == nil {
			b.Fatal(ds)
		}
	}
}
