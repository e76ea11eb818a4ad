package pluginhost

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// hostCatalog answers the language's catalog from a started host.
type hostCatalog struct{ h *Host }

func (c hostCatalog) Plugin(name string) (*spec.Description, error) { return c.h.Description(name) }

// noopRunbook is N steps of the test plugin's noop action.
func noopRunbook(n int) []byte {
	var b strings.Builder
	b.WriteString("version: 1\nname: noop\nplugins:\n  bench: { command: runbook-plugin-bench }\nsteps:\n")
	for i := range n {
		fmt.Fprintf(&b, "  - id: s%d\n    uses: bench.noop\n", i)
	}
	return []byte(b.String())
}

// BenchmarkRunNoopSteps measures a whole run of N no-op steps through the
// engine, the host and a real plugin process over gRPC, with the journal
// on disk (fsync at barriers, as in production, or never). ns/step is the
// per-step overhead; comparing it across N shows how it grows.
func BenchmarkRunNoopSteps(b *testing.B) {
	h := startHost(b, Config{}, "bench")
	for _, n := range []int{10, 100, 1000, 10000} {
		var rb *runbook.Runbook
		for _, mode := range []string{"fsync", "nosync"} {
			b.Run(fmt.Sprintf("N=%d/journal=%s", n, mode), func(b *testing.B) {
				if rb == nil {
					var ds runbook.Diagnostics
					rb, ds = runbook.Parse("noop.yaml", noopRunbook(n), runbook.Options{Catalog: func([]*runbook.PluginRef) runbook.Catalog { return hostCatalog{h.Host} }})
					if rb == nil {
						b.Fatal(ds[0])
					}
				}
				store := journal.NewFileStore(b.TempDir())
				store.NoSync = mode == "nosync"
				ctx := context.Background()
				i := 0
				var total time.Duration
				for b.Loop() {
					i++
					id := fmt.Sprintf("bench-%d", i)
					start := time.Now()
					w, err := store.Create(ctx, id)
					if err != nil {
						b.Fatal(err)
					}
					e, err := engine.New(engine.Options{Runbook: rb, Invoker: h.Host, RunID: id, Journal: w})
					if err != nil {
						b.Fatal(err)
					}
					res, err := e.Run(ctx)
					if err != nil || res.Status != engine.StatusSucceeded {
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
