package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// BenchmarkRunSteps measures whole runs of N no-op steps (in-process
// invoker) for growing N, so the cost per step can be compared across sizes
// (flat ns/step means linear growth). Each step has an `if` over the previous
// step's status and a templated parameter, as real runbooks do.
func BenchmarkRunSteps(b *testing.B) {
	for _, n := range []int{10, 100, 1000, 10000} {
		var defs []def
		for i := range n {
			d := def{id: fmt.Sprintf("s%d", i), uses: "x.noop", with: map[string]any{"n": float64(i), "run": "${{ run.id }}"}}
			if i > 0 {
				d.ifSrc = fmt.Sprintf("steps.s%d.status == \"succeeded\"", i-1)
			}
			defs = append(defs, d)
		}
		var rb *runbook.Runbook
		for _, mode := range []string{"fsync", "nosync"} {
			b.Run(fmt.Sprintf("N=%d/journal=%s", n, mode), func(b *testing.B) {
				if rb == nil {
					rb = build(b, rbOpts{}, defs...)
				}
				store := journal.NewFileStore(b.TempDir())
				store.NoSync = mode == "nosync"
				ctx := context.Background()
				i := 0
				var total time.Duration
				for b.Loop() {
					i++
					start := time.Now()
					w, err := store.Create(ctx, fmt.Sprintf("bench-%d", i))
					if err != nil {
						b.Fatal(err)
					}
					e, err := New(Options{Runbook: rb, Invoker: noopInvoker{}, RunID: fmt.Sprintf("bench-%d", i), Journal: w})
					if err != nil {
						b.Fatal(err)
					}
					res, err := e.Run(ctx)
					if err != nil || res.Status != StatusSucceeded {
						b.Fatalf("run: %v %v", err, res.Err)
					}
					w.Close()
					total += time.Since(start)
				}
				b.ReportMetric(float64(total.Nanoseconds())/float64(i*n), "ns/step")
			})
		}
	}
}
