package awscommon

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws/arn"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// DefaultPollInterval is how often waits look at the world unless the step
// says otherwise.
const DefaultPollInterval = 2 * time.Second

// MaxTransientPollFailures is how many reads in a row a wait survives when
// each failed with a retryable error (throttling, 5xx, a timeout, after the
// SDK's own retries): the next poll may well succeed, and giving up would
// abandon an operation that goes on without us (a non-idempotent step, such
// as an instance refresh, is not retried by the engine).
const MaxTransientPollFailures = 3

// Poll calls check every interval until it reports done or fails, or ctx
// ends. The first check runs at once. A check that fails with a retryable
// *plugin.Error is tolerated up to MaxTransientPollFailures times in a row.
// A context error names what was being waited for, so a step timeout reads
// "waiting for X: context deadline exceeded".
func Poll(ctx context.Context, interval time.Duration, what string, check func(ctx context.Context) (done bool, err error)) error {
	return poll(ctx, false, interval, what, check)
}

// PollAfter is Poll for an operation the caller has just started (a change
// submitted, a switchover or refresh begun): it cannot be complete yet, so
// the first check comes one interval later instead of at once. That spares
// one read per wait (a wait of T costs T/interval reads, not one more) and
// notices completion no later than Poll does.
func PollAfter(ctx context.Context, interval time.Duration, what string, check func(ctx context.Context) (done bool, err error)) error {
	return poll(ctx, true, interval, what, check)
}

func poll(ctx context.Context, wait bool, interval time.Duration, what string, check func(ctx context.Context) (done bool, err error)) error {
	if interval <= 0 {
		interval = DefaultPollInterval
	}
	first := time.Duration(0)
	if wait {
		first = interval
	}
	t := time.NewTimer(first)
	defer t.Stop()
	failures := 0
	for {
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s: %w", what, ctx.Err())
		case <-t.C:
		}
		done, err := check(ctx)
		var pe *plugin.Error
		switch {
		case err != nil && ctx.Err() == nil && errors.As(err, &pe) && pe.Retryable && failures+1 < MaxTransientPollFailures:
			failures++
		case err != nil:
			return err
		case done:
			return nil
		default:
			failures = 0
		}
		t.Reset(interval)
	}
}

// Changes remembers the last state reported for each key, so a wait emits
// a progress event only when something changed.
type Changes map[string]string

// Changed records state for key and reports whether it differs from the
// last one recorded.
func (c Changes) Changed(key, state string) bool {
	if old, ok := c[key]; ok && old == state {
		return false
	}
	c[key] = state
	return true
}

// RegionOfARN returns the region field of an ARN.
func RegionOfARN(s string) (string, error) {
	a, err := arn.Parse(s)
	if err != nil {
		return "", fmt.Errorf("%q is not an ARN: %w", s, err)
	}
	if a.Region == "" {
		return "", fmt.Errorf("ARN %q has no region", s)
	}
	return a.Region, nil
}

// ResourceName returns the last element of an ARN's resource
// ("arn:aws:rds:eu-west-1:1:cluster:db" -> "db"), or s itself when it is
// not an ARN.
func ResourceName(s string) string {
	a, err := arn.Parse(s)
	if err != nil {
		return s
	}
	r := a.Resource
	if i := strings.LastIndexAny(r, ":/"); i >= 0 {
		r = r[i+1:]
	}
	return r
}
