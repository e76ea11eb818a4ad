package awscommon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// retryables is the SDK's own notion of a transient failure (throttling,
// 5xx, connection errors, request timeouts); the standard retryer has
// already retried these with backoff, so what reaches us is worth another
// attempt of the whole step only under the runbook's retry policy.
var retryables = retry.IsErrorRetryables(retry.DefaultRetryables)

// Classify wraps an SDK error with what was being done ("describing global
// cluster db in eu-west-1") and marks it retryable when the SDK considers it
// transient, fatal otherwise. Context cancellation and deadlines pass
// through unchanged so the host sees them as such.
func Classify(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	if fromContext(err) {
		if words := unreachable(err); words != "" {
			return fmt.Errorf("%s: %s (detail: %w)", fmt.Sprintf(format, args...), words, err)
		}
		return fmt.Errorf("%s: %w", fmt.Sprintf(format, args...), err)
	}
	var pe *plugin.Error
	if errors.As(err, &pe) {
		return err
	}
	what := fmt.Sprintf(format, args...)
	code := ErrorCode(err)
	msg := what + ": " + Describe(err)
	if retryables.IsErrorRetryable(err) == aws.TrueTernary {
		return &plugin.Error{Code: code, Message: msg, Retryable: true, Err: err, RetryAfter: retryAfter(err)}
	}
	return &plugin.Error{Code: code, Message: msg, Err: err}
}

// retryAfter is the Retry-After header of the HTTP answer behind err, if
// it had one (RFC 9110, section 10.2.3; some AWS endpoints send it with
// 503 Slow Down or throttling answers), else 0.
func retryAfter(err error) time.Duration {
	var re *smithyhttp.ResponseError
	if !errors.As(err, &re) || re.Response == nil || re.Response.Response == nil {
		return 0
	}
	d, _ := plugin.ParseRetryAfter(re.Response.Header.Get("Retry-After"), time.Now())
	return d
}

// fromContext reports whether err is the caller's context ending (the step's
// deadline, an interruption). errors.Is is not enough: net/http's own
// timeouts (no answer within the response timeout) also claim to be
// context.DeadlineExceeded, and those are failures of one request that the
// SDK retried, worth another attempt.
func fromContext(err error) bool {
	for e := err; e != nil; e = errors.Unwrap(e) {
		if e == context.Canceled || e == context.DeadlineExceeded {
			return true
		}
	}
	return false
}

// ErrorCode returns the AWS error code of err ("GlobalClusterNotFoundFault"),
// or "".
func ErrorCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}

// IsCode reports whether err carries one of the AWS error codes.
func IsCode(err error, codes ...string) bool {
	c := ErrorCode(err)
	for _, want := range codes {
		if c == want && c != "" {
			return true
		}
	}
	return false
}

// Describe renders an SDK error briefly: "Code: message" for an API error,
// the whole chain otherwise (a connection error says where it could not
// connect).
func Describe(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		if m := ae.ErrorMessage(); m != "" {
			return ae.ErrorCode() + ": " + m
		}
		return ae.ErrorCode()
	}
	if words := unreachable(err); words != "" {
		return words + " (detail: " + err.Error() + ")"
	}
	return err.Error()
}

// regionError is an SDK error with the region its request was sent to.
type regionError struct {
	region string
	err    error
}

func (e *regionError) Error() string { return e.err.Error() }
func (e *regionError) Unwrap() error { return e.err }

// regionNamed is an SDK option that records the region on every error of
// an operation (after the SDK's own retries).
func regionNamed(region string) func(*middleware.Stack) error {
	return func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("RunbookRegionNamed",
			func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				out, md, err := next.HandleInitialize(ctx, in)
				if err != nil {
					err = &regionError{region: region, err: err}
				}
				return out, md, err
			}), middleware.Before)
	}
}

// unreachable says in words that a request got no answer, or could not be
// sent, naming the region, the service and the operation ("region
// unreachable: eu-west-1 did not answer ECS DescribeServices ..."); "" for
// any other error (an answer, such as an API error, speaks for itself).
func unreachable(err error) string {
	region, service := "the region", "the service"
	var re *regionError
	if errors.As(err, &re) {
		region = re.region
	}
	var oe *smithy.OperationError
	if errors.As(err, &oe) {
		service = oe.ServiceID + " " + oe.OperationName
	}
	var ne net.Error
	var op *net.OpError
	var dns *net.DNSError
	switch {
	case re == nil:
		return ""
	case fromContext(err):
		return fmt.Sprintf("no answer from %s in %s before the step's deadline", service, region)
	case errors.As(err, &dns) || errors.As(err, &op) && op.Op == "dial":
		return fmt.Sprintf("region unreachable: could not connect to %s in %s", service, region)
	case errors.As(err, &ne) && ne.Timeout():
		return fmt.Sprintf("region unreachable: %s did not answer %s within the response timeout", region, service)
	}
	return ""
}
