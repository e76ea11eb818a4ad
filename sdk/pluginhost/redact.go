package pluginhost

import (
	"fmt"
	"io"
	"log"
	"sort"
	"strings"
	"sync"

	"github.com/hashicorp/go-hclog"

	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/spec"
)

// Redacted replaces every secret value in what the host re-emits from
// plugins: log lines, progress events and error messages.
const Redacted = "***"

// redactor replaces secret values in strings. Secrets can be added while
// plugins run (values learned from step outputs).
type redactor struct {
	mu      sync.RWMutex
	secrets map[string]bool
	rep     *strings.Replacer
}

func newRedactor(secrets []string) *redactor {
	r := &redactor{secrets: map[string]bool{}}
	r.add(secrets...)
	return r
}

func (r *redactor) add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, s := range secrets {
		// The value and its encoded forms (JSON, base64, %q...): a plugin
		// may log or report the value encoded.
		for _, f := range redact.Forms(s) {
			if !r.secrets[f] {
				r.secrets[f] = true
				changed = true
			}
		}
	}
	if !changed {
		return
	}
	// Longest first, so a secret that contains another is replaced whole.
	all := make([]string, 0, len(r.secrets))
	for s := range r.secrets {
		all = append(all, s)
	}
	sort.Slice(all, func(i, j int) bool {
		if len(all[i]) != len(all[j]) {
			return len(all[i]) > len(all[j])
		}
		return all[i] < all[j]
	})
	pairs := make([]string, 0, 2*len(all))
	for _, s := range all {
		pairs = append(pairs, s, Redacted)
	}
	r.rep = strings.NewReplacer(pairs...)
}

func (r *redactor) replacer() *strings.Replacer {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rep
}

func (r *redactor) string(s string) string {
	if rep := r.replacer(); rep != nil {
		return rep.Replace(s)
	}
	return s
}

// value redacts a log argument or progress field: strings are redacted in
// place; any other value that renders with a secret in it is replaced by
// its redacted rendering.
func (r *redactor) value(v any) any {
	rep := r.replacer()
	if rep == nil {
		return v
	}
	switch x := v.(type) {
	case nil:
		return v
	case string:
		return rep.Replace(x)
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			out[rep.Replace(k)] = r.value(e)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = r.value(e)
		}
		return out
	}
	s := fmt.Sprint(v)
	if red := rep.Replace(s); red != s {
		return red
	}
	return v
}

func (r *redactor) args(args []any) []any {
	if r.replacer() == nil || len(args) == 0 {
		return args
	}
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = r.value(a)
	}
	return out
}

func (r *redactor) progress(p spec.Progress) spec.Progress {
	if r.replacer() == nil {
		return p
	}
	p.Message = r.string(p.Message)
	if p.Fields != nil {
		p.Fields = r.value(p.Fields).(map[string]any)
	}
	return p
}

func (r *redactor) specError(e *spec.Error) *spec.Error {
	out := *e
	out.Message = r.string(e.Message)
	if e.Err != nil && out.Message == "" {
		out.Message = r.string(e.Err.Error())
	}
	out.Err = nil
	out.Diagnostics = make([]spec.Diagnostic, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		d.Summary, d.Detail = r.string(d.Summary), r.string(d.Detail)
		out.Diagnostics[i] = d
	}
	if len(e.Diagnostics) == 0 {
		out.Diagnostics = nil
	}
	return &out
}

// redactingLogger re-emits through an hclog.Logger with secrets replaced.
//
// go-plugin is given one with internal set: go-plugin's own messages (start,
// exit) are demoted to debug, since the host reports plugin exits itself,
// and Named — which go-plugin calls with the executable's name to log the
// plugin's stderr lines — returns the logger for the plugin's own lines,
// already named after the plugin.
type redactingLogger struct {
	hclog.Logger
	red      *redactor
	internal bool
}

var _ hclog.Logger = (*redactingLogger)(nil)

func (l *redactingLogger) Log(level hclog.Level, msg string, args ...any) {
	if l.internal && level > hclog.Debug {
		level = hclog.Debug
	}
	if !l.internal {
		args = dropModule(args)
	}
	l.Logger.Log(level, l.red.string(msg), l.red.args(args)...)
}

// dropModule removes hclog's @module key from a plugin's line: the host's
// logger name already says which plugin it is.
func dropModule(args []any) []any {
	for i := 0; i+1 < len(args); i += 2 {
		if k, ok := args[i].(string); ok && k == "@module" {
			return append(append([]any{}, args[:i]...), args[i+2:]...)
		}
	}
	return args
}

func (l *redactingLogger) Trace(msg string, args ...any) { l.Log(hclog.Trace, msg, args...) }
func (l *redactingLogger) Debug(msg string, args ...any) { l.Log(hclog.Debug, msg, args...) }
func (l *redactingLogger) Info(msg string, args ...any)  { l.Log(hclog.Info, msg, args...) }
func (l *redactingLogger) Warn(msg string, args ...any)  { l.Log(hclog.Warn, msg, args...) }
func (l *redactingLogger) Error(msg string, args ...any) { l.Log(hclog.Error, msg, args...) }

func (l *redactingLogger) With(args ...any) hclog.Logger {
	return &redactingLogger{Logger: l.Logger.With(l.red.args(args)...), red: l.red, internal: l.internal}
}

func (l *redactingLogger) Named(name string) hclog.Logger {
	if l.internal {
		return &redactingLogger{Logger: l.Logger, red: l.red}
	}
	return &redactingLogger{Logger: l.Logger.Named(name), red: l.red}
}

func (l *redactingLogger) ResetNamed(name string) hclog.Logger {
	return &redactingLogger{Logger: l.Logger.ResetNamed(name), red: l.red, internal: l.internal}
}

func (l *redactingLogger) StandardLogger(opts *hclog.StandardLoggerOptions) *log.Logger {
	return log.New(l.StandardWriter(opts), "", 0)
}

func (l *redactingLogger) StandardWriter(opts *hclog.StandardLoggerOptions) io.Writer {
	return redactingWriter{w: l.Logger.StandardWriter(opts), red: l.red}
}

type redactingWriter struct {
	w   io.Writer
	red *redactor
}

func (w redactingWriter) Write(p []byte) (int, error) {
	if _, err := w.w.Write([]byte(w.red.string(string(p)))); err != nil {
		return 0, err
	}
	return len(p), nil
}
