package actions

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
)

// seedServedECS creates a cluster whose first service (spacelift-server) sits
// behind a load balancer's target group, the others behind none, all at 0.
// It returns the target group's name.
func seedServedECS(t *testing.T, env *awstest.Env, region, cluster string) string {
	t.Helper()
	ctx := context.Background()
	cfg := env.Config(t, region)
	subnets, err := ec2.NewFromConfig(cfg).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		t.Fatal(err)
	}
	ids := []string{aws.ToString(subnets.Subnets[0].SubnetId), aws.ToString(subnets.Subnets[1].SubnetId)}
	lbc := elb.NewFromConfig(cfg)
	lb, err := lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String(cluster), Subnets: ids})
	if err != nil {
		t.Fatal(err)
	}
	name := cluster + "-server"
	tg, err := lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String(name), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(1983),
		VpcId: subnets.Subnets[0].VpcId, TargetType: elbtypes.TargetTypeEnumIp})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := lbc.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancers[0].LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg.TargetGroups[0].TargetGroupArn}}}); err != nil {
		t.Fatal(err)
	}
	c := ecs.NewFromConfig(cfg)
	if _, err := c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String(cluster)}); err != nil {
		t.Fatal(err)
	}
	td, err := c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String(cluster), NetworkMode: ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate}, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("app"), Image: aws.String("public.ecr.aws/spacelift/server:latest"),
			PortMappings: []ecstypes.PortMapping{{ContainerPort: aws.Int32(1983)}}}}})
	if err != nil {
		t.Fatal(err)
	}
	for i, s := range spaceliftServices {
		in := &ecs.CreateServiceInput{Cluster: aws.String(cluster), ServiceName: aws.String(s), TaskDefinition: td.TaskDefinition.TaskDefinitionArn,
			DesiredCount: aws.Int32(0), LaunchType: ecstypes.LaunchTypeFargate,
			NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: ids, SecurityGroups: []string{}}}}
		if i == 0 {
			in.LoadBalancers = []ecstypes.LoadBalancer{{TargetGroupArn: tg.TargetGroups[0].TargetGroupArn, ContainerName: aws.String("app"), ContainerPort: aws.Int32(1983)}}
		}
		if _, err := c.CreateService(ctx, in); err != nil {
			t.Fatal(err)
		}
	}
	return name
}

// Stable services are not yet serving: the wait goes on until the targets
// leave initial, and its outputs say what ended it.
func TestECSTargetHealthWaitsForHealthyTargets(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	cluster := awstest.Name(t, "tgh")
	tg := seedServedECS(t, env, drRegion, cluster)
	ctx := tctx(t)
	if _, err := c.Apply(ctx, "ecs_services", env.Params(drRegion, map[string]any{
		"cluster": cluster, "poll_interval": "100ms", "desired_counts": map[string]any{"spacelift-server": 2, "spacelift-drain": 1},
	})); err != nil {
		t.Fatal(err)
	}
	params := env.Params(drRegion, map[string]any{"cluster": cluster, "services": []any{"spacelift-server", "spacelift-drain"}, "poll_interval": "100ms"})
	out, err := c.Apply(ctx, "ecs_target_health", params)
	if err != nil {
		t.Fatal(err)
	}
	if out["healthy"] != true {
		t.Fatalf("outputs %v", out)
	}
	server := out["services"].([]any)[0].(map[string]any)
	group := server["target_groups"].([]any)[0].(map[string]any)
	if group["target_group"] != tg || group["healthy"] != float64(2) || group["required"] != float64(2) || len(group["targets"].([]any)) != 2 {
		t.Errorf("server's target group %v", group)
	}
	if drain := out["services"].([]any)[1].(map[string]any); len(drain["target_groups"].([]any)) != 0 || drain["ok"] != true {
		t.Errorf("drain (behind no load balancer) %v", drain)
	}
	if ev := out["evidence"].(string); !strings.Contains(ev, "target group "+tg+" of service spacelift-server: 2 of 2 healthy") ||
		!strings.Contains(ev, "service spacelift-drain: behind no target group") {
		t.Errorf("evidence %q", ev)
	}
	if de := out["done_evidence"].(string); !strings.HasPrefix(de, "healthy behind the load balancer, read in "+drRegion+" at ") || !strings.HasSuffix(de, out["evidence"].(string)) {
		t.Errorf("done_evidence %q: want where and when it was read, then the evidence", de)
	}
	// The services were stable before the targets were healthy: the wait saw initial targets.
	if !hasMessage(progressMessages(c), "initial (Elb.RegistrationInProgress") {
		t.Errorf("progress %v, want the initial targets seen", progressMessages(c))
	}

	// One target failing its health checks: a named failure after max_wait.
	if err := env.Emulator.SetUnhealthyTargets(context.Background(), tg, 1, ""); err != nil {
		t.Fatal(err)
	}
	params["max_wait"] = "500ms"
	_, err = c.Apply(ctx, "ecs_target_health", params)
	pe := wantFatal(t, err, "target group "+tg+" of service spacelift-server: 1 of 2 healthy, 1 unhealthy (Target.ResponseCodeMismatch: Health checks failed with these codes: [503])")
	if pe.Code != "TargetsNotHealthy" {
		t.Errorf("code %q", pe.Code)
	}
	// A lower bar passes with one healthy target.
	params["min_healthy_percent"] = 50
	if out, err = c.Apply(ctx, "ecs_target_health", params); err != nil || out["healthy"] != true {
		t.Fatalf("min_healthy_percent 50: %v %v", out, err)
	}
}

// A service at desired count 0 behind a load balancer serves nothing: at
// least one healthy target is required, checked once with wait: false.
func TestECSTargetHealthNothingRunning(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	cluster := awstest.Name(t, "tgh0")
	tg := seedServedECS(t, env, drRegion, cluster)
	_, err := c.Apply(tctx(t), "ecs_target_health", env.Params(drRegion, map[string]any{"cluster": cluster, "services": []any{"spacelift-server"}, "wait": false}))
	wantFatal(t, err, "(checked once)", "target group "+tg+" of service spacelift-server: 0 of 1 healthy, no targets registered")
	_, err = c.Apply(tctx(t), "ecs_target_health", env.Params(drRegion, map[string]any{"cluster": cluster, "services": []any{"nope"}}))
	wantFatal(t, err, "has no active service nope")
}
