package engine

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// def describes a step for tests; build compiles it into the model the
// language package would produce.
type def struct {
	id, uses  string
	ifSrc     string
	with      map[string]any
	timeout   time.Duration
	retry     runbook.Retry
	until     string
	interval  time.Duration
	untilFor  time.Duration
	cont      bool
	rollback  *rbDef
	parallel  []def
	maxPar    int
	spec      spec.ActionSpec
	noSpec    bool
	secretKey string // a param marked secret in the action's schema
}

type rbDef struct {
	uses       string
	with       map[string]any
	timeout    time.Duration
	retry      runbook.Retry
	idempotent bool
	attempted  bool // when: attempted
}

type rbOpts struct {
	inputs    []*runbook.Input
	onFailure runbook.FailurePolicy
	outputs   map[string]string
	secretOut []string
	hash      string
}

// build compiles defs into a *runbook.Runbook. Expressions are compiled
// against an environment where every step's outputs are untyped, so the
// tests exercise the engine, not the language's ordering checks.
func build(t testing.TB, o rbOpts, defs ...def) *runbook.Runbook {
	t.Helper()
	var ids []string
	var collect func([]def)
	collect = func(ds []def) {
		for _, d := range ds {
			ids = append(ids, d.id)
			collect(d.parallel)
		}
	}
	collect(defs)
	env := expr.Env{Inputs: map[string]expr.Type{}, Steps: map[string]expr.Type{}}
	for _, in := range o.inputs {
		env.Inputs[in.Name] = expr.InputType(string(in.Type))
	}
	for _, id := range ids {
		env.Steps[id] = expr.Unknown
	}
	untilEnv := env
	untilEnv.Outputs = &expr.Unknown
	rb := &runbook.Runbook{Path: "/tmp/test.yaml", Name: "test", Version: 1, Inputs: o.inputs, OnFailure: o.onFailure, Hash: o.hash}
	if rb.Hash == "" {
		rb.Hash = "hash-1"
	}
	var conv func(d def) *runbook.Step
	conv = func(d def) *runbook.Step {
		s := &runbook.Step{ID: d.id, Uses: d.uses, Timeout: d.timeout, Retry: d.retry, ContinueOnError: d.cont, MaxParallel: d.maxPar}
		if d.retry.Attempts == 0 {
			s.Retry.Attempts = 1
		}
		if d.ifSrc != "" {
			s.If = compile(t, d.ifSrc, env)
		}
		for _, c := range d.parallel {
			s.Parallel = append(s.Parallel, conv(c))
		}
		if s.IsGroup() {
			return s
		}
		s.Plugin, s.Action, _ = strings.Cut(d.uses, ".")
		if !d.noSpec {
			sp := d.spec
			sp.Name = s.Action
			if d.secretKey != "" {
				sp.Params = &schema.Schema{Type: schema.Object, Properties: map[string]*schema.Schema{d.secretKey: {Type: schema.String, WriteOnly: true}}}
			}
			s.Spec = &sp
		}
		s.With = value(t, d.with, env)
		if d.until != "" {
			s.Until = &runbook.Until{Condition: compile(t, d.until, untilEnv), Interval: d.interval, Timeout: d.untilFor}
		}
		if r := d.rollback; r != nil {
			rbEnv := untilEnv // a rollback may read its own step's outputs as `outputs`
			s.Rollback = &runbook.Rollback{Uses: r.uses, With: value(t, r.with, rbEnv), Timeout: r.timeout, Retry: r.retry,
				Spec: &spec.ActionSpec{Idempotent: r.idempotent}, Attempted: r.attempted}
			s.Rollback.Plugin, s.Rollback.Action, _ = strings.Cut(r.uses, ".")
			if s.Rollback.Retry.Attempts == 0 {
				s.Rollback.Retry.Attempts = 1
			}
		}
		return s
	}
	for _, d := range defs {
		rb.Steps = append(rb.Steps, conv(d))
	}
	var names []string
	for n := range o.outputs {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		tmpl, errs := expr.CompileTemplate(o.outputs[n], env)
		if errs != nil {
			t.Fatalf("output %s: %v", n, errs[0])
		}
		secret := false
		for _, s := range o.secretOut {
			secret = secret || s == n
		}
		rb.Outputs = append(rb.Outputs, &runbook.Output{Name: n, Value: expr.FromTemplate(tmpl), Secret: secret})
	}
	return rb
}

func compile(t testing.TB, src string, env expr.Env) *expr.Program {
	t.Helper()
	p, err := expr.Compile(src, env, expr.Bool)
	if err != nil {
		t.Fatalf("compiling %q: %v", src, err)
	}
	return p
}

func value(t testing.TB, with map[string]any, env expr.Env) *expr.Value {
	t.Helper()
	if with == nil {
		return nil
	}
	var keys []string
	for k := range with {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var fields []*expr.Value
	for _, k := range keys {
		fields = append(fields, leaf(t, with[k], env))
	}
	return expr.Mapping(keys, fields)
}

func leaf(t testing.TB, v any, env expr.Env) *expr.Value {
	s, ok := v.(string)
	if !ok || !expr.HasTemplate(s) {
		return expr.Static(v)
	}
	tmpl, errs := expr.CompileTemplate(s, env)
	if errs != nil {
		t.Fatalf("template %q: %v", s, errs[0])
	}
	return expr.FromTemplate(tmpl)
}

// action is a fake action implementation.
type action func(ctx context.Context, c Call, progress func(spec.Progress)) (map[string]any, error)

// fakeInvoker is the in-process test double for plugins: actions by
// "<plugin>.<action>", every call recorded.
type fakeInvoker struct {
	mu      sync.Mutex
	actions map[string]action
	plan    func(ctx context.Context, c PlanCall) (*spec.Plan, error)
	calls   []Call
	plans   []PlanCall
}

func newInvoker(actions map[string]action) *fakeInvoker {
	return &fakeInvoker{actions: actions}
}

func (f *fakeInvoker) Invoke(ctx context.Context, c Call, progress func(spec.Progress)) (map[string]any, error) {
	f.mu.Lock()
	f.calls = append(f.calls, c)
	fn := f.actions[c.Plugin+"."+c.Action]
	f.mu.Unlock()
	if fn == nil {
		return map[string]any{}, nil
	}
	return fn(ctx, c, progress)
}

func (f *fakeInvoker) Plan(ctx context.Context, c PlanCall) (*spec.Plan, error) {
	f.mu.Lock()
	f.plans = append(f.plans, c)
	fn := f.plan
	f.mu.Unlock()
	if fn == nil {
		return &spec.Plan{Summary: "planned " + c.StepID}, nil
	}
	return fn(ctx, c)
}

// callsOf lists the calls for a step (rollback calls when rollback).
func (f *fakeInvoker) callsOf(step string, rollback bool) []Call {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []Call
	for _, c := range f.calls {
		if c.StepID == step && c.Rollback == rollback {
			out = append(out, c)
		}
	}
	return out
}

// rollbackOrder is the step ids of rollback calls, in call order.
func (f *fakeInvoker) rollbackOrder() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []string
	for _, c := range f.calls {
		if c.Rollback {
			out = append(out, c.StepID)
		}
	}
	return out
}

// recorder collects events.
type recorder struct {
	mu     sync.Mutex
	events []Event
}

func (r *recorder) on(ev Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, ev)
}

func (r *recorder) types(step string) []string {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []string
	for _, ev := range r.events {
		if step == "*" || ev.Step == step {
			out = append(out, ev.Type)
		}
	}
	return out
}

func (r *recorder) find(typ, step string) []Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	var out []Event
	for _, ev := range r.events {
		if ev.Type == typ && (step == "*" || ev.Step == step) {
			out = append(out, ev)
		}
	}
	return out
}

func (r *recorder) json(t testing.TB) string {
	r.mu.Lock()
	defer r.mu.Unlock()
	b, err := json.Marshal(r.events)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// memWriter is a journal writer in memory that can be told to fail.
type memWriter struct {
	mu      sync.Mutex
	records []journal.Record
	failAt  int // fail the n-th Append (1-based); 0: never
}

func (w *memWriter) Append(r journal.Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.failAt > 0 && len(w.records)+1 >= w.failAt {
		return errors.New("disk full")
	}
	w.records = append(w.records, r)
	return nil
}

func (w *memWriter) Close() error { return nil }

// retryable and fatal errors as a plugin reports them.
func retryableErr(format string, args ...any) error {
	return spec.RetryableCode("Throttled", format, args...)
}

func fatalErr(format string, args ...any) error {
	return spec.FatalCode("Invalid", format, args...)
}

func ok(out map[string]any) action {
	return func(context.Context, Call, func(spec.Progress)) (map[string]any, error) { return out, nil }
}

func mustRun(t *testing.T, opts Options) *Result {
	t.Helper()
	e, err := New(opts)
	if err != nil {
		t.Fatal(err)
	}
	res, err := e.Run(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return res
}

func stepStatus(t *testing.T, res *Result, id string) StepResult {
	t.Helper()
	s, found := res.Step(id)
	if !found {
		t.Fatalf("no result for step %s", id)
	}
	return s
}

func expectStatus(t *testing.T, res *Result, want Status) {
	t.Helper()
	if res.Status != want {
		t.Fatalf("run status %s, want %s (err: %v)", res.Status, want, res.Err)
	}
}

var _ = fmt.Sprint
