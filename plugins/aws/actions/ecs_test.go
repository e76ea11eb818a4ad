package actions

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
)

var spaceliftServices = []string{"spacelift-server", "spacelift-drain", "spacelift-scheduler"}

// seedECS creates a cluster with the application's three services, all at
// desired count 0 (a DR installation with its services switched off).
func seedECS(t *testing.T, env *awstest.Env, region, cluster string) {
	t.Helper()
	ctx := context.Background()
	c := ecs.NewFromConfig(env.Config(t, region))
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family: aws.String("spacelift"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{
			Name: aws.String("app"), Image: aws.String("public.ecr.aws/spacelift/server:latest"), Memory: aws.Int32(512),
		}},
	}); err != nil {
		t.Fatal(err)
	}
	for _, s := range spaceliftServices {
		if _, err := c.CreateService(ctx, &ecs.CreateServiceInput{
			Cluster: aws.String(cluster), ServiceName: aws.String(s), TaskDefinition: aws.String("spacelift"), DesiredCount: aws.Int32(0),
		}); err != nil {
			t.Fatal(err)
		}
	}
}

// desiredCounts reads the services' desired counts from the emulator.
func desiredCounts(t *testing.T, env *awstest.Env, region, cluster string) map[string]any {
	t.Helper()
	out, err := ecs.NewFromConfig(env.Config(t, region)).DescribeServices(context.Background(), &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: spaceliftServices})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]any{}
	for _, s := range out.Services {
		m[aws.ToString(s.ServiceName)] = float64(s.DesiredCount)
	}
	return m
}

func counts(server, drain, scheduler float64) map[string]any {
	return map[string]any{"spacelift-server": server, "spacelift-drain": drain, "spacelift-scheduler": scheduler}
}

func TestECSServicesStartThenRollBack(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	cluster := awstest.Name(t, "ecs")
	seedECS(t, env, drRegion, cluster)
	ctx := tctx(t)
	out, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{
		"cluster": cluster, "poll_interval": "100ms",
		"services": []any{
			map[string]any{"name": "spacelift-server", "desired_count": 2},
			map[string]any{"name": "spacelift-drain", "desired_count": 1},
			map[string]any{"name": "spacelift-scheduler", "desired_count": 1},
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(counts(0, 0, 0), out["previous_counts"]); d != "" {
		t.Fatalf("previous_counts (-want +got):\n%s", d)
	}
	if d := cmp.Diff(counts(2, 1, 1), out["counts"]); d != "" {
		t.Fatalf("counts (-want +got):\n%s", d)
	}
	if out["stable"] != true || len(out["changed"].([]any)) != 3 {
		t.Fatalf("outputs = %v", out)
	}
	if d := cmp.Diff(counts(2, 1, 1), desiredCounts(t, env, drRegion, cluster)); d != "" {
		t.Fatalf("emulator state (-want +got):\n%s", d)
	}
	if !hasMessage(progressMessages(c), "all services stable") || !hasMessage(progressMessages(c), "desired count set") {
		t.Fatalf("progress = %v", progressMessages(c))
	}

	// Re-running changes nothing.
	again, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{"cluster": cluster, "poll_interval": "100ms", "desired_counts": counts(2, 1, 1)}))
	if err != nil {
		t.Fatal(err)
	}
	if len(again["changed"].([]any)) != 0 {
		t.Fatalf("re-run changed %v", again["changed"])
	}

	// The rollback form: the previous counts, passed straight back.
	if _, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{"cluster": cluster, "poll_interval": "100ms", "desired_counts": out["previous_counts"]})); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(counts(0, 0, 0), desiredCounts(t, env, drRegion, cluster)); d != "" {
		t.Fatalf("after rollback (-want +got):\n%s", d)
	}
}

func TestECSServicesSplitBrainGuard(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	cluster := awstest.Name(t, "ecs")
	seedECS(t, env, drRegion, cluster)
	seedECS(t, env, primaryRegion, cluster)
	ctx := tctx(t)
	guard := map[string]any{"global_cluster": db.ID}

	// The writer is in the primary region: starting in DR is refused, with
	// nothing changed, not even the services listed before a bad one.
	_, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{
		"cluster": cluster, "desired_counts": counts(2, 1, 1), "require_writer": guard,
	}))
	pe := wantFatal(t, err, "refusing to start services in eu-west-3", "in eu-west-1")
	if pe.Code != "SplitBrainGuard" {
		t.Fatalf("code = %q", pe.Code)
	}
	if d := cmp.Diff(counts(0, 0, 0), desiredCounts(t, env, drRegion, cluster)); d != "" {
		t.Fatalf("guard changed something (-want +got):\n%s", d)
	}

	// Stopping is always allowed, and so is starting next to the writer.
	if _, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{
		"cluster": cluster, "desired_counts": counts(0, 0, 0), "require_writer": guard, "poll_interval": "100ms",
	})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, "ecs_services", env.Params(primaryRegion, map[string]any{
		"cluster": cluster, "desired_counts": counts(1, 1, 1), "require_writer": guard, "poll_interval": "100ms",
	})); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff(counts(1, 1, 1), desiredCounts(t, env, primaryRegion, cluster)); d != "" {
		t.Fatalf("primary (-want +got):\n%s", d)
	}
}

func TestECSServicesUnknownServiceChangesNothing(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	cluster := awstest.Name(t, "ecs")
	seedECS(t, env, drRegion, cluster)
	_, err := c.Apply(tctx(t), "ecs_services", env.Params(drRegion, map[string]any{
		"cluster": cluster, "desired_counts": map[string]any{"spacelift-server": 2, "spacelift-typo": 1},
	}))
	wantFatal(t, err, "no active service spacelift-typo", "nothing was changed")
	if d := cmp.Diff(counts(0, 0, 0), desiredCounts(t, env, drRegion, cluster)); d != "" {
		t.Fatalf("(-want +got):\n%s", d)
	}
	_, err = c.Apply(tctx(t), "ecs_services", env.Params(drRegion, map[string]any{"cluster": "nope", "desired_counts": counts(1, 1, 1)}))
	wantFatal(t, err, "nope")
}

func TestECSServicesPlanChangesNothing(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	cluster := awstest.Name(t, "ecs")
	seedECS(t, env, drRegion, cluster)
	plan, err := c.PlanParams(tctx(t), "ecs_services", env.Params(drRegion, map[string]any{
		"cluster": cluster, "require_writer": map[string]any{"global_cluster": db.ID},
		"services": []any{
			map[string]any{"name": "spacelift-server", "desired_count": 2},
			map[string]any{"name": "spacelift-drain", "desired_count": 0},
		},
	}))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 2 || plan.Changes[0].Before != 0.0 || plan.Changes[0].After != 2.0 || plan.Changes[0].Kind != plugin.ChangeUpdate || plan.Changes[1].Kind != plugin.ChangeNoop {
		t.Fatalf("plan = %+v", plan)
	}
	if len(plan.Diagnostics) != 1 || plan.Diagnostics[0].Severity != plugin.SeverityWarning {
		t.Fatalf("diagnostics = %+v", plan.Diagnostics)
	}
	if d := cmp.Diff(counts(0, 0, 0), desiredCounts(t, env, drRegion, cluster)); d != "" {
		t.Fatalf("plan changed state (-want +got):\n%s", d)
	}
	diags, err := c.Validate(tctx(t), "ecs_services", map[string]any{"region": drRegion, "cluster": "c"}, nil)
	if err != nil || len(diags) != 1 {
		t.Fatalf("validate without counts: %+v, %v", diags, err)
	}
}

// ecs_status reads the counts ecs_services sets, as the map ecs_services
// takes back: what a runbook reads at pre-flight to restore in a rollback.
func TestECSStatusReadsCountsToRestore(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	cluster := awstest.Name(t, "ecs")
	seedECS(t, env, drRegion, cluster)
	ctx := tctx(t)
	if _, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{
		"cluster": cluster, "poll_interval": "100ms", "desired_counts": counts(3, 1, 0),
	})); err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(ctx, "ecs_status", env.Params(drRegion, map[string]any{"cluster": cluster, "services": []any{"spacelift-server", "spacelift-drain", "spacelift-scheduler"}}))
	if err != nil {
		t.Fatal(err)
	}
	sameCounts(t, "desired_counts", counts(3, 1, 0), out["desired_counts"])
	sameCounts(t, "running_counts of stable services", counts(3, 1, 0), out["running_counts"])
	if out["stable"] != true || !strings.Contains(out["summary"].(string), "spacelift-server desired 3") {
		t.Fatalf("stable %v, summary %q", out["stable"], out["summary"])
	}
	// Restoring from the read is exact: stop them, then set what was read.
	if _, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{"cluster": cluster, "poll_interval": "100ms", "desired_counts": counts(0, 0, 0)})); err != nil {
		t.Fatal(err)
	}
	if _, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{"cluster": cluster, "poll_interval": "100ms", "desired_counts": out["desired_counts"]})); err != nil {
		t.Fatal(err)
	}
	sameCounts(t, "restored", counts(3, 1, 0), desiredCounts(t, env, drRegion, cluster))
	_, err = c.Apply(ctx, "ecs_status", env.Params(drRegion, map[string]any{"cluster": cluster, "services": []any{"spacelift-server", "spacelift-typo"}}))
	wantFatal(t, err, "no active service spacelift-typo")
	diags, err := c.Validate(ctx, "ecs_status", map[string]any{"region": drRegion, "cluster": "c", "services": []any{"a", "b", "a"}}, nil)
	if err != nil || len(diags) != 1 || diags[0].Path != "/services/2" {
		t.Fatalf("validate with a service twice: %+v, %v", diags, err)
	}
}

func sameCounts(t *testing.T, what string, want map[string]any, got any) {
	t.Helper()
	if d := cmp.Diff(want, got); d != "" {
		t.Fatalf("%s (-want +got):\n%s", what, d)
	}
}
