package emulator_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	cftypes "github.com/aws/aws-sdk-go-v2/service/cloudfront/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	s3ctypes "github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/runbookhq/runbook/sim/emulator"
)

const (
	primary = "eu-west-1"
	dr      = "eu-west-3"
	// Every transition of the shared emulator lasts this long: far longer than any
	// test needs to observe the in-progress state, and skipped with Advance.
	long = 600 * time.Second
)

// shared is one emulator for the behaviour tests of this file, which run one after
// another (they move its clock) and use distinct resource names.
var shared *emulator.Emulator

// stopAfterTests are the other emulators tests started, stopped when all have run.
var stopAfterTests []*emulator.Emulator

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	ctx := context.Background()
	t := emulator.Timing{}
	for _, k := range []string{emulator.AuroraSwitchover, emulator.AuroraFailover, emulator.AuroraResync, emulator.ECSStabilize,
		emulator.Route53InSync, emulator.ASGInstanceRefresh, emulator.ASGInstanceWarmup,
		emulator.CloudFrontDeploy, emulator.S3BatchJob, emulator.S3Replication, emulator.ELBTargetHealthy,
		emulator.ELBDeregistration} {
		t[k] = long.Seconds()
	}
	e, err := emulator.Start(ctx, emulator.Options{Timing: t, IgnoreExternal: true, Log: os.Stderr})
	if err != nil {
		fmt.Fprintln(os.Stderr, "start shared emulator:", err)
		return 1
	}
	defer e.Stop()
	shared = e
	defer func() {
		for _, o := range stopAfterTests {
			_ = o.Stop()
		}
	}()
	return m.Run()
}

func code(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	if err != nil {
		return "non-API error: " + err.Error()
	}
	return ""
}

func wantCode(t *testing.T, err error, want string) {
	t.Helper()
	if got := code(err); got != want {
		t.Fatalf("error code = %q (%v), want %q", got, err, want)
	}
}

// must(call()).ok(t) is call's value, or the test's end with call's error.
func must[T any](v T, err error) checked[T] { return checked[T]{v, err} }

type checked[T any] struct {
	v   T
	err error
}

func (c checked[T]) ok(t *testing.T) T {
	t.Helper()
	if c.err != nil {
		t.Fatal(c.err)
	}
	return c.v
}

func advance(t *testing.T) {
	t.Helper()
	if err := shared.Advance(context.Background(), long+time.Second); err != nil {
		t.Fatal(err)
	}
}

func TestECSServicesStabilize(t *testing.T) {
	ctx := context.Background()
	c := ecs.NewFromConfig(shared.Config(dr))
	must(c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("stab")})).ok(t)
	td := must(c.RegisterTaskDefinition(ctx, &ecs.RegisterTaskDefinitionInput{
		Family:               aws.String("stab-server"),
		ContainerDefinitions: []ecstypes.ContainerDefinition{{Name: aws.String("server"), Image: aws.String("spacelift/server"), Memory: aws.Int32(512)}},
	})).ok(t).TaskDefinition.TaskDefinitionArn
	must(c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("stab"), ServiceName: aws.String("server"), TaskDefinition: td, DesiredCount: aws.Int32(0)})).ok(t)
	svc := func() ecstypes.Service {
		out := must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("stab"), Services: []string{"server"}})).ok(t)
		return out.Services[0]
	}
	must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("stab"), Service: aws.String("server"), DesiredCount: aws.Int32(2)})).ok(t)
	s := svc()
	if s.DesiredCount != 2 || s.RunningCount != 0 || s.PendingCount != 2 {
		t.Errorf("just after UpdateService: desired %d running %d pending %d, want 2/0/2", s.DesiredCount, s.RunningCount, s.PendingCount)
	}
	if len(s.Deployments) != 1 || s.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateInProgress || s.Deployments[0].DesiredCount != 2 {
		t.Errorf("just after UpdateService: deployments %+v", s.Deployments)
	}
	advance(t)
	s = svc()
	if s.RunningCount != 2 || s.PendingCount != 0 || len(s.Deployments) != 1 ||
		s.Deployments[0].RolloutState != ecstypes.DeploymentRolloutStateCompleted || s.Deployments[0].RunningCount != 2 {
		t.Errorf("after stabilising: running %d pending %d deployments %+v", s.RunningCount, s.PendingCount, s.Deployments)
	}
	if len(s.Events) == 0 || !strings.Contains(aws.ToString(s.Events[0].Message), "steady state") {
		t.Errorf("latest event = %+v, want a steady state event", s.Events)
	}

	// A forced new deployment shows two deployments until the old one drained.
	must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("stab"), Service: aws.String("server"), ForceNewDeployment: true})).ok(t)
	if s = svc(); len(s.Deployments) != 2 {
		t.Errorf("during a new deployment: %d deployments, want 2", len(s.Deployments))
	}
	advance(t)
	if s = svc(); len(s.Deployments) != 1 || s.RunningCount != 2 {
		t.Errorf("after the new deployment: %d deployments, running %d", len(s.Deployments), s.RunningCount)
	}
}

func TestRoute53ChangeInSync(t *testing.T) {
	ctx := context.Background()
	c := route53.NewFromConfig(shared.Config(primary))
	zone := must(c.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("insync.example.com"), CallerReference: aws.String("insync")})).ok(t)
	ch := must(c.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: zone.HostedZone.Id,
		ChangeBatch: &r53types.ChangeBatch{Changes: []r53types.Change{{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String("app.insync.example.com"), Type: r53types.RRTypeCname, TTL: aws.Int64(60),
			ResourceRecords: []r53types.ResourceRecord{{Value: aws.String("lb.eu-west-3.elb.amazonaws.com")}},
		}}}},
	})).ok(t)
	if ch.ChangeInfo.Status != r53types.ChangeStatusPending {
		t.Errorf("ChangeResourceRecordSets status %s, want PENDING", ch.ChangeInfo.Status)
	}
	got := must(c.GetChange(ctx, &route53.GetChangeInput{Id: ch.ChangeInfo.Id})).ok(t)
	if got.ChangeInfo.Status != r53types.ChangeStatusPending {
		t.Errorf("GetChange status %s, want PENDING", got.ChangeInfo.Status)
	}
	advance(t)
	got = must(c.GetChange(ctx, &route53.GetChangeInput{Id: ch.ChangeInfo.Id})).ok(t)
	if got.ChangeInfo.Status != r53types.ChangeStatusInsync {
		t.Errorf("GetChange status %s after the delay, want INSYNC", got.ChangeInfo.Status)
	}
	_, err := c.GetChange(ctx, &route53.GetChangeInput{Id: aws.String("/change/CNOSUCHCHANGE")})
	wantCode(t, err, "NoSuchChange")
	// The hosted zone's own change (moto's fixed id) is INSYNC.
	if z := must(c.GetChange(ctx, &route53.GetChangeInput{Id: zone.ChangeInfo.Id})).ok(t); z.ChangeInfo.Status != r53types.ChangeStatusInsync {
		t.Errorf("hosted zone change %s", z.ChangeInfo.Status)
	}
}

func TestIoTEndpointStablePerRegion(t *testing.T) {
	ctx := context.Background()
	ep := func(region string) string {
		out := must(iot.NewFromConfig(shared.Config(region)).DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})).ok(t)
		return aws.ToString(out.EndpointAddress)
	}
	p1, p2, d := ep(primary), ep(primary), ep(dr)
	if p1 != p2 {
		t.Errorf("primary endpoint changed between calls: %s, %s", p1, p2)
	}
	if p1 == d || !strings.HasSuffix(p1, "-ats.iot."+primary+".amazonaws.com") || !strings.HasSuffix(d, "-ats.iot."+dr+".amazonaws.com") {
		t.Errorf("endpoints %s (primary), %s (DR): want distinct <prefix>-ats.iot.<region>.amazonaws.com", p1, d)
	}
}

func TestCloudFrontOriginUpdateDeploys(t *testing.T) {
	ctx := context.Background()
	c := cloudfront.NewFromConfig(shared.Config("us-east-1"))
	created := must(c.CreateDistribution(ctx, &cloudfront.CreateDistributionInput{DistributionConfig: &cftypes.DistributionConfig{
		CallerReference: aws.String("cf-test"), Comment: aws.String("spacelift"), Enabled: aws.Bool(true),
		Origins: &cftypes.Origins{Quantity: aws.Int32(1), Items: []cftypes.Origin{{
			Id: aws.String("server"), DomainName: aws.String("primary-lb.eu-west-1.elb.amazonaws.com"),
			CustomOriginConfig: &cftypes.CustomOriginConfig{HTTPPort: aws.Int32(80), HTTPSPort: aws.Int32(443), OriginProtocolPolicy: cftypes.OriginProtocolPolicyHttpsOnly},
		}}},
		DefaultCacheBehavior: &cftypes.DefaultCacheBehavior{TargetOriginId: aws.String("server"), ViewerProtocolPolicy: cftypes.ViewerProtocolPolicyRedirectToHttps,
			MinTTL: aws.Int64(0), ForwardedValues: &cftypes.ForwardedValues{QueryString: aws.Bool(true), Cookies: &cftypes.CookiePreference{Forward: cftypes.ItemSelectionAll}}},
	}})).ok(t)
	id := created.Distribution.Id
	advance(t)
	cfg := must(c.GetDistributionConfig(ctx, &cloudfront.GetDistributionConfigInput{Id: id})).ok(t)
	cfg.DistributionConfig.Origins.Items[0].DomainName = aws.String("dr-lb.eu-west-3.elb.amazonaws.com")
	_, err := c.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: id, IfMatch: aws.String("ESTALE"), DistributionConfig: cfg.DistributionConfig})
	wantCode(t, err, "PreconditionFailed")
	up := must(c.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: id, IfMatch: cfg.ETag, DistributionConfig: cfg.DistributionConfig})).ok(t)
	if aws.ToString(up.ETag) == aws.ToString(cfg.ETag) {
		t.Error("UpdateDistribution kept the ETag")
	}
	if s := aws.ToString(must(c.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: id})).ok(t).Distribution.Status); s != "InProgress" {
		t.Errorf("status after update %q, want InProgress", s)
	}
	_, err = c.UpdateDistribution(ctx, &cloudfront.UpdateDistributionInput{Id: id, IfMatch: cfg.ETag, DistributionConfig: cfg.DistributionConfig})
	wantCode(t, err, "PreconditionFailed")
	advance(t)
	got := must(c.GetDistribution(ctx, &cloudfront.GetDistributionInput{Id: id})).ok(t)
	if s := aws.ToString(got.Distribution.Status); s != "Deployed" {
		t.Errorf("status %q after the delay, want Deployed", s)
	}
	if o := aws.ToString(got.Distribution.DistributionConfig.Origins.Items[0].DomainName); o != "dr-lb.eu-west-3.elb.amazonaws.com" {
		t.Errorf("origin %s", o)
	}
}

// workers creates a launch template and an auto-scaling group of n instances.
func workers(t *testing.T, name string, n int32) *autoscaling.Client {
	t.Helper()
	return workersOn(t, shared, name, n)
}

// workersOn is workers on another emulator.
func workersOn(t *testing.T, em *emulator.Emulator, name string, n int32) *autoscaling.Client {
	t.Helper()
	ctx := context.Background()
	e := ec2.NewFromConfig(em.Config(primary))
	imgs := must(e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"amazon"},
		Filters: []ec2types.Filter{{Name: aws.String("name"), Values: []string{"amzn2-ami-hvm-*-x86_64-gp2"}}}})).ok(t)
	lt := must(e.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{
		LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &ec2types.RequestLaunchTemplateData{ImageId: imgs.Images[0].ImageId, InstanceType: ec2types.InstanceTypeT3Small},
	})).ok(t)
	a := autoscaling.NewFromConfig(em.Config(primary))
	must(a.CreateAutoScalingGroup(ctx, &autoscaling.CreateAutoScalingGroupInput{
		AutoScalingGroupName: aws.String(name), MinSize: aws.Int32(1), MaxSize: aws.Int32(n * 2), DesiredCapacity: aws.Int32(n),
		LaunchTemplate:    &astypes.LaunchTemplateSpecification{LaunchTemplateId: lt.LaunchTemplate.LaunchTemplateId, Version: aws.String("$Latest")},
		AvailabilityZones: []string{primary + "a"},
	})).ok(t)
	return a
}

func instances(t *testing.T, a *autoscaling.Client, name string) map[string]astypes.LifecycleState {
	t.Helper()
	out := must(a.DescribeAutoScalingGroups(context.Background(), &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})).ok(t)
	m := map[string]astypes.LifecycleState{}
	for _, i := range out.AutoScalingGroups[0].Instances {
		m[aws.ToString(i.InstanceId)] = i.LifecycleState
	}
	return m
}

func TestASGInstanceRefreshReplacesEveryInstance(t *testing.T) {
	ctx := context.Background()
	a := workers(t, "refresh-workers", 3)
	before := instances(t, a, "refresh-workers")
	if len(before) != 3 {
		t.Fatalf("group has %d instances, want 3", len(before))
	}
	id := must(a.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("refresh-workers")})).ok(t).InstanceRefreshId
	_, err := a.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{AutoScalingGroupName: aws.String("refresh-workers")})
	wantCode(t, err, "InstanceRefreshInProgress")
	refresh := func() astypes.InstanceRefresh {
		out := must(a.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String("refresh-workers"), InstanceRefreshIds: []string{aws.ToString(id)}})).ok(t)
		return out.InstanceRefreshes[0]
	}
	if r := refresh(); r.Status != astypes.InstanceRefreshStatusPending {
		t.Errorf("status %s at start, want Pending", r.Status)
	}
	// Half way: the first of three batches has been replaced, the refresh is in progress.
	if err := shared.Advance(ctx, long/2); err != nil {
		t.Fatal(err)
	}
	r := refresh()
	if r.Status != astypes.InstanceRefreshStatusInProgress || aws.ToInt32(r.PercentageComplete) == 0 || aws.ToInt32(r.PercentageComplete) == 100 {
		t.Errorf("half way: status %s, %d%% complete", r.Status, aws.ToInt32(r.PercentageComplete))
	}
	advance(t)
	r = refresh()
	if r.Status != astypes.InstanceRefreshStatusSuccessful || aws.ToInt32(r.PercentageComplete) != 100 || r.EndTime == nil {
		t.Errorf("at the end: status %s, %d%%, end %v", r.Status, aws.ToInt32(r.PercentageComplete), r.EndTime)
	}
	after := instances(t, a, "refresh-workers")
	if len(after) != 3 {
		t.Errorf("after refresh: %d instances, want 3", len(after))
	}
	for id, st := range after {
		if _, old := before[id]; old || st != astypes.LifecycleStateInService {
			t.Errorf("after refresh: instance %s old=%v state %s", id, old, st)
		}
	}
	// The old instances are terminated in EC2.
	e := ec2.NewFromConfig(shared.Config(primary))
	var ids []string
	for id := range before {
		ids = append(ids, id)
	}
	out := must(e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: ids})).ok(t)
	for _, res := range out.Reservations {
		for _, i := range res.Instances {
			if i.State.Name != ec2types.InstanceStateNameTerminated {
				t.Errorf("old instance %s is %s, want terminated", aws.ToString(i.InstanceId), i.State.Name)
			}
		}
	}
}

func TestASGTerminateInstanceIsReplacedAfterWarmup(t *testing.T) {
	ctx := context.Background()
	a := workers(t, "term-workers", 2)
	before := instances(t, a, "term-workers")
	var victim string
	for id := range before {
		victim = id
		break
	}
	must(a.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{InstanceId: aws.String(victim), ShouldDecrementDesiredCapacity: aws.Bool(false)})).ok(t)
	mid := instances(t, a, "term-workers")
	if mid[victim] != astypes.LifecycleStateTerminating || len(mid) != 3 {
		t.Errorf("just after terminate: %v, want the victim Terminating and a Pending replacement", mid)
	}
	advance(t)
	after := instances(t, a, "term-workers")
	if _, ok := after[victim]; ok || len(after) != 2 {
		t.Errorf("after warm-up: %v, want 2 instances without %s", after, victim)
	}
	for id, st := range after {
		if st != astypes.LifecycleStateInService {
			t.Errorf("instance %s is %s", id, st)
		}
	}
}

func TestS3ReplicationAndBatchReplicateJob(t *testing.T) {
	ctx := context.Background()
	accountID := aws.ToString(must(sts.NewFromConfig(shared.Config(primary)).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})).ok(t).Account)
	sp := s3.NewFromConfig(shared.Config(primary), func(o *s3.Options) { o.UsePathStyle = true })
	sd := s3.NewFromConfig(shared.Config(dr), func(o *s3.Options) { o.UsePathStyle = true })
	mk := func(c *s3.Client, name, region string) {
		must(c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}})).ok(t)
		must(c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name), VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}})).ok(t)
	}
	mk(sp, "batch-src", primary)
	mk(sd, "batch-dst", dr)
	mk(sp, "batch-reports", primary)
	for i := range 4 {
		must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("batch-src"), Key: aws.String(fmt.Sprintf("old/%d", i)), Body: strings.NewReader("state")})).ok(t)
	}
	must(sp.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{Bucket: aws.String("batch-src"), ReplicationConfiguration: &s3types.ReplicationConfiguration{
		Role: aws.String("arn:aws:iam::" + accountID + ":role/replication"),
		Rules: []s3types.ReplicationRule{{ID: aws.String("all"), Priority: aws.Int32(1), Status: s3types.ReplicationRuleStatusEnabled,
			Filter: &s3types.ReplicationRuleFilter{Prefix: aws.String("")}, DeleteMarkerReplication: &s3types.DeleteMarkerReplication{Status: s3types.DeleteMarkerReplicationStatusDisabled},
			Destination: &s3types.Destination{Bucket: aws.String("arn:aws:s3:::batch-dst")}}},
	}})).ok(t)
	must(sp.PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("batch-src"), Key: aws.String("new/0"), Body: strings.NewReader("state")})).ok(t)
	advance(t) // live replication is asynchronous
	keys := func(bucket string) []string {
		out := must(sd.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String(bucket)})).ok(t)
		var k []string
		for _, o := range out.Contents {
			k = append(k, aws.ToString(o.Key))
		}
		return k
	}
	if k := keys("batch-dst"); len(k) != 1 || k[0] != "new/0" {
		t.Fatalf("destination after the rule: %v, want only the new object", k)
	}

	sc := s3control.NewFromConfig(shared.Config(primary))
	in := &s3control.CreateJobInput{
		AccountId: aws.String(accountID), ConfirmationRequired: aws.Bool(false), Priority: aws.Int32(10),
		Operation:          &s3ctypes.JobOperation{S3ReplicateObject: &s3ctypes.S3ReplicateObjectOperation{}},
		RoleArn:            aws.String("arn:aws:iam::" + accountID + ":role/batch-operations"),
		ClientRequestToken: aws.String("replicate-batch-src"),
		Report: &s3ctypes.JobReport{Enabled: true, Bucket: aws.String("arn:aws:s3:::batch-reports"), Prefix: aws.String("reports"),
			Format: s3ctypes.JobReportFormatReportCsv20180820, ReportScope: s3ctypes.JobReportScopeAllTasks},
		ManifestGenerator: &s3ctypes.JobManifestGeneratorMemberS3JobManifestGenerator{Value: s3ctypes.S3JobManifestGenerator{
			SourceBucket: aws.String("arn:aws:s3:::batch-src"), EnableManifestOutput: false,
			Filter: &s3ctypes.JobManifestGeneratorFilter{EligibleForReplication: aws.Bool(true),
				ObjectReplicationStatuses: []s3ctypes.ReplicationStatus{s3ctypes.ReplicationStatusNone, s3ctypes.ReplicationStatusFailed}},
		}},
	}
	job := must(sc.CreateJob(ctx, in)).ok(t).JobId
	if again := must(sc.CreateJob(ctx, in)).ok(t).JobId; aws.ToString(again) != aws.ToString(job) {
		t.Errorf("CreateJob with the same ClientRequestToken made a second job %s", aws.ToString(again))
	}
	desc := must(sc.DescribeJob(ctx, &s3control.DescribeJobInput{AccountId: aws.String(accountID), JobId: job})).ok(t).Job
	// The four objects older than the rule: new/0 was replicated by the rule
	// (ReplicationStatus COMPLETED), which the NONE/FAILED filter leaves out.
	if desc.Status == s3ctypes.JobStatusComplete || aws.ToInt64(desc.ProgressSummary.TotalNumberOfTasks) != 4 {
		t.Errorf("new job: status %s, %d tasks, want not complete with 4 tasks", desc.Status, aws.ToInt64(desc.ProgressSummary.TotalNumberOfTasks))
	}
	advance(t)
	desc = must(sc.DescribeJob(ctx, &s3control.DescribeJobInput{AccountId: aws.String(accountID), JobId: job})).ok(t).Job
	if desc.Status != s3ctypes.JobStatusComplete || aws.ToInt64(desc.ProgressSummary.NumberOfTasksSucceeded) != 4 {
		t.Errorf("job at the end: status %s, %d succeeded", desc.Status, aws.ToInt64(desc.ProgressSummary.NumberOfTasksSucceeded))
	}
	if k := keys("batch-dst"); len(k) != 5 {
		t.Errorf("destination after the job: %v, want all 5 objects", k)
	}
	rep := must(sp.ListObjectsV2(ctx, &s3.ListObjectsV2Input{Bucket: aws.String("batch-reports"), Prefix: aws.String("reports/job-" + aws.ToString(job) + "/")})).ok(t)
	if len(rep.Contents) != 2 {
		t.Errorf("report objects: %d, want manifest.json and one results CSV", len(rep.Contents))
	}
	// A job in the other region cannot use this region's bucket.
	in.ClientRequestToken = aws.String("wrong-region")
	_, err := s3control.NewFromConfig(shared.Config(dr)).CreateJob(ctx, in)
	wantCode(t, err, "InvalidRequest")
}

// The SDK's own waiters, against real (short) time: what a runbook's "wait until
// stable / INSYNC / deployed" does.
func TestSDKWaitersAgainstRealTime(t *testing.T) {
	t.Parallel()
	e := emulator.StartForTest(t, emulator.Options{IgnoreExternal: true, Timing: emulator.Timing{
		emulator.ECSStabilize: 1, emulator.Route53InSync: 1, emulator.CloudFrontDeploy: 1,
	}})
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // a hang guard
	defer cancel()

	c := ecs.NewFromConfig(e.Config(dr))
	must(c.CreateCluster(ctx, &ecs.CreateClusterInput{ClusterName: aws.String("spacelift")})).ok(t)
	for _, name := range []string{"server", "drain", "scheduler"} {
		must(c.CreateService(ctx, &ecs.CreateServiceInput{Cluster: aws.String("spacelift"), ServiceName: aws.String(name), DesiredCount: aws.Int32(0)})).ok(t)
		must(c.UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("spacelift"), Service: aws.String(name), DesiredCount: aws.Int32(2)})).ok(t)
	}
	err := ecs.NewServicesStableWaiter(c, func(o *ecs.ServicesStableWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	}).Wait(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("spacelift"), Services: []string{"server", "drain", "scheduler"}}, time.Minute)
	if err != nil {
		t.Fatalf("services-stable waiter: %v", err)
	}
	out := must(c.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String("spacelift"), Services: []string{"server", "drain", "scheduler"}})).ok(t)
	for _, s := range out.Services {
		if s.RunningCount != 2 {
			t.Errorf("%s: running %d after the waiter, want 2", aws.ToString(s.ServiceName), s.RunningCount)
		}
	}

	r := route53.NewFromConfig(e.Config(primary))
	zone := must(r.CreateHostedZone(ctx, &route53.CreateHostedZoneInput{Name: aws.String("spacelift.example.com"), CallerReference: aws.String("w")})).ok(t)
	ch := must(r.ChangeResourceRecordSets(ctx, &route53.ChangeResourceRecordSetsInput{HostedZoneId: zone.HostedZone.Id, ChangeBatch: &r53types.ChangeBatch{
		Changes: []r53types.Change{{Action: r53types.ChangeActionUpsert, ResourceRecordSet: &r53types.ResourceRecordSet{
			Name: aws.String("spacelift.example.com"), Type: r53types.RRTypeA,
			AliasTarget: &r53types.AliasTarget{DNSName: aws.String("dr-lb.eu-west-3.elb.amazonaws.com"), HostedZoneId: aws.String("Z3Q77PNBQS71R4"), EvaluateTargetHealth: true},
		}}}}})).ok(t)
	err = route53.NewResourceRecordSetsChangedWaiter(r, func(o *route53.ResourceRecordSetsChangedWaiterOptions) {
		o.MinDelay, o.MaxDelay = 200*time.Millisecond, time.Second
	}).Wait(ctx, &route53.GetChangeInput{Id: ch.ChangeInfo.Id}, time.Minute)
	if err != nil {
		t.Fatalf("resource-record-sets-changed waiter: %v", err)
	}
}
