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
	// Attempt counts from 1 across retries and resumes of the step (a
	// rollback has its own count).
	Attempt int
	// IdempotencyKey is stable for one step of one run, across attempts and
	// resumes: "<run id>/<step id>", and "<run id>/<step id>/rollback" for
	// the step's rollback.
	IdempotencyKey string
	Rollback       bool
	// Params are the rendered `with`, with real (unredacted) values. The
	// map is the Invoker's to keep: each attempt gets a fresh copy.
	Params map[string]any
	// Deadline of this attempt; zero if none. The ctx given to Invoke
	// carries the same deadline.
	Deadline time.Time
}

// PlanCall asks an action what it would change.
type PlanCall struct {
	Plugin, Action, RunID, StepID string
	Params                        map[string]any
	// Unknown lists JSON pointers of params only known at run time.
	Unknown []string
}

// CodePluginExited is the code of the *spec.Error an Invoker returns when
// the plugin process died during the call (pluginhost.CodePluginExited).
const CodePluginExited = "PluginExited"

// Invoker runs plugin actions. The engine depends only on this interface:
// pluginhost implements it over go-plugin, and embedders or tests can
// implement it in-process. Invoke and Plan are called concurrently for the
// children of a parallel group.
//
// Invoke must return promptly once ctx is done (the attempt timed out, or
// the run was interrupted) and make sure the action sees the cancellation.
// progress may be called any number of times before Invoke returns.
//
// Errors: a *spec.Error is the action's own failure (Retryable says whether
// another attempt may help). Any other error is a transport failure. The
// engine retries transport failures, and attempts that ran out of time,
// only for actions declared idempotent: for the others it cannot know
// whether the failed attempt took effect. A plugin process that died
// mid-action is reported as a *spec.Error with code CodePluginExited; the
// engine treats it like a transport failure (retried for idempotent
// actions only).
type Invoker interface {
	Invoke(ctx context.Context, call Call, progress func(spec.Progress)) (map[string]any, error)
	Plan(ctx context.Context, call PlanCall) (*spec.Plan, error)
}
