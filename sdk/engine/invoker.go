package engine

import (
	"context"
	"time"

	"github.com/runbookhq/runbook/sdk/spec"
)

// Call is one invocation of a plugin action.
type Call struct {
	Plugin string
	Action string
	RunID  string
	StepID string
	// Attempt counts from 1 across retries and resumes of the step.
	Attempt int
	// IdempotencyKey is stable for one step of one run (run id + step id;
	// rollbacks add a suffix).
	IdempotencyKey string
	Rollback       bool
	Params         map[string]any
	// Deadline of this attempt; zero if none.
	Deadline time.Time
}

// PlanCall asks an action what it would change.
type PlanCall struct {
	Plugin, Action, RunID, StepID string
	Params                        map[string]any
	// Unknown lists JSON pointers of params only known at run time.
	Unknown []string
}

// Invoker runs plugin actions. The engine depends only on this interface:
// pluginhost implements it over go-plugin, and embedders or tests can
// implement it in-process.
//
// Errors: a *spec.Error is the action's own failure (Retryable says whether
// another attempt may help). Any other error is a transport failure; the
// engine treats it as retryable, except when it wraps a *spec.Error (a
// plugin process that died mid-action is reported as a fatal *spec.Error
// with code "PluginExited").
type Invoker interface {
	Invoke(ctx context.Context, call Call, progress func(spec.Progress)) (map[string]any, error)
	Plan(ctx context.Context, call PlanCall) (*spec.Plan, error)
}
