package engine

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/spec"
)

// noopInvoker returns at once and records nothing, so the benchmark
// measures the engine and the journal.
type noopInvoker struct{}

func (noopInvoker) Invoke(context.Context, Call, func(spec.Progress)) (map[string]any, error) {
	return map[string]any{"ok": true}, nil
}

func (noopInvoker) Plan(context.Context, PlanCall) (*spec.Plan, error) { return &spec.Plan{}, nil }

// BenchmarkNoopStep measures the engine's cost per step: one op is a run of
// ten no-op plugin steps (in-process invoker), reported also as ns/step.
// "journal=fsync" is the production setting (each record synced before the
// next dependent action); "journal=nosync" and "journal=none" isolate the
// engine's own overhead.
func BenchmarkNoopStep(b *testing.B) {
	const steps = 10
	var defs []def
	for i := range steps {
		defs = append(defs, def{id: fmt.Sprintf("s%d", i), uses: "x.noop", with: map[string]any{"n": float64(i), "prev": "${{ run.id }}"}})
	}
	rb := build(b, rbOpts{}, defs...)
	for _, mode := range []string{"fsync", "nosync", "none"} {
		b.Run("journal="+mode, func(b *testing.B) {
			store := journal.NewFileStore(b.TempDir())
			store.NoSync = mode == "nosync"
			ctx := context.Background()
			i := 0
			start := time.Now()
			for b.Loop() {
				i++
				opts := Options{Runbook: rb, Invoker: noopInvoker{}, RunID: fmt.Sprintf("bench-%d", i)}
				var w journal.Writer
				if mode != "none" {
					var err error
					if w, err = store.Create(ctx, opts.RunID); err != nil {
						b.Fatal(err)
					}
					opts.Journal = w
				}
				e, err := New(opts)
				if err != nil {
					b.Fatal(err)
				}
				res, err := e.Run(ctx)
				if err != nil || res.Status != StatusSucceeded {
					b.Fatalf("run: %v %v", err, res.Err)
				}
				if w != nil {
					w.Close()
				}
			}
			b.ReportMetric(float64(time.Since(start).Nanoseconds())/float64(i*steps), "ns/step")
		})
	}
}
