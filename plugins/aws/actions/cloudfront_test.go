package actions

import (
	"context"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// seedDistribution creates a distribution in front of the primary load
// balancer, with a second (static) origin so that picking the right one
// matters.
func seedDistribution(t *testing.T, env *awstest.Env) string {
	t.Helper()
	custom := &cftypes.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly}
	out, err := cloudfront.NewFromConfig(env.Config(t, "us-east-1")).CreateDistribution(context.Background(), &cloudfront.CreateDistributionInput{
		DistributionConfig: &cftypes.DistributionConfig{
			CallerReference: aws.String(t.Name()),
			Comment:         aws.String("spacelift"),
			Enabled:         aws.Bool(true),
			Origins: &cftypes.Origins{Quantity: aws.Int32(2), Items: []cftypes.Origin{
				{Id: aws.String("static"), DomainName: aws.String("static.example.net"), CustomOriginConfig: custom},
				{Id: aws.String("server"), DomainName: aws.String("primary-alb.eu-west-1.elb.amazonaws.com"), CustomOriginConfig: custom},
			}},
			DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{
				TargetOriginId: aws.String("server"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyRedirectToHttps,
				CachePolicyId: aws.String("4135ea2d-6df8-44a3-9df3-4b5a84be39ad"),
			},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Distribution.Id)
}

func originDomains(t *testing.T, env *awstest.Env, id string) map[string]string {
	t.Helper()
	out, err := cloudfront.NewFromConfig(env.Config(t, "us-east-1")).GetDistributionConfig(context.Background(), &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]string{}
	for _, o := range out.DistributionConfig.Origins.Items {
		m[aws.ToString(o.Id)] = aws.ToString(o.DomainName)
	}
	return m
}

func TestCloudFrontOrigin(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	id := seedDistribution(t, env)
	ctx := tctx(t)
	params := map[string]any{"endpoint_url": env.URL, "distribution_id": id, "origin_domain": "dr-alb.eu-west-3.elb.amazonaws.com", "poll_interval": "100ms"}
	out, err := c.Apply(ctx, "cloudfront_origin", params)
	if err != nil {
		t.Fatal(err)
	}
	if out["previous_origin_domain"] != "primary-alb.eu-west-1.elb.amazonaws.com" || out["origin_id"] != "server" || out["changed"] != true || out["status"] != "Deployed" {
		t.Fatalf("outputs = %v", out)
	}
	if got := originDomains(t, env, id); got["server"] != "dr-alb.eu-west-3.elb.amazonaws.com" || got["static"] != "static.example.net" {
		t.Fatalf("origins = %v", got)
	}
	if !hasMessage(progressMessages(c), "distribution Deployed") {
		t.Fatalf("progress = %v", progressMessages(c))
	}
	again, err := c.Apply(ctx, "cloudfront_origin", params)
	if err != nil || again["changed"] != false {
		t.Fatalf("re-run: %v, %v", again, err)
	}
	// Roll back with the previous domain.
	if _, err := c.Apply(ctx, "cloudfront_origin", map[string]any{"endpoint_url": env.URL, "distribution_id": id, "origin_domain": out["previous_origin_domain"], "poll_interval": "100ms"}); err != nil {
		t.Fatal(err)
	}
	if got := originDomains(t, env, id); got["server"] != "primary-alb.eu-west-1.elb.amazonaws.com" {
		t.Fatalf("after rollback: %v", got)
	}
}

func TestCloudFrontOriginErrors(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	id := seedDistribution(t, env)
	ctx := tctx(t)
	_, err := c.Apply(ctx, "cloudfront_origin", map[string]any{"endpoint_url": env.URL, "distribution_id": "ENOSUCHDIST", "origin_domain": "x"})
	wantFatal(t, err, "distribution ENOSUCHDIST not found")
	_, err = c.Apply(ctx, "cloudfront_origin", map[string]any{"endpoint_url": env.URL, "distribution_id": id, "origin_id": "api", "origin_domain": "x"})
	wantFatal(t, err, `no origin "api"`, "server", "static")
	if got := originDomains(t, env, id); got["server"] != "primary-alb.eu-west-1.elb.amazonaws.com" {
		t.Fatalf("origins changed: %v", got)
	}
}

func TestCloudFrontOriginPlanChangesNothing(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	id := seedDistribution(t, env)
	plan, err := c.PlanParams(tctx(t), "cloudfront_origin", map[string]any{"endpoint_url": env.URL, "distribution_id": id, "origin_id": "server", "origin_domain": "dr-alb.eu-west-3.elb.amazonaws.com"})
	if err != nil {
		t.Fatal(err)
	}
	ch := plan.Changes[0]
	if ch.Before != "primary-alb.eu-west-1.elb.amazonaws.com" || ch.After != "dr-alb.eu-west-3.elb.amazonaws.com" || ch.Kind != plugin.ChangeUpdate {
		t.Fatalf("plan = %+v", plan)
	}
	if got := originDomains(t, env, id); got["server"] != "primary-alb.eu-west-1.elb.amazonaws.com" {
		t.Fatalf("plan changed the origin: %v", got)
	}
}
