package engine

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/schema"
)

// Event is one thing that happened in a run. Events and journal records are
// the same values: the engine writes each event to the journal before
// passing it to Options.OnEvent. Type is one of the journal record types
// (journal.RunStarted, journal.StepSucceeded, ...); the fields each type
// carries are listed in docs/execution.md.
type Event = journal.Record

// EventChannel adapts a channel to Options.OnEvent. Sends block: drain the
// channel promptly, or give it a buffer.
func EventChannel(ch chan<- Event) func(Event) {
	return func(ev Event) { ch <- ev }
}

// journalError is the cause of a run stopped because its journal could not
// be written.
type journalError struct{ err error }

func (e journalError) Error() string { return "writing the run journal: " + e.err.Error() }

// emit redacts ev, numbers it, journals it and hands it to OnEvent. The
// first journal failure stops the run (its context is cancelled with that
// cause): acting without a durable record would make the run impossible to
// resume safely. emit returns that error so callers about to act can stop.
func (e *Engine) emit(ev Event) error {
	_, err := e.emitSeq(ev)
	return err
}

// emitSeq is emit, also returning the record's sequence number.
func (e *Engine) emitSeq(ev Event) (int64, error) {
	e.emitMu.Lock()
	defer e.emitMu.Unlock()
	e.seq++
	ev.Seq = e.seq
	ev.RunID = e.runID
	if ev.Time.IsZero() {
		ev.Time = time.Now().UTC()
	}
	ev = e.red.record(ev)
	if e.opts.Journal != nil {
		if e.journalErr == nil {
			if err := e.opts.Journal.Append(ev); err != nil {
				e.journalErr = err
				if e.stopRun != nil {
					e.stopRun(journalError{err})
				}
			}
		}
	}
	if e.opts.OnEvent != nil {
		e.opts.OnEvent(ev)
	}
	if e.journalErr != nil {
		return ev.Seq, journalError{e.journalErr}
	}
	return ev.Seq, nil
}

// log emits an engine log record.
func (e *Engine) log(level, step, format string, args ...any) {
	_ = e.emit(Event{Type: journal.Log, Level: level, Step: step, Message: fmt.Sprintf(format, args...)})
}

// interruptCause explains why ctx ended.
func interruptCause(ctx context.Context) string {
	var je journalError
	if errors.As(context.Cause(ctx), &je) {
		return je.Error()
	}
	return "interrupted"
}

const redacted = "***"

// redactor replaces secret values in strings. Secrets discovered during a
// run (secret parameters, secret outputs) are added as they appear.
type redactor struct {
	mu      sync.RWMutex
	secrets []string // longest first, so a secret containing another is replaced whole
	seen    map[string]bool
}

func newRedactor() *redactor { return &redactor{seen: map[string]bool{}} }

func (r *redactor) add(vals ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, v := range vals {
		if v == "" || v == redacted || r.seen[v] {
			continue
		}
		// Also its encoded forms (JSON, base64, %q...): an expression or a
		// plugin may have encoded the value on its way to an event.
		for _, f := range redact.Forms(v) {
			if !r.seen[f] {
				r.seen[f] = true
				r.secrets = append(r.secrets, f)
			}
		}
		r.seen[v] = true
		changed = true
	}
	if changed {
		sort.SliceStable(r.secrets, func(i, j int) bool { return len(r.secrets[i]) > len(r.secrets[j]) })
	}
}

// addValue adds every string inside v (a secret input may be a list or map).
func (r *redactor) addValue(v any) {
	switch x := v.(type) {
	case string:
		r.add(x)
	case []any:
		for _, it := range x {
			r.addValue(it)
		}
	case map[string]any:
		for _, it := range x {
			r.addValue(it)
		}
	case nil, bool, float64, int:
	default:
		r.add(fmt.Sprint(x))
	}
}

// addAt adds the values found at schema secret paths (JSON pointers, "*"
// for any element) inside v.
func (r *redactor) addAt(s *schema.Schema, v any) {
	if s == nil {
		return
	}
	for _, p := range s.SecretPaths() {
		for _, found := range lookup(v, schema.SplitPointer(p)) {
			r.addValue(found)
		}
	}
}

func lookup(v any, segs []string) []any {
	if len(segs) == 0 {
		return []any{v}
	}
	var out []any
	switch x := v.(type) {
	case map[string]any:
		if segs[0] == "*" {
			for _, it := range x {
				out = append(out, lookup(it, segs[1:])...)
			}
		} else if it, ok := x[segs[0]]; ok {
			out = lookup(it, segs[1:])
		}
	case []any:
		for _, it := range x { // "*" (or an index: redact all to be safe)
			out = append(out, lookup(it, segs[1:])...)
		}
	}
	return out
}

func (r *redactor) string(s string) string {
	r.mu.RLock()
	defer r.mu.RUnlock()
	for _, sec := range r.secrets {
		if strings.Contains(s, sec) {
			s = strings.ReplaceAll(s, sec, redacted)
		}
	}
	return s
}

// value returns a deep copy of v with secrets replaced in every string
// (map keys included).
func (r *redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		return r.string(x)
	case map[string]any:
		if x == nil {
			return x
		}
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[r.string(k)] = r.value(it)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = r.value(it)
		}
		return out
	}
	return v
}

func (r *redactor) mapValue(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return r.value(m).(map[string]any)
}

// record redacts every text field of a record (a copy).
func (r *redactor) record(ev Event) Event {
	ev.Message = r.string(ev.Message)
	ev.By = r.string(ev.By)
	ev.Outputs = r.mapValue(ev.Outputs)
	ev.Fields = r.mapValue(ev.Fields)
	if ev.Error != nil {
		e := *ev.Error
		e.Message = r.string(e.Message)
		e.Code = r.string(e.Code)
		ev.Error = &e
	}
	if ev.Run != nil {
		info := *ev.Run
		info.Inputs = make([]journal.Input, len(ev.Run.Inputs))
		for i, in := range ev.Run.Inputs {
			in.Value = r.value(in.Value)
			info.Inputs[i] = in
		}
		ev.Run = &info
	}
	return ev
}
