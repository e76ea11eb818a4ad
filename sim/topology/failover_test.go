package topology_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// An unplanned failover done by hand with the SDK, the primary region black-holed
// by the proxy: the parts of the simulation working together, and a reference for
// the scenario tests that run the real runbook.
func TestUnplannedFailoverWithThePrimaryBlackholed(t *testing.T) {
	t.Parallel()
	half := emulator.Timing{}
	for _, k := range []string{emulator.AuroraFailover, emulator.ECSStabilize, emulator.Route53InSync, emulator.ASGInstanceRefresh, emulator.CloudFrontDeploy} {
		half[k] = 0.5 // still waited for, just shorter
	}
	e := emulator.StartForTest(t, emulator.Options{Timing: half})
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	topo, err := topology.Seed(ctx, topology.Options{EndpointURL: e.URL, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	p, d := topo.Primary, topo.DR
	proxy, err := faultproxy.Start(e.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	defer proxy.Close()
	cfg := func(region string) aws.Config { return emulator.ConfigFor(proxy.URL, region) }
	if e.HasControl() {
		if err := e.SetReplicationLag(ctx, d.DBClusterARN, 800); err != nil {
			t.Fatal(err)
		}
	}

	// The primary region goes dark.
	if _, err := proxy.BlackholeRegion(p.Name, faultproxy.Hang); err != nil {
		t.Fatal(err)
	}
	short, cancelShort := context.WithTimeout(ctx, 300*time.Millisecond)
	_, err = rds.NewFromConfig(cfg(p.Name), func(o *rds.Options) { o.RetryMaxAttempts = 1 }).
		DescribeDBClusters(short, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(p.DBClusterID)})
	cancelShort()
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("a call to the black-holed primary: %v, want the caller's deadline", err)
	}

	// 1. Promote the DR cluster, from the DR region only.
	dr := rds.NewFromConfig(cfg(d.Name))
	if _, err := dr.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{
		GlobalClusterIdentifier: aws.String(topo.GlobalClusterID), TargetDbClusterIdentifier: aws.String(d.DBClusterARN), AllowDataLoss: aws.Bool(true),
	}); err != nil {
		t.Fatal(err)
	}
	for {
		out, err := dr.DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String(topo.GlobalClusterID)})
		if err != nil {
			t.Fatal(err)
		}
		g := out.GlobalClusters[0]
		writer := ""
		for _, m := range g.GlobalClusterMembers {
			if aws.ToBool(m.IsWriter) {
				writer = aws.ToString(m.DBClusterArn)
			}
		}
		if aws.ToString(g.Status) == "available" && writer == d.DBClusterARN {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	// 2. Start the DR services and wait until they are stable.
	ecsDR := ecs.NewFromConfig(cfg(d.Name))
	for _, svc := range d.ECSServices {
		if _, err := ecsDR.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(d.ECSCluster), Service: aws.String(svc), DesiredCount: aws.Int32(p.DesiredCounts[svc])}); err != nil {
			t.Fatal(err)
		}
	}
	if err := ecs.NewServicesStableWaiter(ecsDR, func(o *ecs.ServicesStableWaiterOptions) { o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second }).
		Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(d.ECSCluster), Services: d.ECSServices}, time.Minute); err != nil {
		t.Fatal(err)
	}

	// 3 and 4. Traffic and workers' broker to the DR region (Route 53 is global: not black-holed).
	r53 := route53.NewFromConfig(cfg("us-east-1"))
	ch, err := r53.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(topo.HostedZoneID), ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{
		{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{Name: aws.String(topo.ServerRecordName), Type: r53types.RRTypeA,
			AliasTarget: &r53types.AliasTarget{DNSName: aws.String(d.LoadBalancerDNS), HostedZoneId: aws.String(d.LoadBalancerZoneID), EvaluateTargetHealth: true}}},
		{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{Name: aws.String(topo.IoTRecordName), Type: r53types.RRTypeCname,
			TTL: aws.Int64(topo.IoTRecordTTL), ResourceRecords: []r53types.ResourceRecord{{Value: aws.String(d.IoTEndpoint)}}}},
	}}})
	if err != nil {
		t.Fatal(err)
	}
	if err := route53.NewResourceRecordSetsChangedWaiter(r53, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	}).
		Wait(ctx, &route53.GetChangeInput{Id: ch.ChangeInfo.Id}, time.Minute); err != nil {
		t.Fatal(err)
	}

	// 5. Replace the DR workers so they reconnect.
	asgDR := autoscaling.NewFromConfig(cfg(d.Name))
	ref, err := asgDR.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String(d.ASGName)})
	if err != nil {
		t.Fatal(err)
	}
	for {
		out, err := asgDR.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(d.ASGName), InstanceRefreshIds: []string{aws.ToString(ref.InstanceRefreshId)}})
		if err != nil {
			t.Fatal(err)
		}
		if out.InstanceRefreshes[0].Status == astypes.InstanceRefreshStatusSuccessful {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}

	// The end state, read back through the APIs (directly from the emulator).
	recs, err := route53.NewFromConfig(e.Config("us-east-1")).ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(topo.HostedZoneID)})
	if err != nil {
		t.Fatal(err)
	}
	for _, rr := range recs.ResourceRecordSets {
		name := strings.TrimSuffix(aws.ToString(rr.Name), ".")
		if name == topo.ServerRecordName && rr.AliasTarget != nil && aws.ToString(rr.AliasTarget.DNSName) != d.LoadBalancerDNS {
			t.Errorf("server record -> %s", aws.ToString(rr.AliasTarget.DNSName))
		}
		if name == topo.IoTRecordName && aws.ToString(rr.ResourceRecords[0].Value) != d.IoTEndpoint {
			t.Errorf("IoT record -> %s", aws.ToString(rr.ResourceRecords[0].Value))
		}
	}
	if n := proxy.Count("rds", "FailoverGlobalCluster"); n != 1 {
		t.Errorf("FailoverGlobalCluster reached the emulator %d times, want once", n)
	}
	if c := proxy.CountWhere(faultproxy.Filter{Region: p.Name}); c.Forwarded != 0 || c.Total == 0 {
		t.Errorf("primary-region calls %+v: want some, none forwarded", c)
	}
	if !e.HasControl() {
		return // an external emulator without /_sim/ (LocalStack): no lag to check
	}
	st, err := e.Aurora(ctx)
	if err != nil {
		t.Fatal(err)
	}
	last := st.History[len(st.History)-1]
	if last.Kind != "failover" || last.CalledInRegion != d.Name || last.LostWritesMs != 800 {
		t.Errorf("recorded failover %+v: want one called in %s that lost 800 ms", last, d.Name)
	}
}
