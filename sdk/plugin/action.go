package plugin

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"time"

	"github.com/hashicorp/go-hclog"

	"github.com/runbookhq/runbook/sdk/schema"
)

// Request is what an action's Apply receives: the decoded parameters and the
// context of the call.
type Request[P any] struct {
	RunID  string
	StepID string
	// Attempt counts from 1 across retries of the step.
	Attempt int
	// IdempotencyKey is stable across attempts and resumes of one step of
	// one run: pass it to APIs that deduplicate requests.
	IdempotencyKey string
	// Rollback is true when the call compensates an earlier step.
	Rollback bool
	Params   P
	// Log writes to the plugin's stderr; the host shows it under the
	// plugin's name.
	Log      hclog.Logger
	progress func(Progress)
}

// Progress reports what the action is doing now ("global cluster:
// switching-over"). Pairs of kv become structured fields.
func (r *Request[P]) Progress(message string, kv ...any) {
	if r.progress == nil {
		return
	}
	p := Progress{Time: time.Now(), Message: message}
	if len(kv) > 0 {
		p.Fields = make(map[string]any, len(kv)/2)
		for i := 0; i+1 < len(kv); i += 2 {
			p.Fields[fmt.Sprint(kv[i])] = kv[i+1]
		}
	}
	r.progress(p)
}

// PlanRequest is what an action's Plan receives.
type PlanRequest[P any] struct {
	RunID  string
	StepID string
	Params P
	// Unknown reports whether the parameter at a JSON pointer (e.g.
	// "/target_region") is only known at run time; such parameters hold
	// their zero value.
	Unknown func(path string) bool
	Log     hclog.Logger
}

// ValidateRequest is what an action's Validate receives.
type ValidateRequest[P any] struct {
	Params  P
	Unknown func(path string) bool
}

// ApplyFunc performs an action.
type ApplyFunc[P, O any] func(ctx context.Context, req Request[P]) (O, error)

// PlanFunc reports what Apply would change, without changing anything.
type PlanFunc[P any] func(ctx context.Context, req PlanRequest[P]) (Plan, error)

// ValidateFunc checks parameters beyond their schema (e.g. one of two
// fields must be set). It must not call the outside world.
type ValidateFunc[P any] func(req ValidateRequest[P]) []Diagnostic

// ActionDef is one action of a plugin: a typed Apply, and optionally Plan
// and Validate. Build it with NewAction and its chained setters.
type ActionDef[P, O any] struct {
	name        string
	doc         string
	idempotent  bool
	readOnly    bool
	apply       ApplyFunc[P, O]
	plan        PlanFunc[P]
	validate    ValidateFunc[P]
	params      *schema.Schema
	outputs     *schema.Schema
	planes      []ControlPlane
	permissions []Permission
}

// NewAction defines an action named name. P and O are structs (or maps);
// their JSON Schemas are derived from them (see schema.For for the tags).
func NewAction[P, O any](name string, apply ApplyFunc[P, O]) *ActionDef[P, O] {
	return &ActionDef[P, O]{
		name:    name,
		apply:   apply,
		params:  schema.MustFor[P](),
		outputs: schema.MustFor[O](),
	}
}

// Doc sets the action's one-paragraph description.
func (a *ActionDef[P, O]) Doc(doc string) *ActionDef[P, O] { a.doc = doc; return a }

// Idempotent declares that running the action again with the same
// parameters after an interruption is safe: resume re-runs it without
// asking the operator.
func (a *ActionDef[P, O]) Idempotent() *ActionDef[P, O] { a.idempotent = true; return a }

// ReadOnly declares that the action changes nothing (it is also idempotent).
func (a *ActionDef[P, O]) ReadOnly() *ActionDef[P, O] {
	a.readOnly, a.idempotent = true, true
	return a
}

// ControlPlane declares a control plane the action calls that is served from
// one region whatever region the action works in (Route 53's and
// CloudFront's are in us-east-1): plans and approvals given the region being
// left warn when a path depends on it. Data-plane actions declare none.
func (a *ActionDef[P, O]) ControlPlane(cp ...ControlPlane) *ActionDef[P, O] {
	a.planes = append(a.planes, cp...)
	return a
}

// Plan sets the action's Plan.
func (a *ActionDef[P, O]) Plan(fn PlanFunc[P]) *ActionDef[P, O] { a.plan = fn; return a }

// Validate sets the action's extra static checks.
func (a *ActionDef[P, O]) Validate(fn ValidateFunc[P]) *ActionDef[P, O] { a.validate = fn; return a }

// Action is the type-erased form of an ActionDef that Serve takes.
type Action interface {
	spec() ActionSpec
	runApply(ctx context.Context, call applyCall) ([]byte, error)
	runPlan(ctx context.Context, call planCall) (Plan, error)
	runValidate(params []byte, unknown []string) []Diagnostic
}

type applyCall struct {
	runID, stepID, key string
	attempt            int
	rollback           bool
	params             []byte
	log                hclog.Logger
	progress           func(Progress)
}

type planCall struct {
	runID, stepID string
	params        []byte
	unknown       []string
	log           hclog.Logger
}

func (a *ActionDef[P, O]) spec() ActionSpec {
	return ActionSpec{
		Name: a.name, Doc: a.doc, Params: a.params, Outputs: a.outputs,
		Idempotent: a.idempotent, ReadOnly: a.readOnly, SupportsPlan: a.plan != nil,
		ControlPlanes: append([]ControlPlane(nil), a.planes...),
		Permissions:   a.permissions,
	}
}

func (a *ActionDef[P, O]) runApply(ctx context.Context, c applyCall) ([]byte, error) {
	var p P
	if err := decodeParams(c.params, a.params, nil, &p); err != nil {
		return nil, &Error{Code: "InvalidParams", Message: err.Error()}
	}
	out, err := a.apply(ctx, Request[P]{
		RunID: c.runID, StepID: c.stepID, Attempt: c.attempt, IdempotencyKey: c.key,
		Rollback: c.rollback, Params: p, Log: c.log, progress: c.progress,
	})
	if err != nil {
		return nil, err
	}
	return encodeOutputs(out, a.outputs)
}

func (a *ActionDef[P, O]) runPlan(ctx context.Context, c planCall) (Plan, error) {
	if a.plan == nil {
		return Plan{}, fmt.Errorf("action %s does not support plan", a.name)
	}
	unknown := pathSet(c.unknown)
	var p P
	if err := decodeParams(c.params, a.params, unknown, &p); err != nil {
		return Plan{}, &Error{Code: "InvalidParams", Message: err.Error()}
	}
	return a.plan(ctx, PlanRequest[P]{
		RunID: c.runID, StepID: c.stepID, Params: p, Log: c.log,
		Unknown: func(path string) bool { return unknown[path] },
	})
}

func (a *ActionDef[P, O]) runValidate(params []byte, unknownList []string) []Diagnostic {
	unknown := pathSet(unknownList)
	var raw any
	if err := json.Unmarshal(params, &raw); err != nil {
		return []Diagnostic{Errorf("", "parameters are not valid JSON: %v", err)}
	}
	var diags []Diagnostic
	for _, pr := range schema.Validate(a.params, raw, unknown) {
		diags = append(diags, Errorf(pr.Path, "%s", pr.Message))
	}
	if len(diags) > 0 || a.validate == nil {
		return diags
	}
	var p P
	if err := decodeParams(params, a.params, unknown, &p); err != nil {
		return []Diagnostic{Errorf("", "%v", err)}
	}
	return a.validate(ValidateRequest[P]{Params: p, Unknown: func(path string) bool { return unknown[path] }})
}

func pathSet(paths []string) map[string]bool {
	m := make(map[string]bool, len(paths))
	for _, p := range paths {
		m[p] = true
	}
	return m
}

// decodeParams fills defaults, turns duration strings into nanoseconds
// where the schema says so, and decodes into the Go value, rejecting
// unknown fields.
func decodeParams(raw []byte, s *schema.Schema, unknown map[string]bool, dst any) error {
	var v any
	if len(raw) == 0 {
		raw = []byte("{}")
	}
	if err := json.Unmarshal(raw, &v); err != nil {
		return fmt.Errorf("parameters are not valid JSON: %w", err)
	}
	if probs := schema.Validate(s, v, unknown); len(probs) > 0 {
		return fmt.Errorf("invalid parameters: %s", probs[0])
	}
	v = normalizeIn(s, v, "", unknown)
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	dec := json.NewDecoder(bytesReader(b))
	if reflect.TypeOf(dst).Elem().Kind() == reflect.Struct {
		dec.DisallowUnknownFields()
	}
	return dec.Decode(dst)
}

func normalizeIn(s *schema.Schema, v any, path string, unknown map[string]bool) any {
	if s == nil {
		return v
	}
	if unknown[path] {
		return nil
	}
	switch x := v.(type) {
	case string:
		if s.Format == schema.FormatDuration {
			if d, err := time.ParseDuration(x); err == nil {
				return int64(d)
			}
		}
	case map[string]any:
		out := make(map[string]any, len(x))
		for k, e := range x {
			ks, _ := s.Property(k)
			out[k] = normalizeIn(ks, e, path+"/"+schema.EscapePointer(k), unknown)
		}
		for _, k := range s.PropertyNames() {
			if _, ok := out[k]; !ok && s.Properties[k].Default != nil {
				out[k] = normalizeIn(s.Properties[k], s.Properties[k].Default, path+"/"+schema.EscapePointer(k), unknown)
			}
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, e := range x {
			out[i] = normalizeIn(s.Items, e, fmt.Sprintf("%s/%d", path, i), unknown)
		}
		return out
	case nil:
		if s.Type == schema.Object && len(s.Properties) > 0 {
			return normalizeIn(s, map[string]any{}, path, unknown)
		}
	}
	return v
}

// encodeOutputs encodes the outputs, writing durations as Go duration strings.
func encodeOutputs(out any, s *schema.Schema) ([]byte, error) {
	b, err := marshalObject(out)
	if err != nil {
		return nil, fmt.Errorf("encoding outputs: %w", err)
	}
	var v any
	if err := json.Unmarshal(b, &v); err != nil {
		return nil, err
	}
	if v == nil {
		v = map[string]any{}
	}
	return json.Marshal(normalizeOut(s, v))
}

func normalizeOut(s *schema.Schema, v any) any {
	if s == nil {
		return v
	}
	switch x := v.(type) {
	case float64:
		if s.Format == schema.FormatDuration {
			return time.Duration(int64(x)).String()
		}
	case map[string]any:
		for k, e := range x {
			ks, _ := s.Property(k)
			x[k] = normalizeOut(ks, e)
		}
	case []any:
		for i, e := range x {
			x[i] = normalizeOut(s.Items, e)
		}
	}
	return v
}
