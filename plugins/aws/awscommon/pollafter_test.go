package awscommon

import (
	"context"
	"errors"
	"testing"
	"time"
)

// PollAfter never reads before one interval has passed, and otherwise
// polls as Poll does.
func TestPollAfterWaitsOneIntervalFirst(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 50*time.Millisecond)
	defer cancel()
	n := 0
	err := PollAfter(ctx, time.Hour, "the change", func(context.Context) (bool, error) { n++; return true, nil })
	if !errors.Is(err, context.DeadlineExceeded) || n != 0 {
		t.Fatalf("PollAfter read before its first interval: n = %d, err = %v", n, err)
	}
	n = 0
	if err := PollAfter(context.Background(), time.Millisecond, "three checks", func(context.Context) (bool, error) { n++; return n == 3, nil }); err != nil || n != 3 {
		t.Fatalf("n = %d, err = %v", n, err)
	}
}
