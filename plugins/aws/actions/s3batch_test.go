package actions

import (
	"context"
	"sort"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// seedObjects puts objects into a bucket (before or without replication
// rules, so they are not replicated).
func seedObjects(t *testing.T, env *awstest.Env, region, bucket string, keys ...string) {
	t.Helper()
	c := s3Client(t, env, region)
	for _, k := range keys {
		if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(k), Body: strings.NewReader("state of " + k)}); err != nil {
			t.Fatal(err)
		}
	}
}

func listKeys(t *testing.T, env *awstest.Env, region, bucket, prefix string) []string {
	t.Helper()
	out, err := s3Client(t, env, region).ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	var keys []string
	for _, o := range out.Contents {
		keys = append(keys, aws.ToString(o.Key))
	}
	sort.Strings(keys)
	return keys
}

// jobCount counts the jobs in region whose description names one of the
// buckets (other tests share the emulator).
func jobCount(t *testing.T, env *awstest.Env, region string, buckets ...string) int {
	t.Helper()
	cfg := env.Config(t, region)
	id, err := sts.NewFromConfig(cfg).GetCallerIdentity(context.Background(), &sts.GetCallerIdentityInput{})
	if err != nil {
		t.Fatal(err)
	}
	out, err := s3control.NewFromConfig(cfg).ListJobs(context.Background(), &s3control.ListJobsInput{AccountId: id.Account})
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, j := range out.Jobs {
		for _, b := range buckets {
			if strings.HasSuffix(aws.ToString(j.Description), " "+b) {
				n++
			}
		}
	}
	return n
}

func TestS3BatchReplicate(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	ctx := tctx(t)
	states, statesDR := bucketFor(t, "states", primaryRegion), bucketFor(t, "states", drRegion)
	logs, logsDR := bucketFor(t, "run_logs", primaryRegion), bucketFor(t, "run_logs", drRegion)
	reports := awstest.Name(t, "reports")
	for _, b := range []struct{ region, name string }{{primaryRegion, states}, {drRegion, statesDR}, {primaryRegion, logs}, {drRegion, logsDR}, {primaryRegion, reports}} {
		createBucket(t, env, b.region, b.name, true)
	}
	// Objects from before replication was set up.
	seedObjects(t, env, primaryRegion, states, "stack-a/terraform.tfstate", "stack-b/terraform.tfstate")
	seedObjects(t, env, primaryRegion, logs, "run-1.log")
	replicate(t, env, primaryRegion, states, statesDR)
	replicate(t, env, primaryRegion, logs, logsDR)

	before := jobCount(t, env, primaryRegion, states, logs)
	call := plugin.ApplyCall{RunID: "run-1", StepID: "s3backfill", Action: "s3_batch_replicate", Attempt: 1, IdempotencyKey: "run-1/s3backfill",
		Params: env.Params(primaryRegion, map[string]any{
			"buckets": []any{"arn:aws:s3:::" + states, logs}, "role_arn": "arn:aws:iam::123456789012:role/s3-batch-replication",
			"report_bucket": reports, "report_prefix": "batch", "poll_interval": "100ms",
		})}
	out, err := c.ApplyCall(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	jobs := out["jobs"].([]any)
	if len(jobs) != 2 || out["ok"] != true || out["account_id"] == "" {
		t.Fatalf("outputs = %v", out)
	}
	for i, want := range []struct {
		bucket string
		tasks  float64
	}{{states, 2}, {logs, 1}} {
		j := jobs[i].(map[string]any)
		if j["bucket"] != want.bucket || j["status"] != "Complete" || j["tasks_succeeded"] != want.tasks || j["tasks_failed"] != 0.0 || j["job_id"] == "" || j["report"] != "s3://"+reports+"/batch" {
			t.Fatalf("job %d = %v", i, j)
		}
	}
	if got := listKeys(t, env, drRegion, statesDR, ""); strings.Join(got, ",") != "stack-a/terraform.tfstate,stack-b/terraform.tfstate" {
		t.Fatalf("DR states bucket holds %v", got)
	}
	if got := listKeys(t, env, drRegion, logsDR, ""); len(got) != 1 {
		t.Fatalf("DR run-logs bucket holds %v", got)
	}
	if got := listKeys(t, env, primaryRegion, reports, "batch/"); len(got) == 0 {
		t.Fatal("no completion report was written")
	}
	if !hasMessage(progressMessages(c), "replicate job created") || !hasMessage(progressMessages(c), "Complete") {
		t.Fatalf("progress = %v", progressMessages(c))
	}

	// The same step again (a resume): the same jobs, none created.
	again, err := c.ApplyCall(ctx, call)
	if err != nil {
		t.Fatal(err)
	}
	for i := range jobs {
		if again["jobs"].([]any)[i].(map[string]any)["job_id"] != jobs[i].(map[string]any)["job_id"] {
			t.Fatalf("re-run made new jobs: %v then %v", jobs, again["jobs"])
		}
	}
	if n := jobCount(t, env, primaryRegion, states, logs) - before; n != 2 {
		t.Fatalf("%d jobs created, want 2", n)
	}
}

func TestS3BatchReplicateFailsNamingTheBucket(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	ok, okDR := bucketFor(t, "modules", primaryRegion), bucketFor(t, "modules", drRegion)
	bare := bucketFor(t, "workspaces", primaryRegion)
	createBucket(t, env, primaryRegion, ok, true)
	createBucket(t, env, drRegion, okDR, true)
	createBucket(t, env, primaryRegion, bare, true)
	seedObjects(t, env, primaryRegion, ok, "m1")
	seedObjects(t, env, primaryRegion, bare, "w1")
	replicate(t, env, primaryRegion, ok, okDR)
	params := env.Params(primaryRegion, map[string]any{"buckets": []any{ok, bare}, "role_arn": "arn:aws:iam::123456789012:role/r", "poll_interval": "100ms"})

	plan, err := c.PlanParams(tctx(t), "s3_batch_replicate", params)
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 2 || len(plan.Diagnostics) != 1 || plan.Diagnostics[0].Path != "/buckets/1" || !strings.Contains(plan.Changes[0].After.(string), okDR) {
		t.Fatalf("plan = %+v", plan)
	}
	if got := listKeys(t, env, drRegion, okDR, ""); len(got) != 0 {
		t.Fatalf("plan replicated objects: %v", got)
	}

	_, err = c.Apply(tctx(t), "s3_batch_replicate", params)
	pe := wantFatal(t, err, "1 of 2 replicate job(s)", bare+" (job ", "Failed")
	if pe.Code != "ReplicationJobsFailed" || strings.Contains(pe.Message, ok+" (job") {
		t.Fatalf("err = %+v", pe)
	}
	if got := listKeys(t, env, drRegion, okDR, ""); len(got) != 1 {
		t.Fatalf("the healthy bucket's job did not replicate: %v", got)
	}
	diags, err := c.Validate(tctx(t), "s3_batch_replicate", map[string]any{"region": primaryRegion, "buckets": []any{"a", "a"}, "role_arn": "r",
		"manifests": map[string]any{"b": map[string]any{"object_arn": "arn:aws:s3:::m/x.csv", "etag": "e"}}}, nil)
	if err != nil || len(diags) != 2 {
		t.Fatalf("diags = %+v, %v", diags, err)
	}
}
