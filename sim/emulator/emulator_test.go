package emulator

import (
	"context"
	"errors"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/sts"
)

func TestStartServesAWSAndControl(t *testing.T) {
	t.Parallel()
	e := StartForTest(t, Options{IgnoreExternal: true, Timing: Timing{Route53InSync: 0.5}})
	ctx := context.Background()

	id, err := sts.NewFromConfig(e.Config("eu-west-1")).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatalf("GetCallerIdentity: %v", err)
	}
	if id.Account == nil || len(*id.Account) != 12 {
		t.Fatalf("account = %v, want a 12-digit id", id.Account)
	}

	got, err := e.Timing(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if got[Route53InSync] != 0.5 {
		t.Errorf("initial %s = %v, want 0.5 from Options.Timing", Route53InSync, got[Route53InSync])
	}
	if err := e.SetTiming(ctx, Timing{AuroraSwitchover: 7}); err != nil {
		t.Fatal(err)
	}
	if got, _ = e.Timing(ctx); got[AuroraSwitchover] != 7 || got[Route53InSync] != 0.5 {
		t.Errorf("after SetTiming: %v", got)
	}
	if err := e.SetTiming(ctx, Timing{"no_such_transition": 1}); err == nil {
		t.Error("SetTiming accepted an unknown transition")
	}
	if err := e.SetPreset(ctx, PresetRealistic); err != nil {
		t.Fatal(err)
	}
	if got, _ = e.Timing(ctx); got[ECSStabilize] <= 2 {
		t.Errorf("realistic preset %s = %v, want more than the CI default", ECSStabilize, got[ECSStabilize])
	}
	if _, err := ecs.NewFromConfig(e.Config("eu-west-1")).CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("before-reset")}); err != nil {
		t.Fatal(err)
	}
	if err := e.Advance(ctx, time.Hour); err != nil {
		t.Fatal(err)
	}
	if err := e.Reset(ctx); err != nil {
		t.Fatal(err)
	}
	out, err := ecs.NewFromConfig(e.Config("eu-west-1")).ListClusters(ctx, &ecs.ListClustersInput{})
	if err != nil || len(out.ClusterArns) != 0 {
		t.Errorf("after Reset: clusters %v (%v), want none", out, err)
	}
	var clock struct {
		Offset float64 `json:"offset_seconds"`
	}
	if err := e.Control(ctx, "GET", "clock", nil, &clock); err != nil || clock.Offset != 0 {
		t.Errorf("after Reset: clock offset %v (%v), want 0", clock.Offset, err)
	}
	if got, _ = e.Timing(ctx); got[Route53InSync] != 0.5 || got[AuroraSwitchover] == 7 {
		t.Errorf("after Reset, timing = %v, want the start timing", got)
	}
}

func TestStopLeavesNoProcess(t *testing.T) {
	t.Parallel()
	e, err := Start(context.Background(), Options{IgnoreExternal: true})
	if err != nil {
		t.Fatal(err)
	}
	pid := e.PID()
	if err := e.Stop(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
		t.Errorf("process group %d still exists after Stop (kill 0: %v)", pid, err)
	}
	_ = e.Stop() // idempotent
}

// The emulator exits when its stdin closes, which is what happens when the test
// binary that started it dies without running cleanups.
func TestExitsWhenParentGoes(t *testing.T) {
	t.Parallel()
	e, err := Start(context.Background(), Options{IgnoreExternal: true})
	if err != nil {
		t.Fatal(err)
	}
	defer e.Stop()
	_ = e.stdin.Close()
	select {
	case <-e.Done():
	case <-time.After(30 * time.Second): // a hang guard, not a speed assertion
		t.Fatal("emulator kept running after its stdin closed")
	}
}

func TestExternal(t *testing.T) {
	inner := StartForTest(t, Options{IgnoreExternal: true})
	t.Setenv(EnvEndpoint, inner.URL+"/")
	t.Setenv(EnvExternal, "1")
	e, err := Start(context.Background(), Options{TimingPreset: PresetInstant})
	if err != nil {
		t.Fatal(err)
	}
	if !e.External() || !e.HasControl() || e.URL != inner.URL || e.PID() != 0 {
		t.Fatalf("external emulator: external=%v control=%v url=%q pid=%d", e.External(), e.HasControl(), e.URL, e.PID())
	}
	if got, _ := inner.Timing(context.Background()); got[AuroraFailover] != 0 {
		t.Errorf("timing preset not applied to the external emulator: %v", got)
	}
	_ = e.Stop()
	if _, err := sts.NewFromConfig(inner.Config("eu-west-3")).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{}); err != nil {
		t.Errorf("Stop of an external emulator affected it: %v", err)
	}

	// An external endpoint without the control API (LocalStack) still works for AWS calls.
	t.Setenv(EnvEndpoint, "http://127.0.0.1:1")
	e, err = Start(context.Background(), Options{})
	if err != nil {
		t.Fatal(err)
	}
	if e.HasControl() {
		t.Error("unreachable external endpoint reported a control API")
	}
	if err := e.Reset(context.Background()); !errors.Is(err, ErrNoControl) {
		t.Errorf("Reset on external without control: %v, want ErrNoControl", err)
	}
}

func TestRepoRoot(t *testing.T) {
	root, err := RepoRoot()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(root + "/sim/emulator/serve.py"); err != nil {
		t.Fatal(err)
	}
}
