package cli

import (
	"context"
	"errors"
	"fmt"

	"github.com/runbookhq/runbook/sdk/engine"
)

// Exit codes (docs/cli.md, "Exit codes"): those of a run's outcome are the
// engine's (engine.Result.ExitCode), defined once there; ExitUsage is the
// CLI's own.
const (
	ExitOK             = engine.ExitSucceeded
	ExitFailed         = engine.ExitFailed
	ExitUsage          = 2
	ExitPaused         = engine.ExitPaused
	ExitRollbackFailed = engine.ExitRollbackFailed
	ExitInterrupted    = engine.ExitInterrupted
)

// ExitError carries an exit code. Silent errors have already been reported
// to the user and print nothing more.
type ExitError struct {
	Code   int
	Err    error
	Silent bool
}

func (e *ExitError) Error() string {
	if e.Err == nil {
		return fmt.Sprintf("exit status %d", e.Code)
	}
	return e.Err.Error()
}

func (e *ExitError) Unwrap() error { return e.Err }

// usageError is a problem with how the command was called.
func usageError(format string, args ...any) error {
	return &ExitError{Code: ExitUsage, Err: fmt.Errorf(format, args...)}
}

// silent is an exit code whose reason was already printed.
func silent(code int) error { return &ExitError{Code: code, Silent: true} }

// exitCode maps an error to the process exit code.
func exitCode(err error) int {
	if err == nil {
		return ExitOK
	}
	var ee *ExitError
	if errors.As(err, &ee) {
		return ee.Code
	}
	if errors.Is(err, context.Canceled) {
		return ExitInterrupted
	}
	return ExitFailed
}
