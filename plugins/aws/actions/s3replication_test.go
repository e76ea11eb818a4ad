package actions

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
)

// bucketFor names the test's bucket of a kind in a region.
func bucketFor(t *testing.T, kind, region string) string {
	return awstest.Name(t, "sl-"+strings.ReplaceAll(kind, "_", "-")+"-"+region)
}

func s3Client(t *testing.T, env *awstest.Env, region string) *s3.Client {
	return s3.NewFromConfig(env.Config(t, region), func(o *s3.Options) { o.UsePathStyle = true })
}

func createBucket(t *testing.T, env *awstest.Env, region, name string, versioned bool) {
	t.Helper()
	c := s3Client(t, env, region)
	ctx := context.Background()
	if _, err := c.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(name), CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(region)}}); err != nil {
		t.Fatal(err)
	}
	if versioned {
		if _, err := c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(name), VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusEnabled}}); err != nil {
			t.Fatal(err)
		}
	}
}

func replicate(t *testing.T, env *awstest.Env, region, from, to string) {
	t.Helper()
	_, err := s3Client(t, env, region).PutBucketReplication(context.Background(), &s3.PutBucketReplicationInput{
		Bucket: aws.String(from),
		ReplicationConfiguration: &s3types.ReplicationConfiguration{
			Role: aws.String("arn:aws:iam::123456789012:role/s3-replication"),
			Rules: []s3types.ReplicationRule{{
				ID: aws.String("all"), Status: s3types.ReplicationRuleStatusEnabled, Priority: aws.Int32(1),
				Filter:                  &s3types.ReplicationRuleFilter{Prefix: aws.String("")},
				DeleteMarkerReplication: &s3types.DeleteMarkerReplication{Status: s3types.DeleteMarkerReplicationStatusEnabled},
				Destination:             &s3types.Destination{Bucket: aws.String("arn:aws:s3:::" + to)},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// seedReplicatedBuckets builds the five buckets in both regions, versioned
// and replicating both ways, and returns the two installer config blocks:
// each config names the other region's buckets (its replicas).
func seedReplicatedBuckets(t *testing.T, env *awstest.Env) (primaryCfg, drCfg map[string]any) {
	t.Helper()
	primaryCfg = map[string]any{"enabled": true, "replica_kms_key_arn": "arn:aws:kms:eu-west-3:123456789012:key/mrk-1"}
	drCfg = map[string]any{"enabled": true, "replica_kms_key_arn": "arn:aws:kms:eu-west-1:123456789012:key/mrk-1"}
	for _, kind := range bucketKinds {
		p, d := bucketFor(t, kind, primaryRegion), bucketFor(t, kind, drRegion)
		createBucket(t, env, primaryRegion, p, true)
		createBucket(t, env, drRegion, d, true)
		replicate(t, env, primaryRegion, p, d)
		replicate(t, env, drRegion, d, p)
		primaryCfg[kind+"_bucket_arn"] = "arn:aws:s3:::" + d
		drCfg[kind+"_bucket_arn"] = d // names work as well as ARNs
	}
	return primaryCfg, drCfg
}

func TestS3ReplicationCheckHealthy(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	primaryCfg, drCfg := seedReplicatedBuckets(t, env)
	drCfg = map[string]any{}
	for _, kind := range bucketKinds {
		drCfg[kind+"_bucket_arn"] = "arn:aws:s3:::" + bucketFor(t, kind, primaryRegion)
	}
	out, err := c.Apply(tctx(t), "s3_replication_check", env.Params(primaryRegion, map[string]any{
		"replica_region": drRegion, "buckets": primaryCfg, "replica_buckets": drCfg,
	}))
	if err != nil {
		t.Fatal(err)
	}
	if out["ok"] != true || len(out["problems"].([]any)) != 0 {
		t.Fatalf("outputs = %v", out)
	}
	reports := out["buckets"].([]any)
	if len(reports) != 10 {
		t.Fatalf("%d reports", len(reports))
	}
	first := reports[0].(map[string]any)
	if first["kind"] != "states" || first["region"] != drRegion || first["versioning"] != "Enabled" || first["replication_enabled"] != true || first["ok"] != true {
		t.Fatalf("report = %v", first)
	}
	if fmt.Sprint(first["destinations"]) != "[arn:aws:s3:::"+bucketFor(t, "states", primaryRegion)+"]" {
		t.Fatalf("destinations = %v", first["destinations"])
	}
}

func TestS3ReplicationCheckListsEveryBadBucket(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	primaryCfg, _ := seedReplicatedBuckets(t, env)
	drCfg := map[string]any{}
	for _, kind := range bucketKinds {
		drCfg[kind+"_bucket_arn"] = bucketFor(t, kind, primaryRegion)
	}
	ctx := context.Background()
	// modules (primary): versioning suspended; workspaces (DR): replicating
	// to the wrong bucket; policy_inputs: the DR side does not exist.
	if _, err := s3Client(t, env, primaryRegion).PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: aws.String(bucketFor(t, "modules", primaryRegion)), VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusSuspended}}); err != nil {
		t.Fatal(err)
	}
	elsewhere := awstest.Name(t, "elsewhere")
	createBucket(t, env, primaryRegion, elsewhere, true)
	replicate(t, env, drRegion, bucketFor(t, "workspaces", drRegion), elsewhere)
	primaryCfg["policy_inputs_bucket_arn"] = "arn:aws:s3:::" + awstest.Name(t, "no-such-bucket")

	params := env.Params(primaryRegion, map[string]any{"replica_region": drRegion, "buckets": primaryCfg, "replica_buckets": drCfg})
	_, err := c.Apply(tctx(t), "s3_replication_check", params)
	pe := wantFatal(t, err,
		"modules bucket "+bucketFor(t, "modules", primaryRegion)+" (eu-west-1): versioning is Suspended",
		"workspaces bucket "+bucketFor(t, "workspaces", drRegion)+" (eu-west-3): replicates to arn:aws:s3:::"+elsewhere+", not to arn:aws:s3:::"+bucketFor(t, "workspaces", primaryRegion),
		"policy_inputs bucket "+awstest.Name(t, "no-such-bucket")+" (region unknown): bucket does not exist",
		"policy_inputs bucket "+bucketFor(t, "policy_inputs", primaryRegion)+" (eu-west-1): replicates to",
	)
	if pe.Code != "ReplicationProblems" {
		t.Fatalf("code = %q", pe.Code)
	}

	params["fail_on_problem"] = false
	out, err := c.Apply(tctx(t), "s3_replication_check", params)
	if err != nil {
		t.Fatal(err)
	}
	if out["ok"] != false || len(out["problems"].([]any)) != 4 {
		t.Fatalf("problems = %v", out["problems"])
	}
	bad := 0
	for _, r := range out["buckets"].([]any) {
		if r.(map[string]any)["ok"] == false {
			bad++
		}
	}
	if bad != 4 {
		t.Fatalf("%d bad buckets reported", bad)
	}
}

func TestS3ReplicationCheckDisabledConfigAndPlan(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	primaryCfg, drCfg := seedReplicatedBuckets(t, env)
	drCfg = map[string]any{"enabled": false}
	for _, kind := range bucketKinds {
		drCfg[kind+"_bucket_arn"] = bucketFor(t, kind, primaryRegion)
	}
	params := env.Params(primaryRegion, map[string]any{"replica_region": drRegion, "buckets": primaryCfg, "replica_buckets": drCfg})
	plan, err := c.PlanParams(tctx(t), "s3_replication_check", params)
	if err != nil || len(plan.Changes) != 0 || !strings.Contains(plan.Summary, "read-only") {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}
	_, err = c.Apply(tctx(t), "s3_replication_check", params)
	wantFatal(t, err, "replica_buckets: the installer config has s3_bucket_replication.enabled: false")
}
