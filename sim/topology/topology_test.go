package topology_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/topology"
)

func TestSeedBuildsTheInstallation(t *testing.T) {
	t.Parallel()
	e := emulator.StartForTest(t, emulator.Options{TimingPreset: emulator.PresetCI})
	ctx := context.Background()
	topo, err := topology.Seed(ctx, topology.Options{EndpointURL: e.URL, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	p, d := topo.Primary, topo.DR
	cfg := e.Config

	t.Run("account from STS", func(t *testing.T) {
		id, err := sts.NewFromConfig(cfg(p.Name)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
		if err != nil {
			t.Fatal(err)
		}
		if topo.AccountID != aws.ToString(id.Account) || !strings.Contains(p.DBClusterARN, ":"+topo.AccountID+":") {
			t.Errorf("account %s, cluster %s; STS says %s", topo.AccountID, p.DBClusterARN, aws.ToString(id.Account))
		}
	})

	t.Run("aurora global database", func(t *testing.T) {
		out, err := rds.NewFromConfig(cfg(d.Name)).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String(topo.GlobalClusterID)})
		if err != nil {
			t.Fatal(err)
		}
		g := out.GlobalClusters[0]
		if aws.ToString(g.Engine) != "aurora-postgresql" || aws.ToString(g.Status) != "available" || len(g.GlobalClusterMembers) != 2 {
			t.Fatalf("global cluster %+v", g)
		}
		for _, m := range g.GlobalClusterMembers {
			arn, writer := aws.ToString(m.DBClusterArn), aws.ToBool(m.IsWriter)
			if (arn == p.DBClusterARN) != writer || (arn != p.DBClusterARN && arn != d.DBClusterARN) {
				t.Errorf("member %s writer=%v; want the writer %s and the secondary %s", arn, writer, p.DBClusterARN, d.DBClusterARN)
			}
		}
		for _, r := range []topology.Region{p, d} {
			cl, err := rds.NewFromConfig(cfg(r.Name)).DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(r.DBClusterID)})
			if err != nil || len(cl.DBClusters) != 1 || aws.ToString(cl.DBClusters[0].DBClusterArn) != r.DBClusterARN {
				t.Errorf("%s cluster: %+v %v", r.Name, cl, err)
			}
		}
	})

	t.Run("ecs services", func(t *testing.T) {
		for _, r := range []topology.Region{p, d} {
			out, err := ecs.NewFromConfig(cfg(r.Name)).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(r.ECSCluster), Services: topology.Services})
			if err != nil || len(out.Services) != 3 {
				t.Fatalf("%s services: %+v %v", r.Name, out, err)
			}
			for _, s := range out.Services {
				want := r.DesiredCounts[aws.ToString(s.ServiceName)]
				if s.DesiredCount != want || s.RunningCount != want {
					t.Errorf("%s %s: desired %d running %d, want %d", r.Name, aws.ToString(s.ServiceName), s.DesiredCount, s.RunningCount, want)
				}
				if r.Name == d.Name && want != 0 {
					t.Errorf("DR service %s at %d, want 0", aws.ToString(s.ServiceName), want)
				}
				if r.Name == p.Name && want == 0 {
					t.Errorf("primary service %s at 0", aws.ToString(s.ServiceName))
				}
			}
		}
	})

	t.Run("load balancers serve the server service", func(t *testing.T) {
		// AWS General Reference, "Elastic Load Balancing endpoints and quotas".
		zones := map[string]string{"eu-west-1": "Z32O12XQLNTSW2", "eu-west-3": "Z3Q77PNBQS71R4"}
		for _, r := range []topology.Region{p, d} {
			if r.LoadBalancerZoneID != zones[r.Name] {
				t.Errorf("%s load balancer zone %s, want %s", r.Name, r.LoadBalancerZoneID, zones[r.Name])
			}
			out, err := ecs.NewFromConfig(cfg(r.Name)).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(r.ECSCluster), Services: []string{"server"}})
			if err != nil || len(out.Services) != 1 || len(out.Services[0].LoadBalancers) != 1 ||
				aws.ToString(out.Services[0].LoadBalancers[0].TargetGroupArn) != r.TargetGroups["server"] {
				t.Fatalf("%s server service load balancers: %+v %v", r.Name, out, err)
			}
			th, err := elb.NewFromConfig(cfg(r.Name)).DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(r.TargetGroups["server"])})
			if err != nil {
				t.Fatal(err)
			}
			healthy := 0
			for _, h := range th.TargetHealthDescriptions {
				if h.TargetHealth.State == elbtypes.TargetHealthStateEnumHealthy {
					healthy++
				}
			}
			// The wait includes the primary's targets; the DR region runs no task.
			if want := int(r.DesiredCounts["server"]); healthy != want || len(th.TargetHealthDescriptions) != want {
				t.Errorf("%s: %d healthy of %d targets, want %d", r.Name, healthy, len(th.TargetHealthDescriptions), want)
			}
		}
	})

	t.Run("dns points at the primary", func(t *testing.T) {
		out, err := route53.NewFromConfig(cfg(p.Name)).ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(topo.HostedZoneID)})
		if err != nil {
			t.Fatal(err)
		}
		iotEP, err := iot.NewFromConfig(cfg(p.Name)).DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
		if err != nil {
			t.Fatal(err)
		}
		var server, broker string
		for _, rr := range out.ResourceRecordSets {
			switch strings.TrimSuffix(aws.ToString(rr.Name), ".") {
			case topo.ServerRecordName:
				if rr.Type == "AAAA" {
					t.Errorf("an AAAA record without DualStack: %+v", rr)
				}
				if rr.AliasTarget != nil {
					server = strings.TrimSuffix(aws.ToString(rr.AliasTarget.DNSName), ".")
				}
			case topo.IoTRecordName:
				if len(rr.ResourceRecords) == 1 {
					broker = aws.ToString(rr.ResourceRecords[0].Value)
				}
			}
		}
		if len(p.LoadBalancerIPv4) != 2 || len(p.LoadBalancerIPv6) != 0 || p.LoadBalancerIPv4[0] == d.LoadBalancerIPv4[0] || topo.DualStack {
			t.Errorf("load balancer addresses: primary %v %v, DR %v", p.LoadBalancerIPv4, p.LoadBalancerIPv6, d.LoadBalancerIPv4)
		}
		if server != p.LoadBalancerDNS || server == d.LoadBalancerDNS {
			t.Errorf("server record -> %q, want the primary LB %q", server, p.LoadBalancerDNS)
		}
		if broker != aws.ToString(iotEP.EndpointAddress) || broker == d.IoTEndpoint {
			t.Errorf("IoT broker record -> %q, want the primary endpoint %q", broker, aws.ToString(iotEP.EndpointAddress))
		}
	})

	t.Run("workers", func(t *testing.T) {
		for _, r := range []topology.Region{p, d} {
			out, err := autoscaling.NewFromConfig(cfg(r.Name)).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{r.ASGName}})
			if err != nil || len(out.AutoScalingGroups) != 1 {
				t.Fatalf("%s ASG: %v", r.Name, err)
			}
			inService := 0
			for _, i := range out.AutoScalingGroups[0].Instances {
				if i.LifecycleState == astypes.LifecycleStateInService {
					inService++
				}
			}
			if inService != 2 {
				t.Errorf("%s: %d workers in service, want 2", r.Name, inService)
			}
		}
	})

	t.Run("buckets replicate to the other region", func(t *testing.T) {
		for _, r := range []topology.Region{p, d} {
			other := topo.Other(r.Name)
			c := s3.NewFromConfig(cfg(r.Name), func(o *s3.Options) { o.UsePathStyle = true })
			if len(r.Buckets) != 5 {
				t.Fatalf("%s: %d buckets", r.Name, len(r.Buckets))
			}
			for _, purpose := range topology.BucketPurposes {
				b := r.Buckets[purpose]
				loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(b.Name)})
				if err != nil || string(loc.LocationConstraint) != r.Name {
					t.Errorf("%s location %v %v", b.Name, loc, err)
				}
				v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(b.Name)})
				if err != nil || v.Status != s3types.BucketVersioningStatusEnabled {
					t.Errorf("%s versioning %v %v", b.Name, v, err)
				}
				rep, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(b.Name)})
				if err != nil {
					t.Fatalf("%s replication: %v", b.Name, err)
				}
				rules := rep.ReplicationConfiguration.Rules
				if len(rules) != 1 || rules[0].Status != s3types.ReplicationRuleStatusEnabled || aws.ToString(rules[0].Destination.Bucket) != other.Buckets[purpose].ARN {
					t.Errorf("%s replication rules %+v, want one to %s", b.Name, rules, other.Buckets[purpose].ARN)
				}
			}
		}
	})

	t.Run("cloudfront origin is the primary", func(t *testing.T) {
		out, err := cloudfront.NewFromConfig(cfg("us-east-1")).GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: aws.String(topo.DistributionID)})
		if err != nil {
			t.Fatal(err)
		}
		if o := aws.ToString(out.Distribution.DistributionConfig.Origins.Items[0].DomainName); o != p.LoadBalancerDNS {
			t.Errorf("origin %s, want %s", o, p.LoadBalancerDNS)
		}
		if s := aws.ToString(out.Distribution.Status); s != "Deployed" {
			t.Errorf("status %s after the wait", s)
		}
	})

	t.Run("multi-region key", func(t *testing.T) {
		out, err := kms.NewFromConfig(cfg(d.Name)).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(topo.KMSReplicaKeyARN)})
		if err != nil {
			t.Fatal(err)
		}
		mr := out.KeyMetadata.MultiRegionConfiguration
		if !aws.ToBool(out.KeyMetadata.MultiRegion) || mr == nil || mr.MultiRegionKeyType != kmstypes.MultiRegionKeyTypeReplica ||
			aws.ToString(mr.PrimaryKey.Arn) != topo.KMSPrimaryKeyARN {
			t.Errorf("replica key %+v", out.KeyMetadata)
		}
	})

	t.Run("installer configs", func(t *testing.T) {
		dir := t.TempDir()
		if err := topo.WriteFiles(dir); err != nil {
			t.Fatal(err)
		}
		read := func(name string) map[string]any {
			b, err := os.ReadFile(filepath.Join(dir, name))
			if err != nil {
				t.Fatal(err)
			}
			var m map[string]any
			if err := json.Unmarshal(b, &m); err != nil {
				t.Fatal(err)
			}
			return m
		}
		for file, want := range map[string]struct {
			region, replica string
			dr              bool
			buckets         topology.Region
			replicaKey      string
		}{
			topology.PrimaryConfigFile: {p.Name, d.Name, false, d, topo.KMSReplicaKeyARN},
			topology.DRConfigFile:      {d.Name, p.Name, true, p, topo.KMSPrimaryKeyARN},
		} {
			c := read(file)
			dr := c["disaster_recovery"].(map[string]any)
			rep := dr["s3_bucket_replication"].(map[string]any)
			if c["aws_region"] != want.region || c["disable_services"] != want.dr || c["hostname"] != topo.ServerRecordName ||
				c["iot_broker_endpoint"] != topo.IoTRecordName {
				t.Errorf("%s: %v", file, c)
			}
			if dr["is_dr_instance"] != want.dr || dr["replica_region"] != want.replica || dr["encryption_primary_key_arn"] != topo.KMSPrimaryKeyARN {
				t.Errorf("%s disaster_recovery: %v", file, dr)
			}
			if rep["enabled"] != true || rep["replica_kms_key_arn"] != want.replicaKey {
				t.Errorf("%s s3_bucket_replication: %v", file, rep)
			}
			for _, purpose := range topology.BucketPurposes {
				if rep[purpose+"_bucket_arn"] != want.buckets.Buckets[purpose].ARN {
					t.Errorf("%s %s_bucket_arn = %v, want %s", file, purpose, rep[purpose+"_bucket_arn"], want.buckets.Buckets[purpose].ARN)
				}
			}
		}
		back, err := topology.Load(filepath.Join(dir, topology.TopologyFile))
		if err != nil {
			t.Fatal(err)
		}
		if back.HostedZoneID != topo.HostedZoneID || back.DR.ASGName != d.ASGName || back.GlobalClusterID != topo.GlobalClusterID {
			t.Errorf("topology.json round trip: %+v", back)
		}
	})
}

func TestSeedOptionsValidation(t *testing.T) {
	if _, err := topology.Seed(context.Background(), topology.Options{}); err == nil {
		t.Error("Seed without an endpoint succeeded")
	}
	if _, err := topology.Seed(context.Background(), topology.Options{EndpointURL: "http://127.0.0.1:1", PrimaryRegion: "eu-west-1", DRRegion: "eu-west-1"}); err == nil {
		t.Error("Seed with one region twice succeeded")
	}
}

// The us-east-1 variant: the primary is the region that serves Route 53's and
// CloudFront's control planes. It seeds like any other (buckets in us-east-1
// take no LocationConstraint), and its configs name the regions.
func TestSeedUSEast1Variant(t *testing.T) {
	t.Parallel()
	e := emulator.StartForTest(t, emulator.Options{TimingPreset: emulator.PresetCI})
	ctx := context.Background()
	o, err := topology.Variant("us-east-1", topology.Options{EndpointURL: e.URL, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	topo, err := topology.Seed(ctx, o)
	if err != nil {
		t.Fatal(err)
	}
	if topo.Primary.Name != "us-east-1" || topo.DR.Name != "us-west-2" {
		t.Fatalf("regions %s -> %s", topo.Primary.Name, topo.DR.Name)
	}
	g, err := rds.NewFromConfig(e.Config("us-west-2")).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String(topo.GlobalClusterID)})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range g.GlobalClusters[0].GlobalClusterMembers {
		if aws.ToBool(m.IsWriter) != strings.Contains(aws.ToString(m.DBClusterArn), ":us-east-1:") {
			t.Errorf("member %s writer=%v: want the writer in us-east-1", aws.ToString(m.DBClusterArn), aws.ToBool(m.IsWriter))
		}
	}
	svc, err := ecs.NewFromConfig(e.Config("us-east-1")).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(topo.Primary.ECSCluster), Services: topology.Services})
	if err != nil || len(svc.Services) != 3 || svc.Services[0].RunningCount == 0 {
		t.Fatalf("primary services in us-east-1: %+v %v", svc, err)
	}
	s3c := s3.NewFromConfig(e.Config("us-east-1"), func(o *s3.Options) { o.UsePathStyle = true })
	loc, err := s3c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(topo.Primary.Buckets["states"].Name)})
	if err != nil || loc.LocationConstraint != "" {
		t.Errorf("primary bucket location %+v %v, want us-east-1 (empty constraint)", loc, err)
	}
	dir := t.TempDir()
	if err := topo.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, topology.PrimaryConfigFile))
	if err != nil {
		t.Fatal(err)
	}
	var cfg struct {
		Region string `json:"aws_region"`
		DR     struct {
			Replica string `json:"replica_region"`
		} `json:"disaster_recovery"`
	}
	if err := json.Unmarshal(b, &cfg); err != nil || cfg.Region != "us-east-1" || cfg.DR.Replica != "us-west-2" {
		t.Errorf("config.json: %s %v", b, err)
	}
	if _, err := topology.Variant("mars-1", topology.Options{}); err == nil {
		t.Error("an unknown variant was accepted")
	}
}
