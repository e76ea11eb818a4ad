package cli

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/journal/s3store"
)

// S3LeaseEnv sets the lease of the S3 run lock (a Go duration, at least
// 1s; default s3store.DefaultLease): how long after its holder stops
// renewing it (a crash) the lock is reported stale and `runbook unlock`
// removes it without --force.
const S3LeaseEnv = "RUNBOOK_S3_LOCK_LEASE"

func init() { openS3Store = openS3 }

// openS3 opens `--state s3://bucket/prefix` with the AWS SDK's default
// configuration (credential chain, AWS_REGION, AWS_ENDPOINT_URL).
func openS3(ctx context.Context, url, unlock string) (journal.Store, error) {
	opts := s3store.Options{
		UnlockCommand: unlock,
		// The store has no terminal of its own: a renewal that failed, or
		// a lock that was lost mid-run, is said on stderr at once.
		Warnf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "warning: "+format+"\n", args...)
		},
	}
	if v := os.Getenv(S3LeaseEnv); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil || d < time.Second {
			return nil, usageError("$%s=%q: want a duration of at least 1s, such as 60s", S3LeaseEnv, v)
		}
		opts.Lease = d
	}
	st, err := s3store.Open(ctx, url, opts)
	if err != nil {
		if errors.Is(err, s3store.ErrBadURL) {
			return nil, usageError("--state: %v", err)
		}
		return nil, &ExitError{Code: ExitFailed, Err: fmt.Errorf("--state: %w", err)}
	}
	return st, nil
}
