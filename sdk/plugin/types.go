package plugin

import (
	"encoding/json"

	"github.com/runbookhq/runbook/sdk/spec"
)

// The shared types, re-exported so that a plugin imports only this package.
type (
	Description = spec.Description
	ActionSpec  = spec.ActionSpec
	// ControlPlane is a control plane an action depends on (ActionDef.ControlPlane).
	ControlPlane = spec.ControlPlane
	Severity     = spec.Severity
	Diagnostic   = spec.Diagnostic
	Change       = spec.Change
	Plan         = spec.Plan
	Progress     = spec.Progress
	Error        = spec.Error
)

const (
	SeverityError   = spec.SeverityError
	SeverityWarning = spec.SeverityWarning

	ChangeCreate  = spec.ChangeCreate
	ChangeUpdate  = spec.ChangeUpdate
	ChangeDelete  = spec.ChangeDelete
	ChangeReplace = spec.ChangeReplace
	ChangeNoop    = spec.ChangeNoop
	ChangeAction  = spec.ChangeAction
)

var (
	// Errorf makes an error diagnostic at a JSON pointer into the parameters.
	Errorf = spec.Errorf
	// Retryable marks an error as transient: the host retries the attempt.
	Retryable = spec.Retryable
	// Fatal marks an error as permanent (the default for unmarked errors).
	Fatal = spec.Fatal
	// RetryableCode is Retryable with a machine-readable code.
	RetryableCode = spec.RetryableCode
	// RetryAfter marks an error as transient, to be retried no sooner than
	// after the given wait (a server's Retry-After).
	RetryAfter = spec.RetryAfter
	// ParseRetryAfter reads an HTTP Retry-After header value.
	ParseRetryAfter = spec.ParseRetryAfter
	// FatalCode is Fatal with a machine-readable code.
	FatalCode = spec.FatalCode
	codeOf    = spec.CodeOf
)

// marshalObject encodes v as JSON, with nil as an empty object.
func marshalObject(v any) ([]byte, error) {
	b, err := json.Marshal(v)
	if err != nil {
		return nil, err
	}
	if string(b) == "null" {
		// A nil map or pointer is no parameters, not a null object.
		return []byte("{}"), nil
	}
	return b, nil
}
