// Package engine is the runbook interpreter: it runs the steps of a
// validated runbook in order (parallel groups concurrently), evaluates `if`
// and `until`, retries with backoff, bounds attempts with timeouts, asks for
// approvals, rolls back what it did when a step fails, journals every event
// so a run can be resumed, and plans a run without changing anything.
//
// It calls actions through the Invoker interface only; pluginhost implements
// it over go-plugin, and embedders or tests can implement it in-process.
// The exact semantics are in docs/execution.md.
package engine

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os/user"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/runbook"
)

// CorePlugin is the plugin name of the built-in actions the engine runs
// itself: core.approve, core.sleep, core.assert and core.log.
const CorePlugin = "core"

// Options configure one run (or resume, or plan).
type Options struct {
	// Runbook is the validated runbook.
	Runbook *runbook.Runbook
	// Inputs are the resolved input values. Declared inputs that are
	// missing take their default; a missing required input is an error.
	// On resume, only secret inputs are needed (the others are read from
	// the journal).
	Inputs map[string]any
	// Invoker runs plugin actions. It may be nil only if every step uses a
	// core built-in.
	Invoker Invoker
	// Journal receives every event as a record, synchronously, before the
	// engine takes the next step that depends on it. Nil: no journal (the
	// run cannot be resumed).
	Journal journal.Writer
	// RunID identifies the run; a sortable unique id (UTC time + random)
	// is generated when empty. On resume it must be empty or the run's id.
	RunID string
	// Approvals says how core.approve steps are answered.
	Approvals Approvals
	// OnEvent is called for every event, in order, never concurrently, with
	// secrets already redacted. It runs on the engine's path: a slow
	// callback slows the run (see EventChannel).
	OnEvent func(Event)
	// Secrets are values to replace with redact.Mask in every event,
	// journal record and error message. Values of inputs declared secret,
	// and of action parameters and outputs marked secret in their schema,
	// are added automatically.
	Secrets []string
	// Redactor, if set, is the redactor to use and add to: give the plugin
	// host the same one (pluginhost.Config.Redactor), so that secrets the
	// run discovers (secret outputs) are also redacted from plugin logs.
	Redactor *redact.Redactor
	// EngineVersion is recorded in run_started; default: the module version
	// from the build info, or "dev".
	EngineVersion string
	// MaxOutputBytes caps the outputs of one attempt as JSON (default
	// DefaultMaxOutputBytes, at most expr.MaxValueBytes): larger outputs
	// fail the step, unjournaled (see checkOutputs).
	MaxOutputBytes int
}

// Engine runs one runbook once: call exactly one of Run, Resume or Plan.
type Engine struct {
	opts      Options
	rb        *runbook.Runbook
	red       *redactor
	version   string
	approvers approvalState
	used      atomic.Bool

	// emitMu serialises events: sequence numbers, journal writes and
	// OnEvent calls happen in one order.
	emitMu     sync.Mutex
	seq        int64
	journalErr error
	stopRun    context.CancelCauseFunc

	// envMu guards envSteps, the `steps` map expressions read: each
	// finished step's entry is added once (publish) instead of the map being
	// rebuilt for every evaluation, which made a run quadratic in its number
	// of steps. Evaluations hold the read lock. Lock order: mu, then envMu.
	envMu  sync.RWMutex
	scopes map[string]*scope

	// mu guards the run state below; steps of a parallel group update it
	// concurrently. Lock order: emitMu, then mu, then envMu.
	mu      sync.Mutex
	runID   string
	inputs  map[string]any
	started time.Time
	// view is what the run's records say: every event is applied to it as
	// it is emitted (apply), and resume replays the journal into it, so a
	// step's status, attempts, outputs, errors, approvals and rollback have
	// one source for a live run and a resumed one alike.
	view     *journal.View
	states   map[string]*stepState // by path
	order    []*stepState          // document order, groups before their children
	waiting  []string              // steps paused for approval
	rollback bool                  // the operator asked for a rollback on resume

}

// New checks the options and prepares a run.
func New(opts Options) (*Engine, error) {
	if opts.Runbook == nil {
		return nil, errors.New("engine: no runbook")
	}
	e := &Engine{opts: opts, rb: opts.Runbook, red: newRedactor(opts.Redactor), states: map[string]*stepState{}, scopes: map[string]*scope{"": {bound: true, steps: map[string]any{}}},
		view: journal.NewView(opts.RunID)}
	needInvoker := ""
	var bad error
	n := 0
	WalkSteps(e.rb, func(StepRef) { n++ })
	e.view.Grow(n)
	e.order = make([]*stepState, 0, n)
	WalkSteps(e.rb, func(r StepRef) {
		s := r.Step
		if _, dup := e.states[r.Path]; dup && bad == nil {
			bad = fmt.Errorf("engine: duplicate step id %q", s.ID)
		}
		st := &stepState{step: s, path: r.Path, group: r.Group, scope: r.Scope}
		st.v = e.view.DeclareIn(&st.own, decl(r))
		e.states[r.Path] = st
		e.order = append(e.order, st)
		if s.IsCall() {
			e.scopes[r.Path] = &scope{call: st, steps: map[string]any{}}
		}
		if s.IsGroup() || s.IsCall() {
			return
		}
		if (s.Plugin == "" || s.Action == "") && bad == nil {
			bad = fmt.Errorf("engine: step %q has no action", s.ID)
		}
		if s.Plugin != CorePlugin && needInvoker == "" {
			needInvoker = s.ID
		}
		if rb := s.Rollback; rb != nil && rb.Plugin != CorePlugin && needInvoker == "" {
			needInvoker = s.ID
		}
	})
	if bad != nil {
		return nil, bad
	}
	if opts.Invoker == nil && needInvoker != "" {
		return nil, fmt.Errorf("engine: step %q uses a plugin action but no Invoker was given", needInvoker)
	}
	if opts.RunID != "" {
		if err := journal.ValidRunID(opts.RunID); err != nil {
			return nil, fmt.Errorf("engine: %w", err)
		}
	}
	e.red.add(opts.Secrets...)
	e.redactSecretInputs(opts.Inputs)
	e.version = opts.EngineVersion
	if e.version == "" {
		e.version = moduleVersion()
	}
	e.approvers.by = opts.Approvals.By
	if e.approvers.by == "" {
		if u, err := user.Current(); err == nil {
			e.approvers.by = u.Username
		}
	}
	return e, nil
}

// redactSecretInputs adds the values of inputs declared secret to the
// redactor.
func (e *Engine) redactSecretInputs(values map[string]any) {
	for _, in := range e.rb.Inputs {
		if in.Secret {
			e.red.addValue(values[in.Name])
		}
	}
}

// resolveInputs applies defaults and checks required inputs; the result is
// the run's inputs.
func (e *Engine) resolveInputs(given map[string]any) (map[string]any, error) {
	out := make(map[string]any, len(given))
	for k, v := range given {
		out[k] = v
	}
	var missing []string
	for _, in := range e.rb.Inputs {
		if _, ok := out[in.Name]; ok {
			continue
		}
		switch {
		case in.HasDefault:
			out[in.Name] = in.Default
		case in.Required:
			missing = append(missing, in.Name)
		default:
			out[in.Name] = nil
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("missing required input(s): %s", strings.Join(missing, ", "))
	}
	e.redactSecretInputs(out)
	return out, nil
}

// Run executes the runbook from the start. The returned error is for runs
// that could not start (bad inputs, journal not writable); a run that
// started reports how it ended in the Result.
func (e *Engine) Run(ctx context.Context) (*Result, error) {
	if !e.used.CompareAndSwap(false, true) {
		return nil, errors.New("engine: an Engine runs once; create another")
	}
	inputs, err := e.resolveInputs(e.opts.Inputs)
	if err != nil {
		return nil, err
	}
	e.setInputs(inputs)
	e.runID = e.opts.RunID
	if e.runID == "" {
		e.runID = NewRunID(time.Now())
	}
	e.started = time.Now().UTC()
	if err := e.emit(Event{Type: journal.RunStarted, Time: e.started, Run: e.runInfo()}); err != nil {
		return nil, fmt.Errorf("starting run %s: %w", e.runID, err)
	}
	return e.execute(ctx), nil
}

// setInputs makes inputs the run's inputs.
func (e *Engine) setInputs(inputs map[string]any) {
	e.inputs = inputs
	e.scopes[""].inputs = inputs
}

// runInfo is the run_started payload, with secret inputs redacted.
func (e *Engine) runInfo() *journal.RunInfo {
	info := &journal.RunInfo{
		Runbook: e.rb.Name, RunbookPath: e.rb.Path, RunbookHash: e.rb.Hash,
		EngineVersion: e.version, OnFailure: string(e.onFailure()),
	}
	declared := map[string]bool{}
	for _, in := range e.rb.Inputs {
		declared[in.Name] = true
		v := e.inputs[in.Name]
		defaulted := false
		if in.Secret {
			defaulted = in.HasDefault && sameJSON(v, in.Default)
			v = redacted
		}
		info.Inputs = append(info.Inputs, journal.Input{Name: in.Name, Value: v, Secret: in.Secret, Defaulted: defaulted})
	}
	var extra []string
	for k := range e.inputs {
		if !declared[k] {
			extra = append(extra, k)
		}
	}
	sort.Strings(extra)
	for _, k := range extra {
		info.Inputs = append(info.Inputs, journal.Input{Name: k, Value: e.inputs[k]})
	}
	return info
}

func (e *Engine) onFailure() runbook.FailurePolicy {
	if e.rb.OnFailure == "" {
		return runbook.OnFailureRollback
	}
	return e.rb.OnFailure
}

// NewRunID returns a run id that sorts by start time: the UTC time to the
// second, then 8 random hex digits.
func NewRunID(t time.Time) string {
	b := make([]byte, 4)
	_, _ = rand.Read(b)
	return t.UTC().Format("20060102T150405Z") + "-" + hex.EncodeToString(b)
}

func moduleVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, d := range bi.Deps {
			if d.Path == "github.com/runbookhq/runbook" {
				return d.Version
			}
		}
		if bi.Main.Path == "github.com/runbookhq/runbook" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			return bi.Main.Version
		}
	}
	return "dev"
}
