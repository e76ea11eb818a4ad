package pluginhost

import (
	"bytes"
	"encoding/json"
	"strings"
	"sync"

	"github.com/runbookhq/runbook/sdk/redact"
)

// stderrTail remembers the end of a plugin's stderr (go-plugin copies every
// line to it), so that an error about a plugin that died can say what it
// said last: a Go panic's first line, or its last log line.
//
// Lines are redacted as they come, across line breaks too (redact.Lines):
// a secret the plugin printed cut over two lines must not come back half
// in clear in an error about the plugin.
type stderrTail struct {
	red     *redactor
	mu      sync.Mutex
	partial []byte
	lines   []string
	panic   string
	stream  *redact.Lines[struct{}]
}

const (
	tailLines   = 3
	tailLineMax = 300
)

func (t *stderrTail) Write(p []byte) (int, error) {
	t.mu.Lock()
	defer t.mu.Unlock()
	for _, c := range p {
		if c != '\n' {
			if len(t.partial) < 4*tailLineMax {
				t.partial = append(t.partial, c)
			}
			continue
		}
		t.commit(string(t.partial))
		t.partial = t.partial[:0]
	}
	return len(p), nil
}

// add records a line that did not come through Write (the plugin's
// os.Stderr, forwarded over gRPC after the handshake).
func (t *stderrTail) add(line string) {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.commit(line)
}

func (t *stderrTail) commit(line string) {
	line = strings.TrimSpace(line)
	if line == "" {
		return
	}
	if t.red == nil {
		t.keep(line)
		return
	}
	if t.stream == nil {
		t.stream = redact.NewLines(t.red.Redactor, 0, func(line string, _ struct{}) { t.keep(line) })
	}
	t.stream.Push(line, struct{}{})
}

// keep records a line (redacted when the tail has a redactor).
func (t *stderrTail) keep(line string) {
	if strings.HasPrefix(line, "{") {
		var entry struct {
			Message string `json:"@message"`
			Level   string `json:"@level"`
		}
		if json.Unmarshal([]byte(line), &entry) == nil && entry.Message != "" {
			if entry.Level == "debug" || entry.Level == "trace" {
				return // go-plugin's own start-up chatter, not last words
			}
			line = "[" + strings.ToUpper(entry.Level) + "] " + entry.Message
		}
	}
	// Redacted before it is cut: a secret the cut would split is masked
	// whole.
	if t.red != nil {
		line = t.red.Cut(line, tailLineMax)
	} else if len(line) > tailLineMax {
		line = line[:tailLineMax] + "..."
	}
	if strings.HasPrefix(line, "panic: ") || strings.HasPrefix(line, "fatal error: ") {
		t.panic = line
	}
	t.lines = append(t.lines, line)
	if len(t.lines) > tailLines {
		t.lines = t.lines[len(t.lines)-tailLines:]
	}
}

// last returns the panic line if the plugin panicked, else its last lines.
func (t *stderrTail) last() string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.stream != nil {
		t.stream.Flush()
	}
	if t.panic != "" {
		return t.panic
	}
	return strings.Join(t.lines, " | ")
}

// maxLine is the longest line a lineWriter keeps before emitting it.
const maxLine = 64 << 10

// lineWriter calls emit for each complete line written to it.
type lineWriter struct {
	mu      sync.Mutex
	partial []byte
	emit    func(line string)
}

func (w *lineWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	rest := p
	for {
		i := bytes.IndexByte(rest, '\n')
		if i < 0 {
			break
		}
		line := append(w.partial, rest[:i]...)
		w.partial = w.partial[:0]
		if l := strings.TrimRight(string(line), "\r"); l != "" {
			w.emit(l)
		}
		rest = rest[i+1:]
	}
	w.partial = append(w.partial, rest...)
	if len(w.partial) > maxLine {
		// A line this long goes out in pieces, as go-plugin splits its own
		// long lines: the plugin's logger masks a secret a cut splits.
		w.emit(string(w.partial))
		w.partial = w.partial[:0]
	}
	return len(p), nil
}
