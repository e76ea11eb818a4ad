package actions

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// proxy puts a fault-injecting proxy in front of the emulator for one test.
func proxy(t *testing.T, env *awstest.Env) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start(env.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

// The unplanned failover must work while the old primary's region does not
// answer at all, and must not even try to call it.
func TestAuroraFailoverWithPrimaryRegionDown(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	p := proxy(t, env)
	if _, err := p.BlackholeRegion(primaryRegion, faultproxy.Hang); err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(tctx(t), "aurora_global_failover", map[string]any{
		"region": drRegion, "endpoint_url": p.URL, "global_cluster": db.ID, "poll_interval": "100ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	if out["writer_cluster_arn"] != db.DRARN || out["previous_writer_region"] != primaryRegion {
		t.Fatalf("outputs = %v", out)
	}
	if n := p.CountWhere(faultproxy.Filter{Region: primaryRegion}).Total; n != 0 {
		t.Fatalf("the failover sent %d request(s) to the unreachable primary region", n)
	}
	if n := p.Count("rds", "FailoverGlobalCluster"); n != 1 {
		t.Fatalf("FailoverGlobalCluster reached the emulator %d times", n)
	}
	if writerOf(t, env, db.ID) != db.DRARN {
		t.Fatal("the emulator's writer is not the DR cluster")
	}
}

// Status reads what it can: a member whose region does not answer is
// reported unreachable, within member_timeout, not as a failure.
func TestAuroraStatusWithPrimaryRegionDown(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	p := proxy(t, env)
	if _, err := p.BlackholeRegion(primaryRegion, faultproxy.Hang); err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(tctx(t), "aurora_global_status", map[string]any{
		"region": drRegion, "endpoint_url": p.URL, "global_cluster": db.ID, "member_timeout": "500ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range out["members"].([]any) {
		mm := m.(map[string]any)
		switch mm["region"] {
		case primaryRegion:
			if mm["status"] != "unknown" || mm["status_error"] == "" || mm["is_writer"] != true {
				t.Fatalf("unreachable primary member = %v", mm)
			}
		case drRegion:
			if mm["status"] != "available" {
				t.Fatalf("dr member = %v", mm)
			}
		}
	}
}

// Throttling that outlasts the SDK's own retries is retryable for the
// runbook's retry policy; nothing is changed.
func TestThrottlingIsRetryable(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	cluster := awstest.Name(t, "ecs")
	seedECS(t, env, drRegion, cluster)
	p := proxy(t, env)
	if _, err := p.FailOperation("ecs", "DescribeServices", faultproxy.Throttle); err != nil {
		t.Fatal(err)
	}
	_, err := c.Apply(tctx(t), "ecs_services", map[string]any{"region": drRegion, "endpoint_url": p.URL, "cluster": cluster, "desired_counts": counts(1, 1, 1)})
	pe := actionError(t, err)
	if !pe.Retryable || pe.Code != "ThrottlingException" {
		t.Fatalf("err = %+v, want retryable ThrottlingException", pe)
	}
	if n := p.Attempts("ecs", "DescribeServices"); n < 2 {
		t.Fatalf("the SDK tried DescribeServices %d time(s); its standard retryer should have retried", n)
	}
	if n := p.Count("ecs", "UpdateService"); n != 0 {
		t.Fatalf("UpdateService reached the emulator %d times", n)
	}
}

// A change that lands between the action's read and its write makes the
// write PreconditionFailed; the action reads again and re-applies on top,
// so the other change is not lost.
func TestCloudFrontOriginConcurrentChange(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	id := seedDistribution(t, env)
	p := proxy(t, env)
	// Hold the action's first write long enough for another writer to go first.
	if _, err := p.AddRule(faultproxy.Rule{Service: "cloudfront", Operation: "UpdateDistribution", Latency: faultproxy.Duration(time.Second), Limit: 1}); err != nil {
		t.Fatal(err)
	}
	type result struct {
		out map[string]any
		err error
	}
	done := make(chan result, 1)
	go func() {
		out, err := c.Apply(tctx(t), "cloudfront_origin", map[string]any{"endpoint_url": p.URL, "distribution_id": id, "origin_domain": "dr-alb.eu-west-3.elb.amazonaws.com", "poll_interval": "100ms"})
		done <- result{out, err}
	}()
	for p.CountWhere(faultproxy.Filter{Service: "cloudfront", Operation: "GetDistributionConfig"}).Forwarded == 0 {
		time.Sleep(10 * time.Millisecond)
	}
	cf := cloudfront.NewFromConfig(env.Config(t, "us-east-1"))
	cur, err := cf.GetDistributionConfig(context.Background(), &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	cur.DistributionConfig.Comment = aws.String("changed concurrently")
	if _, err := cf.UpdateDistribution(context.Background(), &cloudfront.UpdateDistributionInput{Id: aws.String(id), IfMatch: cur.ETag, DistributionConfig: cur.DistributionConfig}); err != nil {
		t.Fatal(err)
	}
	r := <-done
	if r.err != nil {
		t.Fatal(r.err)
	}
	if r.out["changed"] != true || !hasMessage(progressMessages(c), "distribution changed concurrently") {
		t.Fatalf("outputs = %v, progress = %v", r.out, progressMessages(c))
	}
	end, err := cf.GetDistributionConfig(context.Background(), &cloudfront.GetDistributionConfigInput{Id: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	if aws.ToString(end.DistributionConfig.Comment) != "changed concurrently" {
		t.Fatalf("the concurrent change was lost: comment %q", aws.ToString(end.DistributionConfig.Comment))
	}
	if got := originDomains(t, env, id)["server"]; got != "dr-alb.eu-west-3.elb.amazonaws.com" {
		t.Fatalf("origin = %q", got)
	}
	if n := p.Count("cloudfront", "UpdateDistribution"); n != 2 {
		t.Fatalf("UpdateDistribution reached the emulator %d times, want 2 (one refused, one applied)", n)
	}
}
