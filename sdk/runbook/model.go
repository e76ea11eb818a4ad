// Package runbook is the runbook language, version 1: the model, decoding
// from YAML with positions, and validation into diagnostics. A *Runbook
// returned without error diagnostics is fully checked: every expression is
// compiled, every action exists and its parameters match its schema.
package runbook

import (
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// Pos is a position in a runbook file (1-based line and column).
type Pos struct {
	File      string
	Line, Col int
}

func (p Pos) String() string {
	if p.Line == 0 {
		return p.File
	}
	return fmt.Sprintf("%s:%d:%d", p.File, p.Line, p.Col)
}

// Runbook is a loaded, validated runbook.
type Runbook struct {
	// Path is the file it was loaded from; Source its bytes; Hash the
	// sha256 of Source in hex (resume refuses a changed runbook).
	Path   string
	Source []byte
	Hash   string

	Version     int
	Name        string
	Description string
	Inputs      []*Input
	Plugins     []*PluginRef
	Defaults    Defaults
	OnFailure   FailurePolicy
	Steps       []*Step
	// Finally are the steps run at the end of every run of the runbook,
	// after its steps and any rollback, whatever happened (docs/language.md,
	// "finally"): read-only, each tolerated to fail.
	Finally []*Step
	Outputs []*Output

	// InputPaths are the fields the runbook's expressions read below its
	// map inputs, in document order: ResolveInputs checks each against the
	// value given, so a config missing a field is refused before anything
	// runs, not when the step that reads it comes.
	InputPaths []*InputPath

	// inputExprs are the expressions that read only inputs: ResolveInputs
	// evaluates them with the values given (early.go).
	inputExprs []inputExpr
}

// InputPath is one place where an expression reads a field below a map
// input through a member chain with constant keys: inputs.<Input>.<Keys>
// (inputs.primary.aws_region, inputs.x["key"]). Keys holds only what the
// expression needs to exist (see expr.InputPath: not behind ?., not the
// last key on the left of ?? or compared with nil).
type InputPath struct {
	Input string
	Keys  []string
	// Pos is where the chain is written; What names the field that holds
	// the expression ("if", "with.region", "rollback.with.zone_id",
	// "outputs.writer_region").
	Pos  Pos
	What string
	// Param is the schema of the action parameter that receives the value
	// as it is (the parameter's value is exactly ${{ inputs.x.y }}), and
	// Uses the action; nil when the value is used otherwise.
	Param *schema.Schema
	Uses  string
	// Guards are the `if` conditions of the reading step and of the groups
	// (and calling steps) around it: the expression is evaluated only if
	// every one holds.
	Guards []Guard
	// Written is the chain as written at Pos when it reads an input of a
	// called runbook that the call binds to Input (inputs.from.aws_region,
	// bound to inputs.primary); "" when the runbook reads Input itself.
	Written string
}

// Guard is an `if` a read depends on.
type Guard struct {
	If *expr.Program
	// Inputs computes, from the run's inputs, the inputs If reads: nil in
	// the run's runbook; for a step of a called runbook, the inputs the call
	// binds (false when they are only known at run time).
	Inputs func(map[string]any) (map[string]any, bool)
}

// Expr is the chain as written in expressions: inputs.primary.aws_region.
func (p *InputPath) Expr() string {
	if p.Written != "" {
		return p.Written
	}
	return "inputs." + p.Input + keysString(p.Keys)
}

// Input is a declared input.
type Input struct {
	Name        string
	Type        InputType
	Description string
	Default     any
	HasDefault  bool
	Enum        []any
	Secret      bool
	Required    bool
	Pos         Pos
}

// InputType is one of the declared input types.
type InputType string

const (
	TypeString InputType = "string"
	TypeNumber InputType = "number"
	TypeBool   InputType = "bool"
	TypeList   InputType = "list"
	TypeMap    InputType = "map"
)

// PluginRef names a plugin executable.
type PluginRef struct {
	Name string
	// Command is the executable: a path (relative to the runbook's
	// directory) or a bare name looked up as documented in pluginhost.
	Command string
	// Env is extra environment for the plugin process.
	Env map[string]string
	Pos Pos
}

// Defaults apply to every step that does not set its own.
type Defaults struct {
	Timeout time.Duration
	Retry   Retry
}

// Retry is a retry policy: Attempts in all (1 = no retry), exponential
// backoff from Delay, capped at MaxDelay, with full jitter unless disabled.
type Retry struct {
	Attempts int
	Delay    time.Duration
	MaxDelay time.Duration
	Jitter   bool
}

// FailurePolicy is what happens when a step fails.
type FailurePolicy string

const (
	OnFailureRollback FailurePolicy = "rollback"
	OnFailureStop     FailurePolicy = "stop"
)

// Step is a step: an action (Uses) or a parallel group (Parallel).
type Step struct {
	ID   string
	Name string
	Pos  Pos

	// Uses is "<plugin>.<action>"; Plugin and Action are its parts.
	// Plugin is "core" for built-ins.
	Uses   string
	Plugin string
	Action string
	// Spec is the action's description from its plugin (or the built-in's).
	Spec *spec.ActionSpec

	If   *expr.Program
	With *expr.Value

	// Timeout bounds one attempt (resolved: the step's, else the default).
	Timeout time.Duration
	// Retry is resolved the same way.
	Retry           Retry
	Until           *Until
	ContinueOnError bool
	Rollback        *Rollback

	Parallel []*Step
	// Call is set on a step that calls another runbook (uses: ./file.yaml):
	// With binds its inputs, its outputs are the step's.
	Call *Call
	// Milestone names the moment this step succeeds ("database writable"):
	// reports and summaries measure it from the start of the run (RTO).
	Milestone string
	// MaxParallel bounds concurrent children of a parallel group (0: all).
	MaxParallel int
}

// IsGroup reports whether the step is a parallel group.
func (s *Step) IsGroup() bool { return len(s.Parallel) > 0 }

// IsCall reports whether the step calls another runbook.
func (s *Step) IsCall() bool { return s.Call != nil }

// Call is a call of another runbook by a step.
type Call struct {
	// Ref is the file as written (./region-switch.yaml), relative to the
	// calling runbook's directory; Runbook the callee, validated.
	Ref     string
	Runbook *Runbook
}

// Until re-runs a step's action until Condition holds.
type Until struct {
	Condition *expr.Program
	// Interval between runs; Timeout bounds the whole polling.
	Interval time.Duration
	Timeout  time.Duration
	Pos      Pos
}

// Rollback is a step's compensation.
type Rollback struct {
	// Attempted (`when: attempted`) compensates the step also when it
	// failed after at least one attempt started, not only when it
	// succeeded: for actions that may have changed something before
	// failing. Such a rollback cannot read the step's outputs.
	Attempted bool
	Uses      string
	Plugin    string
	Action    string
	Spec      *spec.ActionSpec
	With      *expr.Value
	Timeout   time.Duration
	Retry     Retry
	Pos       Pos
}

// Output is a runbook output.
type Output struct {
	Name   string
	Value  *expr.Value
	Secret bool
	Pos    Pos
}

// Catalog tells validation which plugins and actions exist and what their
// parameters and outputs look like. pluginhost implements it from the
// plugins' `describe`; tests implement it with a map.
type Catalog interface {
	// Plugin returns the description of a plugin named in `plugins:`, or an
	// error saying why it could not be described (not found, bad checksum...).
	Plugin(name string) (*spec.Description, error)
}

// Walk calls fn for every step, parallel children after their group, in
// document order: the steps, then the finally steps.
func (r *Runbook) Walk(fn func(*Step)) {
	var walk func([]*Step)
	walk = func(steps []*Step) {
		for _, s := range steps {
			fn(s)
			walk(s.Parallel)
		}
	}
	walk(r.Steps)
	walk(r.Finally)
}

// AllSteps are the top-level steps and then the finally steps.
func (r *Runbook) AllSteps() []*Step {
	if len(r.Finally) == 0 {
		return r.Steps
	}
	return append(append(make([]*Step, 0, len(r.Steps)+len(r.Finally)), r.Steps...), r.Finally...)
}

// StepAt returns the step at a path: a step id (at any depth of this
// runbook), or for a step of a called runbook, the calling step's path, a
// dot and its id (switch.approve_db).
func (r *Runbook) StepAt(path string) *Step {
	id, rest, nested := strings.Cut(path, ".")
	s := r.Step(id)
	if !nested || s == nil {
		return s
	}
	if s.Call == nil {
		return nil
	}
	return s.Call.Runbook.StepAt(rest)
}

// Plugins of the whole program: this runbook's and those of the runbooks
// it calls, by name (a name has one command in a program).
func (r *Runbook) AllPlugins() []*PluginRef {
	seen := map[string]bool{}
	var out []*PluginRef
	var add func(rb *Runbook)
	add = func(rb *Runbook) {
		for _, p := range rb.Plugins {
			if !seen[p.Name] {
				seen[p.Name] = true
				out = append(out, p)
			}
		}
		rb.Walk(func(s *Step) {
			if s.Call != nil {
				add(s.Call.Runbook)
			}
		})
	}
	add(r)
	return out
}

// Step returns the step with the given id, at any depth.
func (r *Runbook) Step(id string) *Step {
	var found *Step
	r.Walk(func(s *Step) {
		if s.ID == id {
			found = s
		}
	})
	return found
}

// Input returns the declared input with the given name.
func (r *Runbook) Input(name string) *Input {
	for _, in := range r.Inputs {
		if in.Name == name {
			return in
		}
	}
	return nil
}
