package expr

import (
	"time"

	"github.com/expr-lang/expr/types"

	"github.com/runbookhq/runbook/sdk/schema"
)

// Env describes what an expression may read at one point of a runbook:
// inputs, the steps that have run before it (their outputs and status), the
// current step's outputs (inside `until` only), and the run.
type Env struct {
	Inputs map[string]types.Type
	// Steps maps each visible step id to the type of its outputs.
	Steps map[string]types.Type
	// Outputs is the current step's outputs type; nil where `outputs` is
	// not available.
	Outputs types.Type
}

// Map returns the expr-lang environment type. Maps are strict: reading a
// name that is not declared is a compile error.
func (e Env) Map() types.Map {
	in := types.Map{}
	for k, t := range e.Inputs {
		in[k] = t
	}
	steps := types.Map{}
	for id, t := range e.Steps {
		if t == nil {
			t = types.Any
		}
		steps[id] = types.Map{"outputs": t, "status": types.String, "started_at": types.String, "finished_at": types.String}
	}
	m := types.Map{
		"inputs": in,
		"steps":  steps,
		"run":    types.Map{"id": types.String, "mode": types.String, "started_at": types.String},
	}
	if e.Outputs != nil {
		m["outputs"] = e.Outputs
	}
	return m
}

// Input types, as declared in a runbook's `inputs`.
func InputType(typ string) types.Type {
	switch typ {
	case "string":
		return types.String
	case "number":
		return types.Float64
	case "bool":
		return types.Bool
	case "list":
		return types.Array(types.Any)
	}
	return types.Map{types.Extra: types.Any}
}

// SchemaType is the expr type of values described by s: closed objects are
// strict maps, so `steps.db.outputs.writer_regoin` is a compile error.
func SchemaType(s *schema.Schema) types.Type {
	if s == nil {
		return types.Any
	}
	switch s.Type {
	case schema.String:
		return types.String
	case schema.Number, schema.Integer:
		return types.Float64
	case schema.Boolean:
		return types.Bool
	case schema.Array:
		return types.Array(SchemaType(s.Items))
	case schema.Object:
		m := types.Map{}
		for k, p := range s.Properties {
			m[k] = SchemaType(p)
		}
		switch {
		case s.Additional != nil:
			m[types.Extra] = SchemaType(s.Additional)
		case !s.Closed:
			m[types.Extra] = types.Any
		}
		return m
	}
	return types.Any
}

// Scope is the runtime counterpart of Env: the values expressions read.
type Scope struct {
	Inputs map[string]any
	Steps  map[string]StepValues
	// Outputs is the current step's outputs, for `until`.
	Outputs map[string]any
	RunID   string
	RunMode string
	// RunStarted is exposed as run.started_at (RFC 3339), so outputs can
	// measure recovery time: date(steps.db.finished_at) - date(run.started_at).
	RunStarted time.Time
}

// StepValues is what a step exposes to later expressions.
type StepValues struct {
	Status  string
	Outputs map[string]any
	// StartedAt and FinishedAt are exposed as RFC 3339 strings ("" if unset).
	StartedAt, FinishedAt time.Time
}

func rfc3339(t time.Time) string {
	if t.IsZero() {
		return ""
	}
	return t.UTC().Format(time.RFC3339Nano)
}

// Map builds the environment map for evaluation.
func (s *Scope) Map() map[string]any {
	steps := make(map[string]any, len(s.Steps))
	for id, v := range s.Steps {
		out := v.Outputs
		if out == nil {
			out = map[string]any{}
		}
		steps[id] = map[string]any{"outputs": out, "status": v.Status,
			"started_at": rfc3339(v.StartedAt), "finished_at": rfc3339(v.FinishedAt)}
	}
	inputs := s.Inputs
	if inputs == nil {
		inputs = map[string]any{}
	}
	m := map[string]any{
		"inputs": inputs,
		"steps":  steps,
		"run":    map[string]any{"id": s.RunID, "mode": s.RunMode, "started_at": rfc3339(s.RunStarted)},
	}
	if s.Outputs != nil {
		m["outputs"] = s.Outputs
	}
	return m
}
