package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
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
	e.apply(ev)
	ev = e.red.record(ev)
	if e.opts.Journal != nil {
		if e.journalErr == nil {
			if err := e.opts.Journal.Append(ev); err != nil {
				e.journalErr = err
				if e.stopRun != nil {
					e.stopRun(journalError{err})
				}
			}
		} else if ev.Type == journal.RunInterrupted {
			// The record that says why the run stopped is offered even
			// so: a journal that failed for want of space keeps room for
			// it (journal.DiskFullError), so that resume can tell.
			_ = e.opts.Journal.Append(ev)
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

// apply folds an event into the run's view, which is the engine's state of
// every step, and makes a step that finished visible to expressions. The
// engine keeps the real values (outputs, parameters): the journal and
// OnEvent get the event redacted.
func (e *Engine) apply(ev Event) {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.view.Apply(ev)
	switch ev.Type {
	case journal.StepSucceeded, journal.StepFailed, journal.StepSkipped:
		if st := e.states[ev.Step]; st != nil {
			e.publish(st)
		}
	}
}

// log emits an engine log record.
func (e *Engine) log(level, step, format string, args ...any) {
	_ = e.emit(Event{Type: journal.Log, Level: level, Step: step, Message: fmt.Sprintf(format, args...)})
}

// interruptCause explains why ctx ended: the journal failure that stopped
// the run, or the cause its context was cancelled with (the CLI names the
// signal), else "interrupted".
func interruptCause(ctx context.Context) string {
	cause := context.Cause(ctx)
	var je journalError
	if errors.As(cause, &je) {
		return je.Error()
	}
	if cause != nil && !errors.Is(cause, context.Canceled) && !errors.Is(cause, context.DeadlineExceeded) {
		return cause.Error()
	}
	return "interrupted"
}
