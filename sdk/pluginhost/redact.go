package pluginhost

import (
	"fmt"
	"io"
	"log"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/spec"
)

// redactor is the host's redact.Redactor (shared with the engine when the
// caller gives one), with what only the host redacts: log arguments,
// progress and errors of plugins.
type redactor struct{ *redact.Redactor }

func newRedactor(shared *redact.Redactor, secrets []string) *redactor {
	if shared == nil {
		shared = redact.New()
	}
	shared.Add(secrets...)
	return &redactor{shared}
}

// value redacts a log argument or progress field: strings are redacted in
// place; any other value that renders with a secret in it is replaced by
// its redacted rendering.
func (r *redactor) value(v any) any {
	switch v.(type) {
	case nil, string, map[string]any, []any:
		return r.Value(v)
	}
	if red := r.Value(v); red == redact.Mask {
		return red
	}
	s := fmt.Sprint(v)
	if red := r.String(s); red != s {
		return red
	}
	return v
}

func (r *redactor) args(args []any) []any {
	if r.Empty() || len(args) == 0 {
		return args
	}
	out := make([]any, len(args))
	for i, a := range args {
		out[i] = r.value(a)
	}
	return out
}

func (r *redactor) progress(p spec.Progress) spec.Progress {
	if r.Empty() {
		return p
	}
	p.Message = r.String(p.Message)
	if p.Fields != nil {
		p.Fields = r.value(p.Fields).(map[string]any)
	}
	return p
}

func (r *redactor) specError(e *spec.Error) *spec.Error {
	out := *e
	out.Message = r.String(e.Message)
	if e.Err != nil && out.Message == "" {
		out.Message = r.String(e.Err.Error())
	}
	out.Err = nil
	out.Diagnostics = make([]spec.Diagnostic, len(e.Diagnostics))
	for i, d := range e.Diagnostics {
		d.Summary, d.Detail = r.String(d.Summary), r.String(d.Detail)
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
//
// A plugin's own lines go through its lines stream (redact.Lines), so that
// a secret cut by a line break (a wrapped base64 text, a line longer than
// go-plugin's buffer, which it splits) is masked in both lines.
type redactingLogger struct {
	hclog.Logger
	red      *redactor
	internal bool
	lines    *redact.Lines[logEntry]
}

// logEntry is what a plugin's line is written with, once released.
type logEntry struct {
	to    hclog.Logger
	level hclog.Level
	args  []any
}

// lineDelay is how long a plugin's line that ends with the beginning of a
// secret waits for the next line.
const lineDelay = 200 * time.Millisecond

// newPluginLogger is the logger of a plugin's lines, under its name.
func newPluginLogger(base hclog.Logger, red *redactor) *redactingLogger {
	return &redactingLogger{Logger: base, red: red, lines: redact.NewLines(red.Redactor, lineDelay, func(line string, e logEntry) {
		e.to.Log(e.level, line, e.args...)
	})}
}

var _ hclog.Logger = (*redactingLogger)(nil)

func (l *redactingLogger) Log(level hclog.Level, msg string, args ...any) {
	if l.internal && level > hclog.Debug {
		level = hclog.Debug
	}
	if l.internal || l.lines == nil {
		l.Logger.Log(level, l.red.String(msg), l.red.args(args)...)
		return
	}
	l.lines.Push(msg, logEntry{to: l.Logger, level: level, args: l.red.args(dropModule(args))})
}

// flush writes the lines held back.
func (l *redactingLogger) flush() {
	if l.lines != nil {
		l.lines.Flush()
	}
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
	return &redactingLogger{Logger: l.Logger.With(l.red.args(args)...), red: l.red, internal: l.internal, lines: l.lines}
}

func (l *redactingLogger) Named(name string) hclog.Logger {
	if l.internal {
		// go-plugin's logger for the plugin's stderr lines: the plugin's.
		return &redactingLogger{Logger: l.Logger, red: l.red, lines: l.lines}
	}
	return &redactingLogger{Logger: l.Logger.Named(name), red: l.red, lines: l.lines}
}

func (l *redactingLogger) ResetNamed(name string) hclog.Logger {
	return &redactingLogger{Logger: l.Logger.ResetNamed(name), red: l.red, internal: l.internal, lines: l.lines}
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
	if _, err := w.w.Write([]byte(w.red.String(string(p)))); err != nil {
		return 0, err
	}
	return len(p), nil
}
