package pluginhost

import (
	"context"
	"testing"
)

// BenchmarkStartFivePlugins measures Start + Close of five plugins (each
// hashed, launched, handshaken over AutoMTLS and described), as a run of a
// runbook with five plugins pays once.
func BenchmarkStartFivePlugins(b *testing.B) {
	dir, refs := pluginDir(b, "p1", "p2", "p3", "p4", "p5")
	ctx := context.Background()
	b.ResetTimer()
	for b.Loop() {
		h, err := Start(ctx, Config{Dir: dir, Plugins: refs})
		if err != nil {
			b.Fatal(err)
		}
		h.Close()
	}
}

// BenchmarkInvokeNoop measures one no-op action through the real path:
// host -> gRPC over AutoMTLS -> plugin process -> back.
func BenchmarkInvokeNoop(b *testing.B) {
	h := startHost(b, Config{}, "bench")
	ctx := context.Background()
	c := call("bench", "noop", nil)
	b.ResetTimer()
	for b.Loop() {
		if _, err := h.Invoke(ctx, c, nil); err != nil {
			b.Fatal(err)
		}
	}
}
