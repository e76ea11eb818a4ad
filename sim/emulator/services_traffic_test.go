package emulator_test

// These tests advance the shared emulator's clock by hours in all; the file name
// sorts after services_test.go, whose Aurora metric window is an hour of that clock.

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
)

func s3For(region string) *s3.Client {
	return s3.NewFromConfig(shared.Config(region), func(o *s3.Options) { o.UsePathStyle = true })
}

func versionedBucket(t *testing.T, c *s3.Client, name, region string, versioned bool) {
	t.Helper()
	ctx := context.Background()
	must(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}})).ok(t)
	if versioned {
		must(c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name), VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})).ok(t)
	}
}

// S3 replication is asynchronous, covers only what its rules' filters name,
// leaves SSE-KMS objects alone unless a rule selects them, and publishes its
// backlog in CloudWatch when the rule enables metrics.
func TestS3ReplicationAsynchronousAsS3Does(t *testing.T) {
	ctx := context.Background()
	sp, sd := s3For(primary), s3For(dr)
	versionedBucket(t, sp, "rep-src", primary, true)
	versionedBucket(t, sd, "rep-dst", dr, true)
	versionedBucket(t, sd, "rep-unversioned", dr, false)
	role := aws.String("arn:aws:iam::123456789012:role/replication")
	rule := func(id string, prio int32, flt *s3types.ReplicationRuleFilter, dest string) s3types.ReplicationRule {
		return s3types.ReplicationRule{ID: aws.String(id), Priority: aws.Int32(prio), Status: s3types.ReplicationRuleStatusEnabled, Filter: flt,
			DeleteMarkerReplication: &s3types.DeleteMarkerReplication{Status: s3types.DeleteMarkerReplicationStatusDisabled},
			Destination:             &s3types.Destination{Bucket: aws.String("arn:aws:s3:::" + dest)}}
	}
	put := func(rules ...s3types.ReplicationRule) error {
		_, err := sp.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{Bucket: aws.String("rep-src"), ReplicationConfiguration: &s3types.ReplicationConfiguration{Role: role, Rules: rules}})
		return err
	}

	// S3 refuses an unversioned destination, and a KMS selection without a replica key.
	wantCode(t, put(rule("all", 1, &s3types.ReplicationRuleFilter{Prefix: aws.String("")}, "rep-unversioned")), "InvalidRequest")
	kmsNoKey := rule("all", 1, &s3types.ReplicationRuleFilter{Prefix: aws.String("")}, "rep-dst")
	kmsNoKey.SourceSelectionCriteria = &s3types.SourceSelectionCriteria{SseKmsEncryptedObjects: &s3types.SseKmsEncryptedObjects{Status: s3types.SseKmsEncryptedObjectsStatusEnabled}}
	wantCode(t, put(kmsNoKey), "InvalidRequest")

	// One rule for a prefix, with metrics; one for a tag.
	logs := rule("logs", 2, &s3types.ReplicationRuleFilter{Prefix: aws.String("logs/")}, "rep-dst")
	logs.Destination.Metrics = &s3types.Metrics{Status: s3types.MetricsStatusEnabled, EventThreshold: &s3types.ReplicationTimeValue{Minutes: aws.Int32(15)}}
	tagged := rule("tagged", 1, &s3types.ReplicationRuleFilter{Tag: &s3types.Tag{Key: aws.String("replicate"), Value: aws.String("yes")}}, "rep-dst")
	off := rule("off", 3, &s3types.ReplicationRuleFilter{Prefix: aws.String("off/")}, "rep-dst")
	off.Status = s3types.ReplicationRuleStatusDisabled
	must(0, put(logs, tagged, off)).ok(t)
	got := must(sp.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String("rep-src")})).ok(t).ReplicationConfiguration
	if len(got.Rules) != 3 || aws.ToString(got.Rules[0].Filter.Prefix) != "logs/" || got.Rules[0].Destination.Metrics == nil ||
		got.Rules[1].Filter.Tag == nil || aws.ToString(got.Rules[1].Filter.Tag.Key) != "replicate" {
		t.Fatalf("GetBucketReplication does not return the rules as put: %+v", got.Rules)
	}

	obj := func(c *s3.Client, bucket, key string) (*s3.HeadObjectOutput, error) {
		return c.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	}
	must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rep-src"), Key: aws.String("logs/1"), Body: strings.NewReader("12345")})).ok(t)
	must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rep-src"), Key: aws.String("other/1"), Body: strings.NewReader("x")})).ok(t)
	must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rep-src"), Key: aws.String("other/2"), Body: strings.NewReader("x"), Tagging: aws.String("replicate=yes")})).ok(t)
	must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rep-src"), Key: aws.String("off/1"), Body: strings.NewReader("x")})).ok(t)

	if h := must(obj(sp, "rep-src", "logs/1")).ok(t); h.ReplicationStatus != s3types.ReplicationStatusPending {
		t.Errorf("source right after PutObject: ReplicationStatus %q, want PENDING", h.ReplicationStatus)
	}
	_, err := obj(sd, "rep-dst", "logs/1")
	wantCode(t, err, "NotFound")

	pending := func(metric string) float64 {
		t.Helper()
		now := time.Now()
		out := must(cloudwatch.NewFromConfig(shared.Config(primary)).GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
			Namespace: aws.String("AWS/S3"), MetricName: aws.String(metric),
			Dimensions: []cwtypes.Dimension{{Name: aws.String("SourceBucket"), Value: aws.String("rep-src")},
				{Name: aws.String("DestinationBucket"), Value: aws.String("rep-dst")}, {Name: aws.String("RuleId"), Value: aws.String("logs")}},
			StartTime: aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now.Add(2 * time.Hour)), Period: aws.Int32(60),
			Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum},
		})).ok(t)
		var newest *cwtypes.Datapoint
		for i := range out.Datapoints {
			if newest == nil || out.Datapoints[i].Timestamp.After(*newest.Timestamp) {
				newest = &out.Datapoints[i]
			}
		}
		if newest == nil {
			t.Fatalf("no %s datapoint", metric)
		}
		return aws.ToFloat64(newest.Maximum)
	}
	if ops, bytes := pending("OperationsPendingReplication"), pending("BytesPendingReplication"); ops != 1 || bytes != 5 {
		t.Errorf("pending before the lag: %v operations, %v bytes, want 1 and 5", ops, bytes)
	}

	advance(t)
	if h := must(obj(sp, "rep-src", "logs/1")).ok(t); h.ReplicationStatus != s3types.ReplicationStatusCompleted {
		t.Errorf("source after the lag: ReplicationStatus %q, want COMPLETED", h.ReplicationStatus)
	}
	if h := must(obj(sd, "rep-dst", "logs/1")).ok(t); h.ReplicationStatus != s3types.ReplicationStatusReplica {
		t.Errorf("replica: ReplicationStatus %q, want REPLICA", h.ReplicationStatus)
	}
	must(obj(sd, "rep-dst", "other/2")).ok(t) // the tag rule
	_, err = obj(sd, "rep-dst", "other/1")
	wantCode(t, err, "NotFound") // covered by no rule
	_, err = obj(sd, "rep-dst", "off/1")
	wantCode(t, err, "NotFound") // covered by a disabled rule only
	if h := must(obj(sp, "rep-src", "other/1")).ok(t); h.ReplicationStatus != "" {
		t.Errorf("an object no rule covers has ReplicationStatus %q", h.ReplicationStatus)
	}
	if ops := pending("OperationsPendingReplication"); ops != 0 {
		t.Errorf("pending after the lag: %v operations", ops)
	}

	// SSE-KMS: not replicated by a rule that does not select KMS-encrypted objects.
	must(sp.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: aws.String("rep-src"), ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{
		Rules: []s3types.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{
			SSEAlgorithm: s3types.ServerSideEncryptionAwsKms, KMSMasterKeyID: aws.String("arn:aws:kms:eu-west-1:123456789012:key/mrk-src")}}}}})).ok(t)
	must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rep-src"), Key: aws.String("logs/kms-1"), Body: strings.NewReader("secret")})).ok(t)
	advance(t)
	_, err = obj(sd, "rep-dst", "logs/kms-1")
	wantCode(t, err, "NotFound")
	// With SseKmsEncryptedObjects and a replica key it is, encrypted with that key.
	logs.SourceSelectionCriteria = &s3types.SourceSelectionCriteria{SseKmsEncryptedObjects: &s3types.SseKmsEncryptedObjects{Status: s3types.SseKmsEncryptedObjectsStatusEnabled}}
	logs.Destination.EncryptionConfiguration = &s3types.EncryptionConfiguration{ReplicaKmsKeyID: aws.String("arn:aws:kms:eu-west-3:123456789012:key/mrk-dst")}
	must(0, put(logs, tagged)).ok(t)
	must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rep-src"), Key: aws.String("logs/kms-2"), Body: strings.NewReader("secret")})).ok(t)
	advance(t)
	if h := must(obj(sd, "rep-dst", "logs/kms-2")).ok(t); aws.ToString(h.SSEKMSKeyId) != "arn:aws:kms:eu-west-3:123456789012:key/mrk-dst" {
		t.Errorf("replica's KMS key %q, want the rule's ReplicaKmsKeyID", aws.ToString(h.SSEKMSKeyId))
	}

	// A destination whose versioning was suspended later fails the operation.
	must(sd.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String("rep-dst"), VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusSuspended}})).ok(t)
	must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("rep-src"), Key: aws.String("logs/3"), Body: strings.NewReader("x")})).ok(t)
	advance(t)
	if h := must(obj(sp, "rep-src", "logs/3")).ok(t); h.ReplicationStatus != s3types.ReplicationStatusFailed {
		t.Errorf("into a suspended destination: ReplicationStatus %q, want FAILED", h.ReplicationStatus)
	}
	ops := must(shared.S3Replication(ctx)).ok(t)
	var reason string
	for _, op := range ops {
		if op.Key == "logs/3" {
			reason = op.Reason
		}
	}
	if reason != "DstBucketUnversioned" {
		t.Errorf("failure reason %q, want DstBucketUnversioned", reason)
	}
}

// ECS registers a service's running tasks with its target group; their health
// lags behind: initial, then healthy; draining once stopped.
func TestTargetHealthLagsBehindRunningTasks(t *testing.T) {
	ctx := context.Background()
	cfg := shared.Config(dr)
	e2, lbc, c := ec2.NewFromConfig(cfg), elb.NewFromConfig(cfg), ecs.NewFromConfig(cfg)
	subnets := must(e2.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})).ok(t).Subnets
	ids := []string{aws.ToString(subnets[0].SubnetId), aws.ToString(subnets[1].SubnetId)}
	lb := must(lbc.CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("health"), Subnets: ids, Type: elbtypes.LoadBalancerTypeEnumApplication})).ok(t).LoadBalancers[0]
	tg := must(lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("health-server"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(1983),
		VpcId: subnets[0].VpcId, TargetType: elbtypes.TargetTypeEnumIp})).ok(t).TargetGroups[0].TargetGroupArn
	must(c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("health")})).ok(t)
	td := must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{Family: aws.String("health-server"), NetworkMode: ecstypes.NetworkModeAwsvpc,
		RequiresCompatibilities: []ecstypes.Compatibility{ecstypes.CompatibilityFargate}, Cpu: aws.String("256"), Memory: aws.String("512"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("server"), Image: aws.String("spacelift/server"), PortMappings: []ecstypes.PortMapping{{ContainerPort: aws.Int32(1983)}}}},
	})).ok(t).TaskDefinition.TaskDefinitionArn
	create := func(name string) error {
		_, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("health"), ServiceName: aws.String(name), TaskDefinition: td, DesiredCount: aws.Int32(2),
			LaunchType:           ecstypes.LaunchTypeFargate,
			LoadBalancers:        []ecstypes.LoadBalancer{{TargetGroupArn: tg, ContainerName: aws.String("server"), ContainerPort: aws.Int32(1983)}},
			NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: ids, SecurityGroups: []string{}}}})
		return err
	}
	// ECS refuses a target group that no load balancer uses.
	wantCode(t, create("server"), "InvalidParameterException")
	must(lbc.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(80),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: tg}}})).ok(t)
	must(0, create("server")).ok(t)

	// An instance target group cannot take awsvpc tasks.
	inst := must(lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("health-inst"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(8080),
		VpcId: subnets[0].VpcId, TargetType: elbtypes.TargetTypeEnumInstance})).ok(t).TargetGroups[0].TargetGroupArn
	must(lbc.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(8080),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: inst}}})).ok(t)
	_, err := c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("health"), ServiceName: aws.String("inst"), TaskDefinition: td, DesiredCount: aws.Int32(1),
		LaunchType:           ecstypes.LaunchTypeFargate,
		LoadBalancers:        []ecstypes.LoadBalancer{{TargetGroupArn: inst, ContainerName: aws.String("server"), ContainerPort: aws.Int32(1983)}},
		NetworkConfiguration: &ecstypes.NetworkConfiguration{AwsvpcConfiguration: &ecstypes.AwsVpcConfiguration{Subnets: ids, SecurityGroups: []string{}}}})
	wantCode(t, err, "InvalidParameterException")

	states := func() map[elbtypes.TargetHealthStateEnum]int {
		out := must(lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg})).ok(t)
		m := map[elbtypes.TargetHealthStateEnum]int{}
		for _, d := range out.TargetHealthDescriptions {
			m[d.TargetHealth.State]++
			if aws.ToInt32(d.Target.Port) != 1983 || !strings.HasPrefix(aws.ToString(d.Target.Id), "10.") {
				t.Errorf("target %s:%d, want a task IP on the container port", aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port))
			}
		}
		return m
	}
	if m := states(); len(m) != 0 {
		t.Errorf("targets before any task runs: %v", m)
	}
	advance(t) // both tasks running; the second started at the end of the period
	svc := must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("health"), Services: []string{"server"}})).ok(t).Services[0]
	if svc.RunningCount != 2 || len(svc.LoadBalancers) != 1 {
		t.Fatalf("service: running %d, load balancers %+v", svc.RunningCount, svc.LoadBalancers)
	}
	if m := states(); m[elbtypes.TargetHealthStateEnumInitial] == 0 || m[elbtypes.TargetHealthStateEnumInitial]+m[elbtypes.TargetHealthStateEnumHealthy] != 2 {
		t.Errorf("targets right after the tasks run: %v, want some still initial", m)
	}
	advance(t)
	if m := states(); m[elbtypes.TargetHealthStateEnumHealthy] != 2 {
		t.Errorf("targets after the health checks: %v, want 2 healthy", m)
	}
	must(0, shared.SetUnhealthyTargets(ctx, "health-server", 1, "")).ok(t)
	out := must(lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: tg})).ok(t)
	unhealthy := 0
	for _, d := range out.TargetHealthDescriptions {
		if d.TargetHealth.State == elbtypes.TargetHealthStateEnumUnhealthy {
			unhealthy++
			if d.TargetHealth.Reason != elbtypes.TargetHealthReasonEnumResponseCodeMismatch {
				t.Errorf("unhealthy reason %q", d.TargetHealth.Reason)
			}
		}
	}
	if unhealthy != 1 {
		t.Errorf("%d unhealthy targets, want 1", unhealthy)
	}
	must(0, shared.SetUnhealthyTargets(ctx, "health-server", 0, "")).ok(t)

	// Stopping the service drains its targets, then they are gone.
	must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("health"), Service: aws.String("server"), DesiredCount: aws.Int32(0)})).ok(t)
	advance(t)
	if m := states(); m[elbtypes.TargetHealthStateEnumDraining] == 0 {
		t.Errorf("targets after the tasks stopped: %v, want draining", m)
	}
	advance(t)
	advance(t)
	if m := states(); len(m) != 0 {
		t.Errorf("targets after the deregistration delay: %v, want none", m)
	}

	// A target registered by hand passes its health checks first too; in a
	// target group no load balancer uses, it is unused.
	manual := must(lbc.CreateTargetGroup(ctx, &elb.CreateTargetGroupInput{Name: aws.String("health-manual"), Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(9090),
		VpcId: subnets[0].VpcId, TargetType: elbtypes.TargetTypeEnumIp})).ok(t).TargetGroups[0].TargetGroupArn
	must(lbc.RegisterTargets(ctx, &elb.RegisterTargetsInput{TargetGroupArn: manual, Targets: []elbtypes.TargetDescription{{Id: aws.String("10.99.0.1")}}})).ok(t)
	state := func() elbtypes.TargetHealthStateEnum {
		out := must(lbc.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: manual})).ok(t)
		if len(out.TargetHealthDescriptions) != 1 {
			t.Fatalf("manual target group: %+v", out.TargetHealthDescriptions)
		}
		return out.TargetHealthDescriptions[0].TargetHealth.State
	}
	if st := state(); st != elbtypes.TargetHealthStateEnumUnused {
		t.Errorf("a target in a target group no load balancer uses: %s, want unused", st)
	}
	must(lbc.CreateListener(ctx, &elb.CreateListenerInput{LoadBalancerArn: lb.LoadBalancerArn, Protocol: elbtypes.ProtocolEnumHttp, Port: aws.Int32(9090),
		DefaultActions: []elbtypes.Action{{Type: elbtypes.ActionTypeEnumForward, TargetGroupArn: manual}}})).ok(t)
	if st := state(); st != elbtypes.TargetHealthStateEnumInitial {
		t.Errorf("a target just registered by hand: %s, want initial", st)
	}
	advance(t)
	if st := state(); st != elbtypes.TargetHealthStateEnumHealthy {
		t.Errorf("a target registered by hand after the health checks: %s, want healthy", st)
	}
}

// Each region's load balancers have their own canonical hosted zone, and Route 53
// refuses an alias that names a load balancer with another region's zone.
func TestRoute53AliasZoneMustBeTheLoadBalancers(t *testing.T) {
	ctx := context.Background()
	zones := map[string]string{}
	dns := map[string]string{}
	for _, region := range []string{primary, dr} {
		cfg := shared.Config(region)
		subnets := must(ec2.NewFromConfig(cfg).DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []ec2types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})).ok(t).Subnets
		lb := must(elb.NewFromConfig(cfg).CreateLoadBalancer(ctx, &elb.CreateLoadBalancerInput{Name: aws.String("alias-" + region),
			Subnets: []string{aws.ToString(subnets[0].SubnetId), aws.ToString(subnets[1].SubnetId)}})).ok(t).LoadBalancers[0]
		zones[region], dns[region] = aws.ToString(lb.CanonicalHostedZoneId), aws.ToString(lb.DNSName)
	}
	// AWS General Reference, "Elastic Load Balancing endpoints and quotas".
	if zones[primary] != "Z32O12XQLNTSW2" || zones[dr] != "Z3Q77PNBQS71R4" {
		t.Errorf("canonical hosted zones %v", zones)
	}
	r := route53.NewFromConfig(shared.Config(primary))
	zone := must(r.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("alias.example.com"), CallerReference: aws.String("alias")})).ok(t).HostedZone.Id
	upsert := func(lbRegion, zoneRegion string) error {
		_, err := r.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: zone, ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{
			Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{Name: aws.String("alias.example.com"), Type: r53types.RRTypeA,
				AliasTarget: &r53types.AliasTarget{DNSName: aws.String(dns[lbRegion]), HostedZoneId: aws.String(zones[zoneRegion]), EvaluateTargetHealth: true}},
		}}}})
		return err
	}
	err := upsert(dr, primary) // the DR load balancer with the primary's zone: swapped
	wantCode(t, err, "InvalidChangeBatch")
	if !strings.Contains(err.Error(), "does not lie within the target zone") {
		t.Errorf("error %v", err)
	}
	must(0, upsert(dr, dr)).ok(t)
}
