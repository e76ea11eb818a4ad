package route53

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/route53recoverycluster"
	rctypes "github.com/aws/aws-sdk-go-v2/service/route53recoverycluster/types"
	cc "github.com/aws/aws-sdk-go-v2/service/route53recoverycontrolconfig"
	cctypes "github.com/aws/aws-sdk-go-v2/service/route53recoverycontrolconfig/types"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

// arcControls makes a deployed cluster with two routing controls (primary On)
// and a RECOVERY_CONTROL health check for each, with the SDK.
type arcControls struct {
	primary, dr     string // routing control ARNs
	hcPrimary, hcDR string
	flip            func(primaryState, drState string)
}

func newARCControls(t *testing.T, f *fixture) arcControls {
	t.Helper()
	ctx := context.Background()
	c := cc.NewFromConfig(f.env.Config(t, "us-west-2"))
	deployed := func(status func() cctypes.Status) {
		t.Helper()
		for deadline := time.Now().Add(time.Minute); status() != cctypes.StatusDeployed; time.Sleep(50 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatal("ARC resource not DEPLOYED after a minute")
			}
		}
	}
	name := awstest.Name(t, "arc")
	cl, err := c.CreateCluster(ctx, &cc.CreateClusterInput{ClusterName: aws.String(name)})
	if err != nil {
		t.Fatal(err)
	}
	var cluster *cctypes.Cluster
	deployed(func() cctypes.Status {
		d, err := c.DescribeCluster(ctx, &cc.DescribeClusterInput{ClusterArn: cl.Cluster.ClusterArn})
		if err != nil {
			t.Fatal(err)
		}
		cluster = d.Cluster
		return d.Cluster.Status
	})
	rc := func(n string) string {
		out, err := c.CreateRoutingControl(ctx, &cc.CreateRoutingControlInput{ClusterArn: cl.Cluster.ClusterArn, RoutingControlName: aws.String(n)})
		if err != nil {
			t.Fatal(err)
		}
		arn := out.RoutingControl.RoutingControlArn
		deployed(func() cctypes.Status {
			d, err := c.DescribeRoutingControl(ctx, &cc.DescribeRoutingControlInput{RoutingControlArn: arn})
			if err != nil {
				t.Fatal(err)
			}
			return d.RoutingControl.Status
		})
		return aws.ToString(arn)
	}
	a := arcControls{primary: rc(name + "-primary"), dr: rc(name + "-dr")}
	hc := func(arn string) string {
		out, err := f.r53.CreateHealthCheck(ctx, &r53.CreateHealthCheckInput{CallerReference: aws.String(arn),
			HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeRecoveryControl, RoutingControlArn: aws.String(arn)}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.HealthCheck.Id)
	}
	a.hcPrimary, a.hcDR = hc(a.primary), hc(a.dr)
	ep := cluster.ClusterEndpoints[1]
	dp := route53recoverycluster.NewFromConfig(f.env.Config(t, aws.ToString(ep.Region)), func(o *route53recoverycluster.Options) { o.BaseEndpoint = ep.Endpoint })
	a.flip = func(p, d string) {
		t.Helper()
		_, err := dp.UpdateRoutingControlStates(ctx, &route53recoverycluster.UpdateRoutingControlStatesInput{UpdateRoutingControlStateEntries: []rctypes.UpdateRoutingControlStateEntry{
			{RoutingControlArn: aws.String(a.primary), RoutingControlState: rctypes.RoutingControlState(p)},
			{RoutingControlArn: aws.String(a.dr), RoutingControlState: rctypes.RoutingControlState(d)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	a.flip("On", "Off")
	return a
}

func failoverSetup(t *testing.T) *fixture {
	t.Helper()
	f := setup(t)
	f.c = plugintest.Start(t, plugin.Info{Name: "dns", Version: "test"}, Action(), FailoverAction())
	return f
}

// The server hostname's simple alias becomes a failover pair bound to the
// routing controls' health checks; its answer then follows the routing
// controls, flipped on the data plane.
func TestFailoverRecordsReplaceTheSimpleRecord(t *testing.T) {
	t.Parallel()
	f := failoverSetup(t)
	ctx := plugintest.Context(t)
	a := newARCControls(t, f)
	host := f.n("spacelift")
	f.put(t, types.ResourceRecordSet{Name: aws.String(host), Type: types.RRTypeA,
		AliasTarget: &types.AliasTarget{DNSName: aws.String("primary-alb.eu-west-1.elb.amazonaws.com"), HostedZoneId: aws.String("Z32O12XQLNTSW2")}})
	params := f.params(map[string]any{"zone_id": f.zone, "name": host, "type": "A",
		"primary":   map[string]any{"alias": map[string]any{"dns_name": "primary-alb.eu-west-1.elb.amazonaws.com", "hosted_zone_id": "Z32O12XQLNTSW2"}, "health_check_id": a.hcPrimary},
		"secondary": map[string]any{"alias": map[string]any{"dns_name": "dr-alb.eu-west-3.elb.amazonaws.com", "hosted_zone_id": albZone}, "health_check_id": a.hcDR},
	})
	plan, err := f.c.PlanParams(ctx, "route53_failover_records", params)
	if err != nil || len(plan.Changes) != 1 || plan.Changes[0].Kind != plugin.ChangeReplace {
		t.Fatalf("plan %+v %v, want a replace", plan, err)
	}
	out, err := f.c.Apply(ctx, "route53_failover_records", params)
	if err != nil {
		t.Fatal(err)
	}
	prev := out["previous"].([]any)
	if len(prev) != 1 || prev[0].(map[string]any)["failover"] != nil || prev[0].(map[string]any)["alias"] == nil || out["changed"] != true {
		t.Errorf("outputs %v, want the simple alias as previous", out)
	}
	if got := strings.Join(f.records(t, host), "; "); got != "A alias primary-alb.eu-west-1.elb.amazonaws.com; A alias dr-alb.eu-west-3.elb.amazonaws.com" {
		t.Errorf("records at %s: %s", host, got)
	}
	answer := func() string {
		t.Helper()
		ans, err := f.env.Emulator.Route53Answer(context.Background(), f.zone, host, "A")
		if err != nil || ans.Alias == nil {
			t.Fatalf("answer %+v %v", ans, err)
		}
		return ans.Alias.DNSName
	}
	if got := answer(); got != "primary-alb.eu-west-1.elb.amazonaws.com." {
		t.Errorf("primary On: %s answers %s", host, got)
	}
	a.flip("Off", "On")
	if got := answer(); got != "dr-alb.eu-west-3.elb.amazonaws.com." {
		t.Errorf("failed over: %s answers %s", host, got)
	}
	out, err = f.c.Apply(ctx, "route53_failover_records", params)
	if err != nil || out["changed"] != false || len(out["previous"].([]any)) != 2 {
		t.Errorf("re-run: %v %v, want no change", out, err)
	}
	if plan, err := f.c.PlanParams(ctx, "route53_failover_records", params); err != nil || plan.Changes[0].Kind != plugin.ChangeNoop {
		t.Errorf("plan after: %+v %v", plan, err)
	}
	// Another health check for the secondary: rewritten in place.
	params["secondary"].(map[string]any)["health_check_id"] = a.hcPrimary
	if out, err := f.c.Apply(ctx, "route53_failover_records", params); err != nil || out["changed"] != true {
		t.Errorf("changed health check: %v %v", out, err)
	}
	if n := len(f.records(t, host)); n != 2 {
		t.Errorf("%d records at %s, want the pair", n, host)
	}
}

func TestFailoverRecordsCNAMEAndConflicts(t *testing.T) {
	t.Parallel()
	f := failoverSetup(t)
	ctx := plugintest.Context(t)
	a := newARCControls(t, f)
	iot := f.n("worker-iot")
	f.put(t, types.ResourceRecordSet{Name: aws.String(iot), Type: types.RRTypeCname, TTL: aws.Int64(60), ResourceRecords: []types.ResourceRecord{{Value: aws.String("p-ats.iot.eu-west-1.amazonaws.com")}}})
	params := f.params(map[string]any{"zone_name": f.domain, "name": iot, "type": "CNAME",
		"primary":   map[string]any{"value": "p-ats.iot.eu-west-1.amazonaws.com", "health_check_id": a.hcPrimary},
		"secondary": map[string]any{"value": "d-ats.iot.eu-west-3.amazonaws.com", "health_check_id": a.hcDR},
	})
	if _, err := f.c.Apply(ctx, "route53_failover_records", params); err != nil {
		t.Fatal(err)
	}
	a.flip("Off", "On")
	ans, err := f.env.Emulator.Route53Answer(context.Background(), "", iot, "CNAME")
	if err != nil || strings.Join(ans.Records, ",") != "d-ats.iot.eu-west-3.amazonaws.com" {
		t.Errorf("failed over: %s answers %+v %v", iot, ans, err)
	}

	// A record of another routing policy is not replaced.
	other := f.n("weighted")
	f.put(t, types.ResourceRecordSet{Name: aws.String(other), Type: types.RRTypeCname, TTL: aws.Int64(60), SetIdentifier: aws.String("w1"), Weight: aws.Int64(10),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("x")}}})
	params["name"] = other
	_, err = f.c.Apply(ctx, "route53_failover_records", params)
	if pe := wantFatal(t, err, "another routing policy"); pe.Code != "ConflictingRecords" {
		t.Errorf("code %s", pe.Code)
	}

	diags, err := f.c.Validate(ctx, "route53_failover_records", map[string]any{"zone_id": "Z1", "name": "a.b", "type": "CNAME",
		"primary":   map[string]any{"alias": map[string]any{"dns_name": "x", "hosted_zone_id": "Z"}, "health_check_id": "h"},
		"secondary": map[string]any{"value": "y", "health_check_id": "h"}}, nil)
	if err != nil || len(diags) != 1 || diags[0].Path != "/primary" {
		t.Errorf("validation: %+v %v", diags, err)
	}
	d, err := f.c.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := d.Action("route53_failover_records"); len(s.ControlPlanes) != 1 || s.ControlPlanes[0].Region != "us-east-1" {
		t.Errorf("control planes %v", s.ControlPlanes)
	}
}
