package emulator

import (
	"bytes"
	"context"
	"sync"
	"testing"
	"time"
)

// StartForTest starts an emulator for a test (or uses the external one the
// environment names) and stops it when the test ends. With no options it listens
// on a free port with the CI timing. The emulator's output is logged if the test
// fails. A missing Python environment fails the test with a hint to run `make venv`.
func StartForTest(t testing.TB, opts ...Options) *Emulator {
	t.Helper()
	var o Options
	if len(opts) > 0 {
		o = opts[0]
	}
	var log *syncBuffer
	if o.LogPath == "" && o.Log == nil {
		log = &syncBuffer{}
		o.Log = log
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	e, err := Start(ctx, o)
	if err != nil {
		if log != nil {
			t.Logf("emulator output:\n%s", log.String())
		}
		t.Fatalf("start emulator: %v", err)
	}
	t.Cleanup(func() {
		_ = e.Stop()
		if t.Failed() && log != nil {
			out := log.String()
			if len(out) > 16<<10 {
				out = "...\n" + out[len(out)-16<<10:]
			}
			t.Logf("emulator output:\n%s", out)
		}
	})
	return e
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
