package emulator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/route53recoverycluster"
	rctypes "github.com/aws/aws-sdk-go-v2/service/route53recoverycluster/types"
	"github.com/aws/aws-sdk-go-v2/service/route53recoverycontrolconfig"
	cctypes "github.com/aws/aws-sdk-go-v2/service/route53recoverycontrolconfig/types"

	"github.com/runbookhq/runbook/sim/emulator"
)

// arcEmu is the ARC tests' own emulator: they move its clock by hours, which the
// shared one's CloudWatch test would not survive.
var arcEmu *emulator.Emulator

func arcAdvance(t *testing.T) {
	t.Helper()
	if err := arcEmu.Advance(context.Background(), long+time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestARC(t *testing.T) {
	arcEmu = emulator.StartForTest(t, emulator.Options{IgnoreExternal: true, Timing: emulator.Timing{emulator.ARCDeploy: long.Seconds()}})
	t.Run("configuration API", testARCConfigurationAPI)
	t.Run("data plane, safety rules and endpoints", testARCDataPlaneSafetyRulesAndEndpoints)
	t.Run("Route 53 failover records follow routing controls", testRoute53FailoverRecordsFollowRoutingControls)
}

// arcFixture is a deployed cluster with a control panel, one routing control per
// region and an assertion rule "at least one On".
type arcFixture struct {
	cc                 *route53recoverycontrolconfig.Client
	cluster            cctypes.Cluster
	panel, east, west  string
	rule               string
	endpoints          map[string]string
	endpointRegionList []string
}

func newARC(t *testing.T, name string, waitMs int32) arcFixture {
	t.Helper()
	ctx := context.Background()
	// The configuration API is served from us-west-2 only.
	cc := route53recoverycontrolconfig.NewFromConfig(arcEmu.Config("us-west-2"))
	c := must(cc.CreateCluster(ctx, &route53recoverycontrolconfig.CreateClusterInput{ClusterName: aws.String(name)})).ok(t).Cluster
	if c.Status != cctypes.StatusPending {
		t.Errorf("new cluster status %s, want PENDING", c.Status)
	}
	_, err := cc.CreateControlPanel(ctx, &route53recoverycontrolconfig.CreateControlPanelInput{ClusterArn: c.ClusterArn, ControlPanelName: aws.String(name)})
	wantCode(t, err, "ConflictException")
	arcAdvance(t)
	f := arcFixture{cc: cc, endpoints: map[string]string{}}
	f.cluster = *must(cc.DescribeCluster(ctx, &route53recoverycontrolconfig.DescribeClusterInput{ClusterArn: c.ClusterArn})).ok(t).Cluster
	for _, ep := range f.cluster.ClusterEndpoints {
		f.endpoints[aws.ToString(ep.Region)] = aws.ToString(ep.Endpoint)
		f.endpointRegionList = append(f.endpointRegionList, aws.ToString(ep.Region))
	}
	panel := must(cc.CreateControlPanel(ctx, &route53recoverycontrolconfig.CreateControlPanelInput{ClusterArn: c.ClusterArn, ControlPanelName: aws.String(name)})).ok(t).ControlPanel
	f.panel = aws.ToString(panel.ControlPanelArn)
	arcAdvance(t)
	rc := func(n string) string {
		out := must(cc.CreateRoutingControl(ctx, &route53recoverycontrolconfig.CreateRoutingControlInput{
			ClusterArn: c.ClusterArn, ControlPanelArn: aws.String(f.panel), RoutingControlName: aws.String(n)})).ok(t)
		return aws.ToString(out.RoutingControl.RoutingControlArn)
	}
	f.east, f.west = rc(name+"-us-east-1"), rc(name+"-us-west-2")
	arcAdvance(t)
	rule := must(cc.CreateSafetyRule(ctx, &route53recoverycontrolconfig.CreateSafetyRuleInput{AssertionRule: &cctypes.NewAssertionRule{
		AssertedControls: []string{f.east, f.west}, ControlPanelArn: aws.String(f.panel), Name: aws.String("at-least-one-on"),
		RuleConfig: &cctypes.RuleConfig{Type: cctypes.RuleTypeAtleast, Threshold: aws.Int32(1), Inverted: aws.Bool(false)}, WaitPeriodMs: aws.Int32(waitMs),
	}})).ok(t)
	f.rule = aws.ToString(rule.AssertionRule.SafetyRuleArn)
	arcAdvance(t)
	return f
}

// dataPlane is a client of one cluster endpoint, signed for its region as AWS requires.
func (f arcFixture) dataPlane(region string) *route53recoverycluster.Client {
	ep := f.endpoints[region]
	return route53recoverycluster.NewFromConfig(arcEmu.Config(region), func(o *route53recoverycluster.Options) { o.BaseEndpoint = aws.String(ep) })
}

func states(t *testing.T, c *route53recoverycluster.Client, arns ...string) []string {
	t.Helper()
	var out []string
	for _, a := range arns {
		s := must(c.GetRoutingControlState(context.Background(), &route53recoverycluster.GetRoutingControlStateInput{RoutingControlArn: aws.String(a)})).ok(t)
		out = append(out, string(s.RoutingControlState))
	}
	return out
}

func testARCConfigurationAPI(t *testing.T) {
	ctx := context.Background()
	f := newARC(t, "cfg", 0)
	if len(f.cluster.ClusterEndpoints) != 5 || f.cluster.Status != cctypes.StatusDeployed {
		t.Fatalf("cluster %+v: want DEPLOYED with five endpoints", f.cluster)
	}
	for _, r := range []string{"us-east-1", "us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"} {
		if !strings.Contains(f.endpoints[r], "/"+r+"/") {
			t.Errorf("endpoint of %s = %q", r, f.endpoints[r])
		}
	}
	// Every cluster has a default control panel; ours is the second.
	panels := must(f.cc.ListControlPanels(ctx, &route53recoverycontrolconfig.ListControlPanelsInput{ClusterArn: f.cluster.ClusterArn})).ok(t).ControlPanels
	if len(panels) != 2 || !aws.ToBool(panels[0].DefaultControlPanel) && !aws.ToBool(panels[1].DefaultControlPanel) {
		t.Errorf("control panels %+v: want the default one and ours", panels)
	}
	rcs := must(f.cc.ListRoutingControls(ctx, &route53recoverycontrolconfig.ListRoutingControlsInput{ControlPanelArn: aws.String(f.panel)})).ok(t).RoutingControls
	if len(rcs) != 2 || rcs[0].Status != cctypes.StatusDeployed {
		t.Errorf("routing controls %+v", rcs)
	}
	rules := must(f.cc.ListSafetyRules(ctx, &route53recoverycontrolconfig.ListSafetyRulesInput{ControlPanelArn: aws.String(f.panel)})).ok(t).SafetyRules
	if len(rules) != 1 || rules[0].ASSERTION == nil || aws.ToString(rules[0].ASSERTION.SafetyRuleArn) != f.rule {
		t.Errorf("safety rules %+v", rules)
	}
	// ClientToken makes a create idempotent.
	in := &route53recoverycontrolconfig.CreateRoutingControlInput{ClusterArn: f.cluster.ClusterArn, ControlPanelArn: aws.String(f.panel),
		RoutingControlName: aws.String("tok"), ClientToken: aws.String("token-1")}
	a := must(f.cc.CreateRoutingControl(ctx, in)).ok(t).RoutingControl
	b := must(f.cc.CreateRoutingControl(ctx, in)).ok(t).RoutingControl
	if aws.ToString(a.RoutingControlArn) != aws.ToString(b.RoutingControlArn) {
		t.Errorf("same ClientToken made two routing controls: %s, %s", aws.ToString(a.RoutingControlArn), aws.ToString(b.RoutingControlArn))
	}
	// A rule's controls must be in its control panel; the model's constraints hold.
	_, err := f.cc.CreateSafetyRule(ctx, &route53recoverycontrolconfig.CreateSafetyRuleInput{AssertionRule: &cctypes.NewAssertionRule{
		AssertedControls: []string{f.east}, ControlPanelArn: aws.String(aws.ToString(panels[0].ControlPanelArn)), Name: aws.String("x"),
		RuleConfig: &cctypes.RuleConfig{Type: cctypes.RuleTypeAtleast, Threshold: aws.Int32(1), Inverted: aws.Bool(false)}, WaitPeriodMs: aws.Int32(0)}})
	wantCode(t, err, "ValidationException")
	_, err = f.cc.DescribeCluster(ctx, &route53recoverycontrolconfig.DescribeClusterInput{ClusterArn: aws.String("arn:aws:route53-recovery-control::123456789012:cluster/nope")})
	wantCode(t, err, "ResourceNotFoundException")
	_, err = f.cc.DeleteControlPanel(ctx, &route53recoverycontrolconfig.DeleteControlPanelInput{ControlPanelArn: aws.String(f.panel)})
	wantCode(t, err, "ConflictException")
}

func testARCDataPlaneSafetyRulesAndEndpoints(t *testing.T) {
	ctx := context.Background()
	f := newARC(t, "dp", 5000)
	west := f.dataPlane("us-west-2")
	if got := states(t, west, f.east, f.west); strings.Join(got, ",") != "Off,Off" {
		t.Fatalf("new routing controls %v, want Off", got)
	}
	// A client signed for another region than the endpoint's is refused.
	wrong := route53recoverycluster.NewFromConfig(arcEmu.Config("eu-west-1"), func(o *route53recoverycluster.Options) { o.BaseEndpoint = aws.String(f.endpoints["us-west-2"]) })
	_, err := wrong.GetRoutingControlState(ctx, &route53recoverycluster.GetRoutingControlStateInput{RoutingControlArn: aws.String(f.east)})
	wantCode(t, err, "InvalidSignatureException")

	set := func(c *route53recoverycluster.Client, override []string, kv ...string) error {
		var entries []rctypes.UpdateRoutingControlStateEntry
		for i := 0; i < len(kv); i += 2 {
			entries = append(entries, rctypes.UpdateRoutingControlStateEntry{RoutingControlArn: aws.String(kv[i]), RoutingControlState: rctypes.RoutingControlState(kv[i+1])})
		}
		_, err := c.UpdateRoutingControlStates(ctx, &route53recoverycluster.UpdateRoutingControlStatesInput{UpdateRoutingControlStateEntries: entries, SafetyRulesToOverride: override})
		return err
	}
	must(0, set(west, nil, f.east, "On")).ok(t)
	// Any endpoint reads the cluster's one state.
	if got := states(t, f.dataPlane("ap-southeast-2"), f.east, f.west); strings.Join(got, ",") != "On,Off" {
		t.Errorf("states through ap-southeast-2: %v, want On,Off", got)
	}
	// The rule's wait period refuses the next update of its controls for 5 s.
	err = set(west, nil, f.west, "On", f.east, "Off")
	wantCode(t, err, "ConflictException")
	if err := arcEmu.Advance(ctx, 6*time.Second); err != nil {
		t.Fatal(err)
	}
	// Turning everything off breaks "at least one On": refused, naming the rule.
	err = set(west, nil, f.east, "Off")
	wantCode(t, err, "ValidationException")
	if !strings.Contains(err.Error(), f.rule) {
		t.Errorf("refusal %v does not name the rule %s", err, f.rule)
	}
	// The failover: DR on, primary off, in one transaction: allowed.
	must(0, set(f.dataPlane("eu-west-1"), nil, f.west, "On", f.east, "Off")).ok(t)
	if got := states(t, west, f.east, f.west); strings.Join(got, ",") != "Off,On" {
		t.Errorf("after the failover: %v, want Off,On", got)
	}
	if err := arcEmu.Advance(ctx, 6*time.Second); err != nil {
		t.Fatal(err)
	}
	// Break glass: the rule overridden, both Off.
	must(0, set(west, []string{f.rule}, f.west, "Off")).ok(t)
	must(0, set(west, []string{f.rule}, f.east, "On")).ok(t)

	// An endpoint under maintenance says so; the others answer.
	if err := arcEmu.SetARCEndpointsUnavailable(ctx, "us-east-1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = arcEmu.SetARCEndpointsUnavailable(context.Background()) })
	_, err = f.dataPlane("us-east-1").GetRoutingControlState(ctx, &route53recoverycluster.GetRoutingControlStateInput{RoutingControlArn: aws.String(f.east)})
	wantCode(t, err, "EndpointTemporarilyUnavailableException")
	list := must(west.ListRoutingControls(ctx, &route53recoverycluster.ListRoutingControlsInput{ControlPanelArn: aws.String(f.panel)})).ok(t)
	if len(list.RoutingControls) != 2 {
		t.Errorf("ListRoutingControls %+v", list.RoutingControls)
	}
	// A routing control of another cluster is not found through this one.
	_, err = west.GetRoutingControlState(ctx, &route53recoverycluster.GetRoutingControlStateInput{RoutingControlArn: aws.String(f.panel + "/routingcontrol/0000000000000000")})
	wantCode(t, err, "ResourceNotFoundException")

	st, err := arcEmu.ARC(ctx)
	if err != nil {
		t.Fatal(err)
	}
	var regions []string
	for _, u := range st.Updates {
		if u.Cluster == aws.ToString(f.cluster.ClusterArn) {
			regions = append(regions, u.EndpointRegion)
		}
	}
	if strings.Join(regions, ",") != "us-west-2,eu-west-1,us-west-2,us-west-2" {
		t.Errorf("updates served by %v", regions)
	}
}

func testRoute53FailoverRecordsFollowRoutingControls(t *testing.T) {
	ctx := context.Background()
	f := newARC(t, "r53", 0)
	r53 := route53.NewFromConfig(arcEmu.Config("us-east-1"))
	zone := aws.ToString(must(r53.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("arc.example.com"), CallerReference: aws.String("arc-zone")})).ok(t).HostedZone.Id)
	zone = strings.TrimPrefix(zone, "/hostedzone/")

	hc := func(ref, rc string) string {
		out := must(r53.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String(ref),
			HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeRecoveryControl, RoutingControlArn: aws.String(rc)}})).ok(t)
		if got := aws.ToString(out.HealthCheck.HealthCheckConfig.RoutingControlArn); got != rc {
			t.Errorf("health check's RoutingControlArn %q, want %q", got, rc)
		}
		return aws.ToString(out.HealthCheck.Id)
	}
	east, west := hc("arc-east", f.east), hc("arc-west", f.west)
	if again := hc("arc-east", f.east); again != east {
		t.Errorf("the same CallerReference and configuration made a second health check %s (first %s)", again, east)
	}
	_, err := r53.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("arc-east"),
		HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeRecoveryControl, RoutingControlArn: aws.String(f.west)}})
	wantCode(t, err, "HealthCheckAlreadyExists")
	_, err = r53.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String("arc-bad"),
		HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeRecoveryControl, RoutingControlArn: aws.String(f.panel + "/routingcontrol/0000000000000000")}})
	wantCode(t, err, "InvalidInput")
	assoc := must(f.cc.ListAssociatedRoute53HealthChecks(ctx, &route53recoverycontrolconfig.ListAssociatedRoute53HealthChecksInput{RoutingControlArn: aws.String(f.east)})).ok(t)
	if len(assoc.HealthCheckIds) != 1 || assoc.HealthCheckIds[0] != east {
		t.Errorf("health checks of the east routing control: %v, want [%s]", assoc.HealthCheckIds, east)
	}

	failover := func(name string, typ r53types.RRType, fo r53types.ResourceRecordSetFailover, hcID, value string) r53types.Change {
		rr := &r53types.ResourceRecordSet{Name: aws.String(name), Type: typ, SetIdentifier: aws.String(strings.ToLower(string(fo))),
			Failover: fo, HealthCheckId: aws.String(hcID)}
		if typ == r53types.RRTypeCname {
			rr.TTL, rr.ResourceRecords = aws.Int64(60), []r53types.ResourceRecord{{Value: aws.String(value)}}
		} else {
			// Each region's load balancers have their own canonical hosted zone
			// (AWS General Reference, "Elastic Load Balancing endpoints and quotas").
			zoneOf := map[string]string{"us-east-1": "Z35SXDOTRQ7X7K", "us-west-2": "Z1H1FL5HABSF5"}
			region := strings.Split(value, ".")[1]
			rr.AliasTarget = &r53types.AliasTarget{DNSName: aws.String(value), HostedZoneId: aws.String(zoneOf[region]), EvaluateTargetHealth: false}
		}
		return r53types.Change{Action: r53types.ChangeActionCreate, ResourceRecordSet: rr}
	}
	change := func(changes ...r53types.Change) error {
		_, err := r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(zone), ChangeBatch: &r53types.ChangeBatch{Changes: changes}})
		return err
	}
	host, iot := "arc.example.com", "worker-iot.arc.example.com"
	must(0, change(
		failover(host, r53types.RRTypeA, r53types.ResourceRecordSetFailoverPrimary, east, "primary-lb.us-east-1.elb.amazonaws.com"),
		failover(host, r53types.RRTypeA, r53types.ResourceRecordSetFailoverSecondary, west, "dr-lb.us-west-2.elb.amazonaws.com"),
		failover(iot, r53types.RRTypeCname, r53types.ResourceRecordSetFailoverPrimary, east, "p-ats.iot.us-east-1.amazonaws.com"),
		failover(iot, r53types.RRTypeCname, r53types.ResourceRecordSetFailoverSecondary, west, "d-ats.iot.us-west-2.amazonaws.com"),
	)).ok(t)

	// As strict as Route 53: no simple record beside failover ones, one PRIMARY, no CNAME beside other types, real health checks.
	wantCode(t, change(r53types.Change{Action: r53types.ChangeActionCreate, ResourceRecordSet: &r53types.ResourceRecordSet{Name: aws.String(iot), Type: r53types.RRTypeCname,
		TTL: aws.Int64(60), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("x")}}}}), "InvalidChangeBatch")
	dup := failover(iot, r53types.RRTypeCname, r53types.ResourceRecordSetFailoverPrimary, east, "x")
	dup.ResourceRecordSet.SetIdentifier = aws.String("another")
	wantCode(t, change(dup), "InvalidChangeBatch")
	wantCode(t, change(r53types.Change{Action: r53types.ChangeActionCreate, ResourceRecordSet: &r53types.ResourceRecordSet{Name: aws.String(iot), Type: r53types.RRTypeTxt,
		TTL: aws.Int64(60), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(`"x"`)}}}}), "InvalidChangeBatch")
	wantCode(t, change(failover("other.arc.example.com", r53types.RRTypeCname, r53types.ResourceRecordSetFailoverPrimary, "00000000-0000-0000-0000-000000000000", "x")), "NoSuchHealthCheck")

	answer := func(name, typ string) emulator.Route53Answer {
		t.Helper()
		a, err := arcEmu.Route53Answer(ctx, "", name, typ)
		if err != nil {
			t.Fatal(err)
		}
		return a
	}
	dnsAnswer := func(name string, typ r53types.RRType) []string {
		t.Helper()
		out := must(r53.TestDNSAnswer(ctx, &route53.TestDNSAnswerInput{HostedZoneId: aws.String(zone), RecordName: aws.String(name), RecordType: typ})).ok(t)
		return out.RecordData
	}
	check := func(when, lb, broker string) {
		t.Helper()
		a := answer(host, "A")
		if a.Alias == nil || a.Alias.DNSName != lb+"." {
			t.Errorf("%s: %s A answers %+v, want the alias to %s", when, host, a, lb)
		}
		if got := answer(iot, "CNAME"); strings.Join(got.Records, ",") != broker {
			t.Errorf("%s: %s answers %v, want %s", when, iot, got.Records, broker)
		}
		// A query of another type at a CNAME gets the CNAME.
		if got := answer(iot, "A"); got.Type != "CNAME" || strings.Join(got.Records, ",") != broker {
			t.Errorf("%s: %s A answers %+v, want the CNAME to %s", when, iot, got, broker)
		}
		if got := dnsAnswer(iot, r53types.RRTypeCname); strings.Join(got, ",") != broker {
			t.Errorf("%s: TestDNSAnswer %s = %v, want %s", when, iot, got, broker)
		}
	}
	// Both routing controls Off: both health checks fail, Route 53 answers the primary.
	check("both off", "primary-lb.us-east-1.elb.amazonaws.com", "p-ats.iot.us-east-1.amazonaws.com")
	west1 := f.dataPlane("us-west-2")
	flip := func(eastState, westState string) {
		t.Helper()
		_, err := west1.UpdateRoutingControlStates(ctx, &route53recoverycluster.UpdateRoutingControlStatesInput{UpdateRoutingControlStateEntries: []rctypes.UpdateRoutingControlStateEntry{
			{RoutingControlArn: aws.String(f.east), RoutingControlState: rctypes.RoutingControlState(eastState)},
			{RoutingControlArn: aws.String(f.west), RoutingControlState: rctypes.RoutingControlState(westState)}}})
		if err != nil {
			t.Fatal(err)
		}
	}
	flip("On", "Off")
	check("primary on", "primary-lb.us-east-1.elb.amazonaws.com", "p-ats.iot.us-east-1.amazonaws.com")
	status := must(r53.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(west)})).ok(t)
	if len(status.HealthCheckObservations) == 0 || !strings.HasPrefix(aws.ToString(status.HealthCheckObservations[0].StatusReport.Status), "Failure") {
		t.Errorf("health check of an Off routing control: %+v, want Failure", status.HealthCheckObservations)
	}
	flip("Off", "On")
	check("failed over", "dr-lb.us-west-2.elb.amazonaws.com", "d-ats.iot.us-west-2.amazonaws.com")
	if a := answer(host, "A"); a.Failover != "SECONDARY" || a.PrimaryHealthy == nil || *a.PrimaryHealthy {
		t.Errorf("failed over: %+v, want the SECONDARY chosen with the primary unhealthy", a)
	}

	// Deleting a failover record by its SetIdentifier deletes that record only.
	del := failover(iot, r53types.RRTypeCname, r53types.ResourceRecordSetFailoverSecondary, west, "d-ats.iot.us-west-2.amazonaws.com")
	del.Action = r53types.ChangeActionDelete
	must(0, change(del)).ok(t)
	if a := answer(host, "A"); a.Failover != "SECONDARY" {
		t.Errorf("after deleting the IoT secondary, %s: %+v, want its own SECONDARY still there", host, a)
	}
	if got := answer(iot, "CNAME"); strings.Join(got.Records, ",") != "p-ats.iot.us-east-1.amazonaws.com" {
		t.Errorf("the IoT domain without a secondary answers %v, want the primary", got.Records)
	}
}
