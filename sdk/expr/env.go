package expr

import (
	"time"

	"github.com/expr-lang/expr/types"

	"github.com/runbookhq/runbook/sdk/schema"
)

// Type is the static type of something an expression reads: an input, a
// step's outputs. The zero Type is unknown: any value, checked at run time.
type Type struct{ t types.Type }

// Unknown is the type of a value known only at run time.
var Unknown = Type{}

// Scalar types.
var (
	StringType = Type{types.String}
	NumberType = Type{types.Float64}
	BoolType   = Type{types.Bool}
)

// NoOutputs is the outputs type of a parallel group: a closed mapping
// without fields, so reading any output of it is a compile error.
var NoOutputs = ObjectType(nil)

// ObjectType is a closed mapping with the given fields: reading another
// name from it is a compile error.
func ObjectType(fields map[string]Type) Type {
	m := make(types.Map, len(fields))
	for k, t := range fields {
		m[k] = t.expr()
	}
	return Type{m}
}

func (t Type) expr() types.Type {
	if t.t == nil {
		return types.Any
	}
	return t.t
}

// Env describes what an expression may read at one point of a runbook:
// inputs, the steps that have run before it (their outputs and status), the
// current step's outputs (inside `until` and a rollback only), and the run.
type Env struct {
	Inputs map[string]Type
	// Steps maps each visible step id to the type of its outputs.
	Steps map[string]Type
	// Outputs is the current step's outputs type; nil where `outputs` is
	// not available.
	Outputs *Type
}

// typeMap returns the expr-lang environment type. Maps are strict: reading
// a name that is not declared is a compile error.
func (e Env) typeMap() types.Map {
	in := make(types.Map, len(e.Inputs))
	for k, t := range e.Inputs {
		in[k] = t.expr()
	}
	steps := make(types.Map, len(e.Steps))
	for id, t := range e.Steps {
		steps[id] = stepType(t.expr())
	}
	m := types.Map{
		"inputs": in,
		"steps":  steps,
		"run":    types.Map{"id": types.String, "mode": types.String, "started_at": types.String},
	}
	if e.Outputs != nil {
		m["outputs"] = e.Outputs.expr()
	}
	return m
}

// stepType is the type of steps.<id> for a step whose outputs have type t.
func stepType(t types.Type) types.Type {
	return types.Map{"outputs": t, "status": types.String, "started_at": types.String, "finished_at": types.String, "rolled_back": types.Bool}
}

// InputType is the type of an input declared as typ: string, number, bool,
// list, or map (anything else).
func InputType(typ string) Type {
	switch typ {
	case "string":
		return StringType
	case "number":
		return NumberType
	case "bool":
		return BoolType
	case "list":
		return Type{types.Array(types.Any)}
	}
	return Type{types.Map{types.Extra: types.Any}}
}

// SchemaType is the type of values described by s: closed objects are
// strict maps, so `steps.db.outputs.writer_regoin` is a compile error.
func SchemaType(s *schema.Schema) Type { return Type{schemaType(s)} }

func schemaType(s *schema.Schema) types.Type {
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
		return types.Array(schemaType(s.Items))
	case schema.Object:
		m := types.Map{}
		for k, p := range s.Properties {
			m[k] = schemaType(p)
		}
		switch {
		case s.Additional != nil:
			m[types.Extra] = schemaType(s.Additional)
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
	// RolledBack: the step's rollback (a group's: one of its steps') ran
	// and succeeded; what it did is undone.
	RolledBack bool
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
			"started_at": rfc3339(v.StartedAt), "finished_at": rfc3339(v.FinishedAt), "rolled_back": v.RolledBack}
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
