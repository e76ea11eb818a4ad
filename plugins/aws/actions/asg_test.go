package actions

import (
	"context"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// seedWorkerASG creates a worker auto-scaling group of n instances.
func seedWorkerASG(t *testing.T, env *awstest.Env, region, name string, n int32) {
	t.Helper()
	ctx := context.Background()
	e := ec2.NewFromConfig(env.Config(t, region))
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"amzn2-ami-*"}}}})
	if err != nil || len(imgs.Images) == 0 {
		t.Fatalf("no image to launch workers from: %v", err)
	}
	if _, err := e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Small},
	}); err != nil {
		t.Fatal(err)
	}
	if _, err := autoscaling.NewFromConfig(env.Config(t, region)).CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(0), MaxSize: aws.Int32(n + 2), DesiredCapacity: aws.Int32(n),
		LaunchTemplate:    &astypes.LaunchTemplateSpecification{LaunchTemplateName: aws.String(name)},
		AvailabilityZones: []string{region + "a"},
	}); err != nil {
		t.Fatal(err)
	}
}

// groupInstances reads the group's instance ids and lifecycle states.
func groupInstances(t *testing.T, env *awstest.Env, region, name string) map[string]string {
	t.Helper()
	out, err := autoscaling.NewFromConfig(env.Config(t, region)).DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil || len(out.AutoScalingGroups) != 1 {
		t.Fatalf("describe %s: %v", name, err)
	}
	m := map[string]string{}
	for _, i := range out.AutoScalingGroups[0].Instances {
		m[aws.ToString(i.InstanceId)] = string(i.LifecycleState)
	}
	return m
}

func keys(m map[string]string) []string {
	var out []string
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func strs(v any) []string {
	var out []string
	for _, x := range v.([]any) {
		out = append(out, x.(string))
	}
	return out
}

// checkCycled asserts the group now holds exactly new, all InService, none
// of old.
func checkCycled(t *testing.T, env *awstest.Env, group string, old, new []string) {
	t.Helper()
	now := groupInstances(t, env, drRegion, group)
	if len(now) != len(old) || len(new) != len(old) {
		t.Fatalf("old %v, new %v, group now %v", old, new, now)
	}
	for _, id := range old {
		if _, ok := now[id]; ok {
			t.Fatalf("old instance %s still in the group: %v", id, now)
		}
	}
	for _, id := range new {
		if now[id] != "InService" {
			t.Fatalf("new instance %s is %q: %v", id, now[id], now)
		}
	}
}

func TestASGCycleRolling(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	name := awstest.Name(t, "workers")
	seedWorkerASG(t, env, drRegion, name, 3)
	before := keys(groupInstances(t, env, drRegion, name))
	out, err := c.Apply(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name, "method": "rolling", "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if out["method"] != "rolling" {
		t.Fatalf("outputs = %v", out)
	}
	if got := strs(out["old_instance_ids"]); len(got) != 3 || got[0] != before[0] || got[2] != before[2] {
		t.Fatalf("old_instance_ids = %v, want %v", got, before)
	}
	checkCycled(t, env, name, before, strs(out["new_instance_ids"]))
	if msgs := progressMessages(c); !hasMessage(msgs, "terminating instance") || !hasMessage(msgs, "all instances replaced") {
		t.Fatalf("progress = %v", msgs)
	}
}

func TestASGCycleInstanceRefresh(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	name := awstest.Name(t, "workers")
	seedWorkerASG(t, env, drRegion, name, 2)
	before := keys(groupInstances(t, env, drRegion, name))
	// method auto uses instance refresh where the API offers it (AWS, and the emulator).
	out, err := c.Apply(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name, "min_healthy_percentage": 50, "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if out["method"] != "instance_refresh" || out["instance_refresh_id"] == "" || !hasMessage(progressMessages(c), "instance refresh Successful") {
		t.Fatalf("outputs = %v, progress = %v", out, progressMessages(c))
	}
	checkCycled(t, env, name, before, strs(out["new_instance_ids"]))

	// A refresh someone else started is not cycled over.
	if _, err := autoscaling.NewFromConfig(env.Config(t, drRegion)).StartInstanceRefresh(context.Background(), &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String(name)}); err != nil {
		t.Fatal(err)
	}
	_, err = c.Apply(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name, "method": "instance_refresh"}))
	if pe := wantFatal(t, err, "already has an instance refresh in progress"); pe.Code != "InstanceRefreshInProgress" {
		t.Fatalf("code = %q", pe.Code)
	}
}

func TestASGCycleErrorsAndPlan(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	_, err := c.Apply(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": "nope"}))
	name := awstest.Name(t, "workers")
	wantFatal(t, err, `auto-scaling group "nope" not found`)

	seedWorkerASG(t, env, drRegion, name, 2)
	before := groupInstances(t, env, drRegion, name)
	plan, err := c.PlanParams(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name}))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || plan.Changes[0].Kind != plugin.ChangeReplace || len(plan.Changes[0].Before.([]any)) != 2 {
		t.Fatalf("plan = %+v", plan)
	}
	after := groupInstances(t, env, drRegion, name)
	if len(after) != 2 || keys(after)[0] != keys(before)[0] || keys(after)[1] != keys(before)[1] {
		t.Fatalf("plan changed the group: %v -> %v", before, after)
	}
	d, err := c.Describe(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if a, _ := d.Action("asg_cycle"); a.Idempotent {
		t.Fatal("asg_cycle must not claim to be idempotent")
	}
}

// protectAndStandby protects the first instance (by id) from scale in and
// puts the second in Standby (decrementing the desired capacity).
func protectAndStandby(t *testing.T, env *awstest.Env, group string) (protectedID, standbyID string, others []string) {
	t.Helper()
	ids := keys(groupInstances(t, env, drRegion, group))
	a := autoscaling.NewFromConfig(env.Config(t, drRegion))
	ctx := context.Background()
	if _, err := a.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: aws.String(group), InstanceIds: ids[:1], ProtectedFromScaleIn: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: aws.String(group), InstanceIds: ids[1:2], ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	return ids[0], ids[1], ids[2:]
}

func refreshCount(t *testing.T, env *awstest.Env, group string) int {
	t.Helper()
	out, err := autoscaling.NewFromConfig(env.Config(t, drRegion)).DescribeInstanceRefreshes(context.Background(), &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(group)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.InstanceRefreshes)
}

// By default protected and Standby instances are found first and refused,
// by id, before anything changes; asg_status reports them for the readiness check.
func TestASGCycleRefusesProtectedAndStandbyInstances(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	name := awstest.Name(t, "workers")
	seedWorkerASG(t, env, drRegion, name, 3)
	prot, standby, _ := protectAndStandby(t, env, name)
	before := groupInstances(t, env, drRegion, name)

	st, err := c.Apply(tctx(t), "asg_status", env.Params(drRegion, map[string]any{"auto_scaling_group": name}))
	if err != nil {
		t.Fatal(err)
	}
	if st["ready"] != false || strs(st["protected_instance_ids"])[0] != prot || strs(st["standby_instance_ids"])[0] != standby || st["region"] != drRegion || st["desired"] != float64(2) {
		t.Fatalf("asg_status = %v", st)
	}
	if probs := strings.Join(strs(st["problems"]), "; "); !strings.Contains(probs, prot) || !strings.Contains(probs, standby) {
		t.Fatalf("problems %q", probs)
	}

	_, err = c.Apply(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name, "poll_interval": "100ms"}))
	pe := wantFatal(t, err, prot, standby, "protected from scale in", "Standby", "protected_instances", "standby_instances")
	if pe.Code != "ProtectedInstances" {
		t.Fatalf("code %q", pe.Code)
	}
	if n := refreshCount(t, env, name); n != 0 {
		t.Fatalf("%d instance refreshes started after a refusal", n)
	}
	if after := groupInstances(t, env, drRegion, name); len(after) != len(before) {
		t.Fatalf("the group changed: %v -> %v", before, after)
	}
	plan, err := c.PlanParams(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name}))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Diagnostics) != 1 || !strings.Contains(plan.Diagnostics[0].Summary, prot) {
		t.Fatalf("plan diagnostics %+v, want the refusal", plan.Diagnostics)
	}
	// Rolling replacement cannot wait for protection to go.
	_, err = c.Apply(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name, "method": "rolling", "protected_instances": "wait", "standby_instances": "ignore"}))
	wantFatal(t, err, "wait needs an instance refresh", prot)
}

// ignore leaves them running (and says so); refresh and terminate replace
// the protected instance and terminate the Standby one.
func TestASGCycleIncludesProtectedAndStandbyWhenAsked(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	name := awstest.Name(t, "workers")
	seedWorkerASG(t, env, drRegion, name, 3)
	prot, standby, others := protectAndStandby(t, env, name)

	out, err := c.Apply(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name, "min_healthy_percentage": 0,
		"protected_instances": "ignore", "standby_instances": "ignore", "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if got := strs(out["ignored_instance_ids"]); len(got) != 2 || !slices.Contains(got, prot) || !slices.Contains(got, standby) {
		t.Fatalf("ignored %v", got)
	}
	prefs := out["preferences"].(map[string]any)
	if prefs["ScaleInProtectedInstances"] != "Ignore" || prefs["StandbyInstances"] != "Ignore" || prefs["SkipMatching"] != "false" {
		t.Fatalf("preferences %v", prefs)
	}
	now := groupInstances(t, env, drRegion, name)
	if now[prot] != "InService" || now[standby] != "Standby" {
		t.Fatalf("ignored instances touched: %v", now)
	}
	if _, ok := now[others[0]]; ok {
		t.Fatalf("the unprotected instance was not replaced: %v", now)
	}

	out, err = c.Apply(tctx(t), "asg_cycle", env.Params(drRegion, map[string]any{"auto_scaling_group": name, "min_healthy_percentage": 0,
		"protected_instances": "refresh", "standby_instances": "terminate", "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	now = groupInstances(t, env, drRegion, name)
	if _, ok := now[prot]; ok {
		t.Errorf("protected instance not refreshed: %v", now)
	}
	if _, ok := now[standby]; ok {
		t.Errorf("Standby instance not terminated: %v", now)
	}
	if len(strs(out["ignored_instance_ids"])) != 0 || len(now) != 2 {
		t.Errorf("outputs %v, group %v", out, now)
	}
}
