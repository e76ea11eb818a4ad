package runbook

import (
	"fmt"
	"strings"
	"testing"
)

// BenchmarkValidate1000StepsCold is BenchmarkValidate1000Steps with every
// expression new to the process in each iteration (the input is renamed),
// so the compile caches of sdk/expr never hit across iterations: what one
// `runbook validate` process pays. Identical expressions within the
// runbook still share one compilation, as they do in that process.
func BenchmarkValidate1000StepsCold(b *testing.B) {
	src := generateRunbook(1000)
	opts, _ := testOptions()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		i++
		s := strings.ReplaceAll(src, "inputs.region", fmt.Sprintf("inputs.region%d", i))
		s = strings.Replace(s, "  region: {", fmt.Sprintf("  region%d: {", i), 1)
		if rb, ds := Parse("bench.yaml", []byte(s), opts); rb == nil {
			b.Fatal(ds[0])
		}
	}
}
