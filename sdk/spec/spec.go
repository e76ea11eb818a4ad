// Package spec holds the plain Go types that plugins, the host and the engine
// share: action descriptions, diagnostics, plans, progress and action errors.
// It depends on no RPC library, so an embedder can run the engine with
// in-process actions; package plugin re-exports these types for authors.
package spec

import (
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/schema"
)

// Description is what a plugin offers: the answer to Describe and to the
// `describe` subcommand.
type Description struct {
	Name            string       `json:"name"`
	Version         string       `json:"version"`
	ProtocolVersion int          `json:"protocol_version"`
	Actions         []ActionSpec `json:"actions"`
}

// Action returns the named action's spec.
func (d *Description) Action(name string) (*ActionSpec, bool) {
	for i := range d.Actions {
		if d.Actions[i].Name == name {
			return &d.Actions[i], true
		}
	}
	return nil, false
}

// ActionSpec describes one action.
type ActionSpec struct {
	Name         string         `json:"name"`
	Doc          string         `json:"doc,omitempty"`
	Params       *schema.Schema `json:"params"`
	Outputs      *schema.Schema `json:"outputs"`
	Idempotent   bool           `json:"idempotent"`
	SupportsPlan bool           `json:"supports_plan"`
	ReadOnly     bool           `json:"read_only"`
	// Permissions are the cloud permissions the action needs (see
	// Permission), for `runbook permissions`.
	Permissions []Permission `json:"permissions,omitempty"`
	// ControlPlanes are the control planes the action depends on that are
	// served from one region whatever region the action works in (Route 53's
	// and CloudFront's in us-east-1): a plan, and a core.approve given the
	// region being left, warn when a path depends on one in that region.
	ControlPlanes []ControlPlane `json:"control_planes,omitempty"`
}

// ControlPlane is a control plane an action calls, and the region it is
// served from.
type ControlPlane struct {
	// Service names it for people: "Route 53", "CloudFront".
	Service string `json:"service"`
	Region  string `json:"region"`
}

// Severity of a Diagnostic.
type Severity int

const (
	SeverityError Severity = iota + 1
	SeverityWarning
)

func (s Severity) String() string {
	if s == SeverityWarning {
		return "warning"
	}
	return "error"
}

// Diagnostic is a problem for the user (not a Go failure), located by a JSON
// pointer into the action's parameters.
type Diagnostic struct {
	Severity Severity `json:"severity"`
	Summary  string   `json:"summary"`
	Detail   string   `json:"detail,omitempty"`
	Path     string   `json:"path,omitempty"`
}

// Errorf makes an error diagnostic at path.
func Errorf(path, format string, args ...any) Diagnostic {
	return Diagnostic{Severity: SeverityError, Path: path, Summary: fmt.Sprintf(format, args...)}
}

// Change is one intended change reported by Plan.
type Change struct {
	Resource     string `json:"resource"`
	Field        string `json:"field,omitempty"`
	Before       any    `json:"before,omitempty"`
	After        any    `json:"after,omitempty"`
	AfterUnknown bool   `json:"after_unknown,omitempty"`
	// Kind is one of the Change* constants.
	Kind string `json:"kind"`
}

// Kinds of Change.
const (
	ChangeCreate  = "create"
	ChangeUpdate  = "update"
	ChangeDelete  = "delete"
	ChangeReplace = "replace"
	ChangeNoop    = "noop"
	ChangeAction  = "action"
)

// Plan is what an action would do, read from the world without changing it.
type Plan struct {
	Summary     string       `json:"summary"`
	Changes     []Change     `json:"changes"`
	Diagnostics []Diagnostic `json:"diagnostics,omitempty"`
}

// Progress is an event an action reports while it runs.
type Progress struct {
	Time    time.Time      `json:"time"`
	Message string         `json:"message"`
	Fields  map[string]any `json:"fields,omitempty"`
}

// Error is an action failure as the plugin reports it. Return one (or wrap
// an error with Retryable or Fatal) to say whether the host may retry.
type Error struct {
	Message     string
	Code        string
	Retryable   bool
	Diagnostics []Diagnostic
	Err         error
	// RetryAfter is the earliest time to retry a retryable error, when the
	// server said (HTTP Retry-After, a throttling hint); 0: not said. The
	// host waits the longer of its own backoff and this, bounded by the
	// step's timeout.
	RetryAfter time.Duration
}

// Error is "Code: Message"; a message that already starts with its code
// (an error wrapped with its own code again) is not prefixed twice.
func (e *Error) Error() string {
	if e.Code != "" && e.Message != "" && !strings.HasPrefix(e.Message, e.Code+": ") {
		return e.Code + ": " + e.Message
	}
	if e.Message != "" {
		return e.Message
	}
	if e.Err != nil {
		return e.Err.Error()
	}
	return e.Code
}

func (e *Error) Unwrap() error { return e.Err }

// Retryable marks err as transient: the host retries the attempt under the
// step's retry policy.
func Retryable(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Message: err.Error(), Retryable: true, Err: err, Code: CodeOf(err)}
}

// Fatal marks err as permanent: the step fails without further attempts.
// Errors that are not marked are fatal.
func Fatal(err error) error {
	if err == nil {
		return nil
	}
	return &Error{Message: err.Error(), Err: err, Code: CodeOf(err)}
}

// RetryableCode is Retryable with a machine-readable code.
func RetryableCode(code string, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...), Retryable: true}
}

// RetryAfter marks err as transient, to be retried no sooner than after
// d: what a server's Retry-After (or a throttling response) asks. A
// negative d counts as 0.
func RetryAfter(err error, d time.Duration) error {
	if err == nil {
		return nil
	}
	var e *Error
	if errors.As(err, &e) {
		c := *e
		c.Retryable, c.RetryAfter = true, max(d, 0)
		return &c
	}
	return &Error{Message: err.Error(), Retryable: true, Err: err, Code: CodeOf(err), RetryAfter: max(d, 0)}
}

// RetryAfterOf returns the retry-after of an *Error in err's chain, or 0.
func RetryAfterOf(err error) time.Duration {
	var e *Error
	if errors.As(err, &e) {
		return e.RetryAfter
	}
	return 0
}

// ParseRetryAfter reads an HTTP Retry-After header value (RFC 9110,
// section 10.2.3: a number of seconds, or an HTTP date) as a wait from
// now; ok is false for an empty or unreadable value. A date in the past
// is 0. Waits are capped at a day: a larger one is a broken server.
func ParseRetryAfter(v string, now time.Time) (d time.Duration, ok bool) {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0, false
	}
	if n, err := strconv.ParseInt(v, 10, 64); err == nil {
		if n < 0 {
			return 0, false
		}
		return min(time.Duration(min(n, 86400))*time.Second, 24*time.Hour), true
	}
	t, err := http.ParseTime(v)
	if err != nil {
		return 0, false
	}
	return min(max(t.Sub(now), 0), 24*time.Hour), true
}

// FatalCode is Fatal with a machine-readable code.
func FatalCode(code string, format string, args ...any) error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// CodeOf returns the code of an *Error, or of an error with an ErrorCode
// method (AWS SDK errors have one), or "".
func CodeOf(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	var coded interface{ ErrorCode() string }
	if errors.As(err, &coded) {
		return coded.ErrorCode()
	}
	return ""
}
