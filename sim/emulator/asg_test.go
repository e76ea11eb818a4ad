package emulator_test

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/runbookhq/runbook/sim/emulator"
)

// The instance refresh preferences for protected and Standby instances, launch
// lifecycle hooks, warm-up, and the hooks that tell a fake about instances.
// These tests move the clock by hours (the one-hour wait limit, heartbeat
// timeouts), which would put the shared emulator's clock past the windows
// other tests read metrics in, so they share an emulator of their own
// (transitions of `long`), one after another.

var (
	asgEmuOnce sync.Once
	asgEmu     *emulator.Emulator
	asgEmuErr  error
)

func asgEmulator(t *testing.T) *emulator.Emulator {
	t.Helper()
	asgEmuOnce.Do(func() {
		tm := emulator.Timing{emulator.ASGInstanceRefresh: long.Seconds(), emulator.ASGInstanceWarmup: long.Seconds()}
		asgEmu, asgEmuErr = emulator.Start(context.Background(), emulator.Options{Timing: tm, IgnoreExternal: true})
		if asgEmuErr == nil {
			stopAfterTests = append(stopAfterTests, asgEmu)
		}
	})
	if asgEmuErr != nil {
		t.Fatal(asgEmuErr)
	}
	return asgEmu
}

// asgWorkers is workers() on the ASG tests' emulator.
func asgWorkers(t *testing.T, name string, n int32) *autoscaling.Client {
	t.Helper()
	return workersOn(t, asgEmulator(t), name, n)
}

func asgAdvance(t *testing.T, d time.Duration) {
	t.Helper()
	if err := asgEmulator(t).Advance(context.Background(), d); err != nil {
		t.Fatal(err)
	}
}

func refreshOf(t *testing.T, a *autoscaling.Client, group, id string) astypes.InstanceRefresh {
	t.Helper()
	out := must(a.DescribeInstanceRefreshes(context.Background(), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(group), InstanceRefreshIds: []string{id}})).ok(t)
	if len(out.InstanceRefreshes) != 1 {
		t.Fatalf("refresh %s not found", id)
	}
	return out.InstanceRefreshes[0]
}

func startRefresh(t *testing.T, a *autoscaling.Client, group string, prefs *astypes.RefreshPreferences) string {
	t.Helper()
	return aws.ToString(must(a.StartInstanceRefresh(context.Background(), &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String(group), Preferences: prefs})).ok(t).InstanceRefreshId)
}

// inState is an instance of the group in state st, or "".
func inState(t *testing.T, a *autoscaling.Client, group string, st astypes.LifecycleState) string {
	t.Helper()
	for iid, s := range instances(t, a, group) {
		if s == st {
			return iid
		}
	}
	return ""
}

func sortedIDs(m map[string]astypes.LifecycleState) []string {
	var ids []string
	for id := range m {
		ids = append(ids, id)
	}
	slices.Sort(ids)
	return ids
}

func ec2State(t *testing.T, id string) ec2types.InstanceStateName {
	t.Helper()
	out := must(ec2.NewFromConfig(asgEmulator(t).Config(primary)).DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})).ok(t)
	return out.Reservations[0].Instances[0].State.Name
}

// With the API's defaults (Wait for both), a refresh replaces the other
// instances, then waits for the protected and Standby ones, and fails after
// the wait limit naming them; they are left as they were.
func TestASGRefreshWaitsForProtectedAndStandbyThenFails(t *testing.T) {
	ctx := context.Background()
	const g = "wait-workers"
	a := asgWorkers(t, g, 4)
	ids := sortedIDs(instances(t, a, g))
	protected, standby := ids[0], ids[1]
	must(a.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(g), InstanceIds: []string{protected}, ProtectedFromScaleIn: aws.Bool(true)})).ok(t)
	must(a.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String(g), InstanceIds: []string{standby}, ShouldDecrementDesiredCapacity: aws.Bool(true)})).ok(t)

	id := startRefresh(t, a, g, nil)
	r := refreshOf(t, a, g, id)
	if r.Preferences.ScaleInProtectedInstances != astypes.ScaleInProtectedInstancesWait || r.Preferences.StandbyInstances != astypes.StandbyInstancesWait {
		t.Errorf("default preferences %+v, want Wait for both", r.Preferences)
	}
	asgAdvance(t, long+time.Second)
	r = refreshOf(t, a, g, id)
	reason := aws.ToString(r.StatusReason)
	if r.Status != astypes.InstanceRefreshStatusInProgress || !strings.Contains(reason, protected) || !strings.Contains(reason, standby) {
		t.Fatalf("after the others: %s %q, want InProgress waiting for %s and %s", r.Status, reason, protected, standby)
	}
	now := instances(t, a, g)
	if now[protected] != astypes.LifecycleStateInService || now[standby] != astypes.LifecycleStateStandby || len(now) != 4 {
		t.Fatalf("group while waiting: %v", now)
	}
	for _, old := range ids[2:] {
		if _, ok := now[old]; ok {
			t.Errorf("unprotected instance %s not replaced: %v", old, now)
		}
	}
	// One hour later (the AWS limit), the refresh has failed.
	asgAdvance(t, 3600*time.Second)
	r = refreshOf(t, a, g, id)
	if r.Status != astypes.InstanceRefreshStatusFailed || !strings.Contains(aws.ToString(r.StatusReason), protected) {
		t.Fatalf("after the wait limit: %s %q, want Failed naming %s", r.Status, aws.ToString(r.StatusReason), protected)
	}
	if now := instances(t, a, g); now[protected] != astypes.LifecycleStateInService || now[standby] != astypes.LifecycleStateStandby {
		t.Errorf("after the failure: %v", now)
	}
}

// Wait proceeds once the protection is removed and the instance is back in service.
func TestASGRefreshWaitProceedsWhenReleased(t *testing.T) {
	ctx := context.Background()
	const g = "release-workers"
	a := asgWorkers(t, g, 3)
	ids := sortedIDs(instances(t, a, g))
	must(a.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(g), InstanceIds: ids[:1], ProtectedFromScaleIn: aws.Bool(true)})).ok(t)
	must(a.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String(g), InstanceIds: ids[1:2], ShouldDecrementDesiredCapacity: aws.Bool(true)})).ok(t)
	id := startRefresh(t, a, g, &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(0)})
	asgAdvance(t, long+time.Second)
	if r := refreshOf(t, a, g, id); r.Status != astypes.InstanceRefreshStatusInProgress {
		t.Fatalf("status %s, want InProgress (waiting)", r.Status)
	}
	must(a.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(g), InstanceIds: ids[:1], ProtectedFromScaleIn: aws.Bool(false)})).ok(t)
	must(a.ExitStandby(ctx, &autoscaling.ExitStandbyInput{AutoScalingGroupName: aws.String(g), InstanceIds: ids[1:2]})).ok(t)
	asgAdvance(t, long+time.Second)
	asgAdvance(t, long+time.Second)
	if r := refreshOf(t, a, g, id); r.Status != astypes.InstanceRefreshStatusSuccessful {
		t.Fatalf("status %s %q, want Successful", r.Status, aws.ToString(r.StatusReason))
	}
	now := instances(t, a, g)
	for _, old := range ids {
		if _, ok := now[old]; ok {
			t.Errorf("instance %s not replaced: %v", old, now)
		}
	}
}

// Ignore leaves them alone and succeeds; Refresh and Terminate replace the
// protected instance and terminate the Standby one.
func TestASGRefreshIgnoreRefreshTerminate(t *testing.T) {
	ctx := context.Background()
	const g = "prefs-workers"
	a := asgWorkers(t, g, 3)
	ids := sortedIDs(instances(t, a, g))
	protected, standby := ids[0], ids[1]
	must(a.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(g), InstanceIds: []string{protected}, ProtectedFromScaleIn: aws.Bool(true)})).ok(t)
	must(a.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String(g), InstanceIds: []string{standby}, ShouldDecrementDesiredCapacity: aws.Bool(true)})).ok(t)

	_, err := a.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String(g),
		Preferences: &astypes.RefreshPreferences{ScaleInProtectedInstances: "Sometimes"}})
	wantCode(t, err, "ValidationError")

	id := startRefresh(t, a, g, &astypes.RefreshPreferences{ScaleInProtectedInstances: astypes.ScaleInProtectedInstancesIgnore, StandbyInstances: astypes.StandbyInstancesIgnore})
	asgAdvance(t, long+time.Second)
	if r := refreshOf(t, a, g, id); r.Status != astypes.InstanceRefreshStatusSuccessful || aws.ToInt32(r.PercentageComplete) != 100 {
		t.Fatalf("Ignore: %s %d%%", r.Status, aws.ToInt32(r.PercentageComplete))
	}
	now := instances(t, a, g)
	if now[protected] != astypes.LifecycleStateInService || now[standby] != astypes.LifecycleStateStandby {
		t.Fatalf("Ignore touched them: %v", now)
	}
	if _, ok := now[ids[2]]; ok {
		t.Fatalf("Ignore did not replace the others: %v", now)
	}

	id = startRefresh(t, a, g, &astypes.RefreshPreferences{ScaleInProtectedInstances: astypes.ScaleInProtectedInstancesRefresh, StandbyInstances: astypes.StandbyInstancesTerminate})
	if _, ok := instances(t, a, g)[standby]; ok {
		t.Errorf("Terminate: the Standby instance is still in the group")
	}
	if s := ec2State(t, standby); s != ec2types.InstanceStateNameTerminated && s != ec2types.InstanceStateNameShuttingDown {
		t.Errorf("Terminate: the Standby instance is %s in EC2", s)
	}
	asgAdvance(t, long+time.Second)
	if r := refreshOf(t, a, g, id); r.Status != astypes.InstanceRefreshStatusSuccessful {
		t.Fatalf("Refresh: %s", r.Status)
	}
	if _, ok := instances(t, a, g)[protected]; ok {
		t.Errorf("Refresh did not replace the protected instance")
	}
}

// A launching lifecycle hook holds each replacement in Pending:Wait until it
// is completed (or its heartbeat timeout applies the default result); the
// warm-up then delays the next batch and the end.
func TestASGRefreshLifecycleHookAndWarmup(t *testing.T) {
	ctx := context.Background()
	const g = "hooked-workers"
	a := asgWorkers(t, g, 2)
	must(a.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String("bootstrap"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(300), DefaultResult: aws.String("ABANDON")})).ok(t)
	old := sortedIDs(instances(t, a, g))
	id := startRefresh(t, a, g, &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(50), InstanceWarmup: aws.Int32(1200)})

	// Past the first batch's boot: its replacement waits for the hook.
	asgAdvance(t, long+time.Second)
	waiting := inState(t, a, g, astypes.LifecycleStatePendingWait)
	if waiting == "" {
		t.Fatalf("no instance in Pending:Wait: %v", instances(t, a, g))
	}
	_, err := a.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String("bootstrap"),
		InstanceId: aws.String(old[0]), LifecycleActionResult: aws.String("CONTINUE")})
	wantCode(t, err, "ValidationError") // no lifecycle action for an old instance
	must(a.CompleteLifecycleAction(ctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: aws.String(g), LifecycleHookName: aws.String("bootstrap"),
		InstanceId: aws.String(waiting), LifecycleActionResult: aws.String("CONTINUE")})).ok(t)
	if st := instances(t, a, g)[waiting]; st != astypes.LifecycleStateInService {
		t.Fatalf("completed instance is %s", st)
	}
	// Warm-up (1200 s) holds the next batch back.
	asgAdvance(t, long+time.Second)
	if r := refreshOf(t, a, g, id); r.Status != astypes.InstanceRefreshStatusInProgress || aws.ToInt32(r.PercentageComplete) != 50 {
		t.Fatalf("during warm-up: %s %d%%", r.Status, aws.ToInt32(r.PercentageComplete))
	}
	// The warm-up ends 1200 s after the first replacement went InService;
	// the second batch then boots for 270 s (its share of the 600 s refresh).
	asgAdvance(t, 1000*time.Second)
	second := inState(t, a, g, astypes.LifecycleStatePendingWait)
	if second == "" {
		t.Fatalf("second batch: no instance in Pending:Wait: %v", instances(t, a, g))
	}
	// Nobody completes it: after the heartbeat timeout ABANDON applies, the
	// instance is terminated and another one launched in its place.
	asgAdvance(t, 301*time.Second)
	now := instances(t, a, g)
	if _, ok := now[second]; ok {
		t.Fatalf("abandoned instance %s still in the group: %v", second, now)
	}
	if r := refreshOf(t, a, g, id); r.Status != astypes.InstanceRefreshStatusInProgress {
		t.Fatalf("after an abandoned launch: %s", r.Status)
	}
}

// A hook registered with /_sim/hooks hears of instances booting and leaving,
// before the request that made them so is answered.
func TestHooksReportInstancesBeforeAnswering(t *testing.T) {
	ctx := context.Background()
	const g = "hooked-fleet"
	a := asgWorkers(t, g, 2)
	type event struct {
		Type       string `json:"type"`
		Region     string `json:"region"`
		Group      string `json:"group"`
		InstanceID string `json:"instance_id"`
	}
	var mu sync.Mutex
	var got []event
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		var body struct{ Events []event }
		_ = json.NewDecoder(r.Body).Decode(&body)
		mu.Lock()
		got = append(got, body.Events...)
		mu.Unlock()
	})}
	go func() { _ = srv.Serve(ln) }()
	t.Cleanup(func() { _ = srv.Close() })

	var reg struct {
		ID        string  `json:"id"`
		Instances []event `json:"instances"`
	}
	if err := asgEmulator(t).Control(ctx, "POST", "hooks", map[string]any{"url": "http://" + ln.Addr().String() + "/events",
		"autoscaling_groups": []map[string]string{{"region": primary, "group": g}}}, &reg); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = asgEmu.Control(context.Background(), "POST", "hooks/remove", map[string]string{"id": reg.ID}, nil)
	})
	if len(reg.Instances) != 2 || reg.Instances[0].Type != "instance-started" {
		t.Fatalf("registration: %+v, want the 2 booted instances", reg.Instances)
	}
	if err := asgEmulator(t).Control(ctx, "POST", "hooks", map[string]any{"url": "http://10.0.0.1/x", "autoscaling_groups": []map[string]string{{"region": primary, "group": g}}}, nil); err == nil {
		t.Error("a hook on a non-loopback address was accepted")
	}

	victim := reg.Instances[0].InstanceID
	must(a.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(victim), ShouldDecrementDesiredCapacity: aws.Bool(false)})).ok(t)
	asgAdvance(t, long+time.Second)
	// The clock moved the replacement InService; the answer to this call
	// comes after the hook was told.
	now := instances(t, a, g)
	mu.Lock()
	defer mu.Unlock()
	var started, stopped []string
	for _, e := range got {
		if e.Group != g || e.Region != primary {
			t.Errorf("event of another group: %+v", e)
		}
		switch e.Type {
		case "instance-started":
			started = append(started, e.InstanceID)
		case "instance-stopped":
			stopped = append(stopped, e.InstanceID)
		}
	}
	if len(stopped) != 1 || stopped[0] != victim {
		t.Errorf("stopped %v, want [%s]", stopped, victim)
	}
	for iid, st := range now {
		if iid != reg.Instances[1].InstanceID && (st != astypes.LifecycleStateInService || !slices.Contains(started, iid)) {
			t.Errorf("replacement %s is %s; hook told of %v", iid, st, started)
		}
	}
}
