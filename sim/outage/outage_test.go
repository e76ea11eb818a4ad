package outage_test

import (
	"context"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/outage"
)

func TestOutageDarkensProxyAndEmulator(t *testing.T) {
	const primary, dr = "eu-west-1", "eu-west-3"
	e := emulator.StartForTest(t, emulator.Options{IgnoreExternal: true, Timing: emulator.Timing{emulator.AuroraFailover: 600}})
	p, err := faultproxy.Start(e.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	ctx := context.Background()
	viaProxy := func(region string) *rds.Client { return rds.NewFromConfig(emulator.ConfigFor(p.URL, region)) }

	// A global database: writer in the primary region, a secondary with an instance in DR.
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	_, err = viaProxy(primary).CreateGlobalCluster(ctx, &rds.CreateGlobalClusterInput{GlobalClusterIdentifier: aws.String("g"), Engine: aws.String("aurora-postgresql"), EngineVersion: aws.String("15.4")})
	must(err)
	_, err = viaProxy(primary).CreateDBCluster(ctx, &rds.CreateDBClusterInput{DBClusterIdentifier: aws.String("g-p"), Engine: aws.String("aurora-postgresql"), EngineVersion: aws.String("15.4"),
		GlobalClusterIdentifier: aws.String("g"), MasterUsername: aws.String("u"), MasterUserPassword: aws.String("secret-password")})
	must(err)
	sec, err := viaProxy(dr).CreateDBCluster(ctx, &rds.CreateDBClusterInput{DBClusterIdentifier: aws.String("g-d"), Engine: aws.String("aurora-postgresql"), EngineVersion: aws.String("15.4"), GlobalClusterIdentifier: aws.String("g")})
	must(err)
	_, err = viaProxy(dr).CreateDBInstance(ctx, &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String("g-d-1"), DBClusterIdentifier: aws.String("g-d"), Engine: aws.String("aurora-postgresql"), DBInstanceClass: aws.String("db.r6g.large")})
	must(err)

	o, err := outage.Start(ctx, p, e, primary, faultproxy.Hang)
	must(err)
	// The region's API does not answer...
	short, cancel := context.WithTimeout(ctx, 500*time.Millisecond)
	_, err = viaProxy(primary).DescribeGlobalClusters(short, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String("g")})
	cancel()
	if err == nil {
		t.Fatal("the dark region answered through the proxy")
	}
	// ...and the emulator knows it is dark: a failover promotes the secondary, but the
	// global cluster stays failing-over until the region returns.
	if dark, err := e.DarkRegions(ctx); err != nil || dark[primary] == 0 {
		t.Fatalf("emulator dark regions %v, %v", dark, err)
	}
	_, err = viaProxy(dr).FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String("g"), TargetDbClusterIdentifier: sec.DBCluster.DBClusterArn, AllowDataLoss: aws.Bool(true)})
	must(err)
	must(e.Advance(ctx, time.Hour))
	status := func() string {
		t.Helper()
		out, err := viaProxy(dr).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String("g")})
		must(err)
		return aws.ToString(out.GlobalClusters[0].Status)
	}
	if s := status(); s != "failing-over" {
		t.Errorf("old primary's region dark: global status %s, want failing-over", s)
	}

	must(o.End(ctx))
	must(o.End(ctx)) // a second End does nothing
	if _, err := viaProxy(primary).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String("g")}); err != nil {
		t.Errorf("the region still does not answer after End: %v", err)
	}
	if s := status(); s != "available" {
		t.Errorf("region returned: global status %s, want available", s)
	}
	if dark, err := e.DarkRegions(ctx); err != nil || len(dark) != 0 {
		t.Errorf("emulator dark regions after End: %v, %v", dark, err)
	}
	if len(p.Rules()) != 0 {
		t.Errorf("proxy rules left: %+v", p.Rules())
	}
}
