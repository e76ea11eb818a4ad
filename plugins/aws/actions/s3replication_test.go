package actions

import (
	"context"
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
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

// replicationRole creates the test's IAM role for S3 replication and returns its ARN.
func replicationRole(t *testing.T, env *awstest.Env) string {
	t.Helper()
	name := awstest.Name(t, "s3-replication")
	out, err := iam.NewFromConfig(env.Config(t, primaryRegion)).CreateRole(context.Background(), &iam.CreateRoleInput{
		RoleName:                 aws.String(name),
		AssumeRolePolicyDocument: aws.String(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":"s3.amazonaws.com"},"Action":"sts:AssumeRole"}]}`),
	})
	if err != nil {
		if awscommon.IsCode(err, "EntityAlreadyExists") {
			return "arn:aws:iam::123456789012:role/" + name
		}
		t.Fatal(err)
	}
	return aws.ToString(out.Role.Arn)
}

// wholeBucketRule replicates everything of a bucket to another.
func wholeBucketRule(to string) s3types.ReplicationRule {
	return s3types.ReplicationRule{
		ID: aws.String("all"), Status: s3types.ReplicationRuleStatusEnabled, Priority: aws.Int32(1),
		Filter:                  &s3types.ReplicationRuleFilter{Prefix: aws.String("")},
		DeleteMarkerReplication: &s3types.DeleteMarkerReplication{Status: s3types.DeleteMarkerReplicationStatusEnabled},
		Destination:             &s3types.Destination{Bucket: aws.String("arn:aws:s3:::" + to)},
	}
}

func replicate(t *testing.T, env *awstest.Env, region, from, to string) {
	t.Helper()
	putRules(t, env, region, from, replicationRole(t, env), wholeBucketRule(to))
}

func putRules(t *testing.T, env *awstest.Env, region, bucket, role string, rules ...s3types.ReplicationRule) {
	t.Helper()
	_, err := s3Client(t, env, region).PutBucketReplication(context.Background(), &s3.PutBucketReplicationInput{
		Bucket:                   aws.String(bucket),
		ReplicationConfiguration: &s3types.ReplicationConfiguration{Role: aws.String(role), Rules: rules},
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
		// The suspended bucket is also the DR modules bucket's destination.
		"modules bucket "+bucketFor(t, "modules", drRegion)+" (eu-west-3): replicates to "+bucketFor(t, "modules", primaryRegion)+", whose versioning is Suspended",
	)
	if pe.Code != "ReplicationProblems" {
		t.Fatalf("code = %q", pe.Code)
	}

	params["fail_on_problem"] = false
	out, err := c.Apply(tctx(t), "s3_replication_check", params)
	if err != nil {
		t.Fatal(err)
	}
	if out["ok"] != false || len(out["problems"].([]any)) != 5 {
		t.Fatalf("problems = %v", out["problems"])
	}
	bad := 0
	for _, r := range out["buckets"].([]any) {
		if r.(map[string]any)["ok"] == false {
			bad++
		}
	}
	if bad != 5 {
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

func kmsEncrypt(t *testing.T, env *awstest.Env, region, bucket string) {
	t.Helper()
	_, err := s3Client(t, env, region).PutBucketEncryption(context.Background(), &s3.PutBucketEncryptionInput{Bucket: aws.String(bucket),
		ServerSideEncryptionConfiguration: &s3types.ServerSideEncryptionConfiguration{Rules: []s3types.ServerSideEncryptionRule{{
			ApplyServerSideEncryptionByDefault: &s3types.ServerSideEncryptionByDefault{SSEAlgorithm: s3types.ServerSideEncryptionAwsKms,
				KMSMasterKeyID: aws.String("arn:aws:kms:" + region + ":123456789012:key/mrk-1")}}}}})
	if err != nil {
		t.Fatal(err)
	}
}

// kmsRule replicates SSE-KMS objects too, encrypting replicas with key.
func kmsRule(to, key string) s3types.ReplicationRule {
	r := wholeBucketRule(to)
	r.SourceSelectionCriteria = &s3types.SourceSelectionCriteria{SseKmsEncryptedObjects: &s3types.SseKmsEncryptedObjects{Status: s3types.SseKmsEncryptedObjectsStatusEnabled}}
	r.Destination.EncryptionConfiguration = &s3types.EncryptionConfiguration{ReplicaKmsKeyID: aws.String(key)}
	return r
}

// Pre-flight refuses what S3 would not replicate: a rule that covers part of a
// bucket, an SSE-KMS bucket whose rule does not select KMS-encrypted objects or
// names a replica key outside the destination's region, a role that is gone.
func TestS3ReplicationCheckRulesAsS3ReplicatesThem(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	primaryCfg, drCfg := seedReplicatedBuckets(t, env)
	drCfg = map[string]any{}
	for _, kind := range bucketKinds {
		drCfg[kind+"_bucket_arn"] = bucketFor(t, kind, primaryRegion)
	}
	role := replicationRole(t, env)
	p, d := func(kind string) string { return bucketFor(t, kind, primaryRegion) }, func(kind string) string { return bucketFor(t, kind, drRegion) }
	drKey := "arn:aws:kms:eu-west-3:123456789012:key/mrk-1"
	// states: SSE-KMS, and the rule selects KMS objects with a DR key: fine.
	kmsEncrypt(t, env, primaryRegion, p("states"))
	putRules(t, env, primaryRegion, p("states"), role, kmsRule(d("states"), drKey))
	// run_logs: SSE-KMS, the rule does not select KMS-encrypted objects.
	kmsEncrypt(t, env, primaryRegion, p("run_logs"))
	// modules: SSE-KMS, the replica key is the primary region's.
	kmsEncrypt(t, env, primaryRegion, p("modules"))
	putRules(t, env, primaryRegion, p("modules"), role, kmsRule(d("modules"), "arn:aws:kms:eu-west-1:123456789012:key/mrk-1"))
	// policy_inputs: a prefix filter.
	partial := wholeBucketRule(d("policy_inputs"))
	partial.Filter = &s3types.ReplicationRuleFilter{And: &s3types.ReplicationRuleAndOperator{Prefix: aws.String("inputs/"), Tags: []s3types.Tag{{Key: aws.String("dr"), Value: aws.String("yes")}}}}
	putRules(t, env, primaryRegion, p("policy_inputs"), role, partial)
	// workspaces (DR side): a role that does not exist.
	putRules(t, env, drRegion, d("workspaces"), "arn:aws:iam::123456789012:role/"+awstest.Name(t, "gone"), wholeBucketRule(p("workspaces")))

	params := env.Params(primaryRegion, map[string]any{"replica_region": drRegion, "buckets": primaryCfg, "replica_buckets": drCfg, "fail_on_problem": false})
	out, err := c.Apply(tctx(t), "s3_replication_check", params)
	if err != nil {
		t.Fatal(err)
	}
	reports := map[string]map[string]any{}
	for _, r := range out["buckets"].([]any) {
		rep := r.(map[string]any)
		reports[rep["bucket"].(string)] = rep
	}
	if r := reports[p("states")]; r["ok"] != true || r["encryption"] != "aws:kms" || r["kms_selected"] != true || r["replica_kms_key"] != drKey ||
		r["scope"] != "whole bucket" || r["role"] != role || r["role_verified"] != "exists" {
		t.Errorf("states report %v", r)
	}
	params["fail_on_problem"] = true
	_, err = c.Apply(tctx(t), "s3_replication_check", params)
	wantFatal(t, err,
		"run_logs bucket "+p("run_logs")+" (eu-west-1): its default encryption is aws:kms, so replication rule \"all\" must select KMS-encrypted objects (SourceSelectionCriteria.SseKmsEncryptedObjects.Status: Enabled)",
		"run_logs bucket "+p("run_logs")+" (eu-west-1): its default encryption is aws:kms, so replication rule \"all\" must name a replica KMS key in eu-west-3 (Destination.EncryptionConfiguration.ReplicaKmsKeyID)",
		"modules bucket "+p("modules")+" (eu-west-1): its default encryption is aws:kms, so replication rule \"all\" encrypts replicas with KMS key arn:aws:kms:eu-west-1:123456789012:key/mrk-1, in eu-west-1, not in the destination's region eu-west-3",
		"policy_inputs bucket "+p("policy_inputs")+" (eu-west-1): replication rule \"all\" covers only part of the bucket (prefix \"inputs/\", tags dr=yes)",
		"workspaces bucket "+d("workspaces")+" (eu-west-3): replication role arn:aws:iam::123456789012:role/"+awstest.Name(t, "gone")+" does not exist",
	)
	if n := len(out["problems"].([]any)); n != 5 {
		t.Errorf("%d problems, want 5: %v", n, out["problems"])
	}
}
