package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3control"
	s3ctypes "github.com/aws/aws-sdk-go-v2/service/s3control/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

type batchManifest struct {
	ObjectARN string   `json:"object_arn" required:"true" doc:"ARN of the manifest object (arn:aws:s3:::bucket/key)."`
	ETag      string   `json:"etag" required:"true" doc:"The manifest object's ETag."`
	Format    string   `json:"format" default:"S3BatchOperations_CSV_20180820" enum:"S3BatchOperations_CSV_20180820,S3InventoryReport_CSV_20161130"`
	Fields    []string `json:"fields" doc:"CSV columns; default [Bucket, Key]."`
}

type s3BatchReplicateParams struct {
	awscommon.Params
	Buckets             []string                 `json:"buckets" required:"true" min:"1" doc:"Source buckets (names or ARNs) in region: one replicate job each, to the destinations of the bucket's own replication rules."`
	RoleARN             string                   `json:"role_arn" required:"true" doc:"IAM role S3 Batch Operations assumes to replicate."`
	AccountID           string                   `json:"account_id" doc:"Account that owns the jobs and buckets; default: the caller's (STS GetCallerIdentity)."`
	Manifests           map[string]batchManifest `json:"manifests" doc:"Per bucket (as listed in buckets), a manifest to use instead of generating one from the bucket's replication configuration."`
	ReplicationStatuses []string                 `json:"replication_statuses" doc:"Generated manifests: which objects to replicate, by replication status; default NONE and FAILED (never replicated, or failed)."`
	ReportBucket        string                   `json:"report_bucket" doc:"Bucket (name or ARN) for completion reports; none when empty."`
	ReportPrefix        string                   `json:"report_prefix" doc:"Key prefix of the completion reports."`
	ReportScope         string                   `json:"report_scope" default:"AllTasks" enum:"AllTasks,FailedTasksOnly"`
	Priority            int                      `json:"priority" default:"10" min:"0"`
	Wait                bool                     `json:"wait" default:"true" doc:"Wait for every job to complete."`
	PollInterval        time.Duration            `json:"poll_interval" default:"2s" doc:"How often to read the jobs while waiting."`
}

type batchJobResult struct {
	Bucket         string   `json:"bucket"`
	JobID          string   `json:"job_id"`
	Status         string   `json:"status"`
	TasksTotal     int64    `json:"tasks_total"`
	TasksSucceeded int64    `json:"tasks_succeeded"`
	TasksFailed    int64    `json:"tasks_failed"`
	FailureReasons []string `json:"failure_reasons"`
	Report         string   `json:"report" doc:"Where the completion report goes (s3://bucket/prefix), or empty."`
}

type s3BatchReplicateOutputs struct {
	Jobs      []batchJobResult `json:"jobs" doc:"One result per bucket, in the order given."`
	AccountID string           `json:"account_id"`
	OK        bool             `json:"ok" doc:"Every job completed without a failed task."`
	Duration  time.Duration    `json:"duration"`
}

func validateS3Batch(req plugin.ValidateRequest[s3BatchReplicateParams]) []plugin.Diagnostic {
	p := req.Params
	var diags []plugin.Diagnostic
	if req.Unknown("/buckets") {
		return nil
	}
	listed := map[string]bool{}
	for i, b := range p.Buckets {
		if listed[b] {
			diags = append(diags, plugin.Errorf(fmt.Sprintf("/buckets/%d", i), "bucket %s is listed twice", b))
		}
		listed[b] = true
	}
	for b := range p.Manifests {
		if !listed[b] {
			diags = append(diags, plugin.Errorf("/manifests/"+b, "manifest for %s, which is not in buckets", b))
		}
	}
	for i, s := range p.ReplicationStatuses {
		switch s3ctypes.ReplicationStatus(s) {
		case s3ctypes.ReplicationStatusNone, s3ctypes.ReplicationStatusFailed, s3ctypes.ReplicationStatusCompleted, s3ctypes.ReplicationStatusReplica:
		default:
			diags = append(diags, plugin.Errorf(fmt.Sprintf("/replication_statuses/%d", i), "%q is not a replication status (NONE, FAILED, COMPLETED, REPLICA)", s))
		}
	}
	return diags
}

// batchToken is the job's ClientRequestToken: the step's idempotency key
// and the bucket, so a re-run of the same step gets the same job back
// instead of starting a second one.
func batchToken(key, region, bucket string) string {
	h := sha256.Sum256([]byte(key + "\x00" + region + "\x00" + bucket))
	return hex.EncodeToString(h[:])
}

func callerAccount(ctx context.Context, cfg aws.Config) (string, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", awscommon.Classify(err, "reading the account id (STS GetCallerIdentity)")
	}
	return aws.ToString(out.Account), nil
}

func (p s3BatchReplicateParams) jobInput(account, key, bucket string) *s3control.CreateJobInput {
	name := bucketName(bucket)
	in := &s3control.CreateJobInput{
		AccountId:            aws.String(account),
		ClientRequestToken:   aws.String(batchToken(key, p.Region, name)),
		ConfirmationRequired: aws.Bool(false),
		Description:          aws.String("runbook: replicate existing objects of " + name),
		Operation:            &s3ctypes.JobOperation{S3ReplicateObject: &s3ctypes.S3ReplicateObjectOperation{}},
		Priority:             aws.Int32(int32(p.Priority)),
		RoleArn:              aws.String(p.RoleARN),
		Report:               &s3ctypes.JobReport{Enabled: false},
	}
	if p.ReportBucket != "" {
		in.Report = &s3ctypes.JobReport{
			Enabled: true, Bucket: aws.String("arn:aws:s3:::" + bucketName(p.ReportBucket)),
			Format: s3ctypes.JobReportFormatReportCsv20180820, ReportScope: s3ctypes.JobReportScope(p.ReportScope),
		}
		if p.ReportPrefix != "" {
			in.Report.Prefix = aws.String(p.ReportPrefix)
		}
	}
	if m, ok := p.Manifests[bucket]; ok {
		fields := m.Fields
		if len(fields) == 0 {
			fields = []string{"Bucket", "Key"}
		}
		spec := &s3ctypes.JobManifestSpec{Format: s3ctypes.JobManifestFormat(m.Format)}
		for _, f := range fields {
			spec.Fields = append(spec.Fields, s3ctypes.JobManifestFieldName(f))
		}
		in.Manifest = &s3ctypes.JobManifest{Spec: spec, Location: &s3ctypes.JobManifestLocation{ObjectArn: aws.String(m.ObjectARN), ETag: aws.String(m.ETag)}}
		return in
	}
	statuses := p.ReplicationStatuses
	if len(statuses) == 0 {
		statuses = []string{"NONE", "FAILED"}
	}
	filter := &s3ctypes.JobManifestGeneratorFilter{EligibleForReplication: aws.Bool(true)}
	for _, s := range statuses {
		filter.ObjectReplicationStatuses = append(filter.ObjectReplicationStatuses, s3ctypes.ReplicationStatus(s))
	}
	in.ManifestGenerator = &s3ctypes.JobManifestGeneratorMemberS3JobManifestGenerator{Value: s3ctypes.S3JobManifestGenerator{
		SourceBucket: aws.String("arn:aws:s3:::" + name), ExpectedBucketOwner: aws.String(account),
		EnableManifestOutput: false, Filter: filter,
	}}
	return in
}

func describeBatchJob(ctx context.Context, c *s3control.Client, account, id string) (batchJobResult, error) {
	out, err := c.DescribeJob(ctx, &s3control.DescribeJobInput{AccountId: aws.String(account), JobId: aws.String(id)})
	if err != nil {
		return batchJobResult{}, awscommon.Classify(err, "reading S3 Batch Operations job %s", id)
	}
	j := out.Job
	r := batchJobResult{JobID: id, Status: string(j.Status), FailureReasons: []string{}}
	if ps := j.ProgressSummary; ps != nil {
		r.TasksTotal, r.TasksSucceeded, r.TasksFailed = aws.ToInt64(ps.TotalNumberOfTasks), aws.ToInt64(ps.NumberOfTasksSucceeded), aws.ToInt64(ps.NumberOfTasksFailed)
	}
	for _, f := range j.FailureReasons {
		r.FailureReasons = append(r.FailureReasons, strings.TrimSpace(aws.ToString(f.FailureCode)+": "+aws.ToString(f.FailureReason)))
	}
	return r, nil
}

func batchDone(status string) bool {
	switch s3ctypes.JobStatus(status) {
	case s3ctypes.JobStatusComplete, s3ctypes.JobStatusFailed, s3ctypes.JobStatusCancelled:
		return true
	}
	return false
}

func s3BatchReplicate() plugin.Action {
	return plugin.NewAction("s3_batch_replicate", func(ctx context.Context, req plugin.Request[s3BatchReplicateParams]) (s3BatchReplicateOutputs, error) {
		start := time.Now()
		p := req.Params
		cfg, err := p.Conn().Config(ctx)
		if err != nil {
			return s3BatchReplicateOutputs{}, err
		}
		account := p.AccountID
		if account == "" {
			if account, err = callerAccount(ctx, cfg); err != nil {
				return s3BatchReplicateOutputs{}, err
			}
		}
		key := req.IdempotencyKey
		if key == "" {
			// Without a key from the host the tokens still dedupe retries
			// within this call, not across runs.
			key = fmt.Sprintf("%s/%s/%d", req.RunID, req.StepID, time.Now().UnixNano())
		}
		c := s3control.NewFromConfig(cfg)
		out := s3BatchReplicateOutputs{AccountID: account, Jobs: []batchJobResult{}}
		for _, b := range p.Buckets {
			in := p.jobInput(account, key, b)
			res, err := c.CreateJob(ctx, in)
			if err != nil {
				return s3BatchReplicateOutputs{}, awscommon.Classify(err, "creating the replicate job for bucket %s in %s (jobs created so far: %v)", bucketName(b), p.Region, out.Jobs)
			}
			r := batchJobResult{Bucket: bucketName(b), JobID: aws.ToString(res.JobId), Status: "New", FailureReasons: []string{}}
			if in.Report.Enabled {
				r.Report = "s3://" + bucketName(p.ReportBucket) + "/" + strings.TrimPrefix(p.ReportPrefix, "/")
			}
			req.Progress("replicate job created", "bucket", r.Bucket, "job_id", r.JobID)
			out.Jobs = append(out.Jobs, r)
		}
		if !p.Wait {
			out.OK, out.Duration = true, time.Since(start)
			return out, nil
		}
		seen := awscommon.Changes{}
		err = awscommon.Poll(ctx, p.PollInterval, fmt.Sprintf("%d S3 Batch Operations job(s) in %s", len(out.Jobs), p.Region), func(ctx context.Context) (bool, error) {
			all := true
			for i := range out.Jobs {
				j := &out.Jobs[i]
				if batchDone(j.Status) {
					continue
				}
				d, err := describeBatchJob(ctx, c, account, j.JobID)
				if err != nil {
					return false, err
				}
				j.Status, j.TasksTotal, j.TasksSucceeded, j.TasksFailed, j.FailureReasons = d.Status, d.TasksTotal, d.TasksSucceeded, d.TasksFailed, d.FailureReasons
				state := fmt.Sprintf("%s, %d/%d tasks succeeded, %d failed", j.Status, j.TasksSucceeded, j.TasksTotal, j.TasksFailed)
				if seen.Changed(j.JobID, state) {
					req.Progress("job of "+j.Bucket+": "+state, "bucket", j.Bucket, "job_id", j.JobID)
				}
				all = all && batchDone(j.Status)
			}
			return all, nil
		})
		if err != nil {
			return s3BatchReplicateOutputs{}, err
		}
		var bad []string
		for _, j := range out.Jobs {
			if j.Status != string(s3ctypes.JobStatusComplete) || j.TasksFailed > 0 {
				why := fmt.Sprintf("%s (job %s): %s, %d of %d tasks failed", j.Bucket, j.JobID, j.Status, j.TasksFailed, j.TasksTotal)
				if len(j.FailureReasons) > 0 {
					why += "; " + strings.Join(j.FailureReasons, "; ")
				}
				if j.Report != "" {
					why += "; report under " + j.Report
				}
				bad = append(bad, why)
			}
		}
		out.OK, out.Duration = len(bad) == 0, time.Since(start)
		if len(bad) > 0 {
			return s3BatchReplicateOutputs{}, plugin.FatalCode("ReplicationJobsFailed", "%d of %d replicate job(s) in %s did not complete cleanly:\n- %s", len(bad), len(out.Jobs), p.Region, strings.Join(bad, "\n- "))
		}
		return out, nil
	}).
		Doc("Replicates the objects that existed before the replication rules: one S3 Batch Operations job (S3ReplicateObject) per bucket through S3 Control CreateJob, created in the buckets' region with the given role, the manifest generated from the bucket's replication configuration (objects whose replication status is NONE or FAILED) or given, and an optional completion report; waits for every job and fails naming each bucket whose job failed or had failed tasks. Idempotent: the ClientRequestToken comes from the step's idempotency key, so a re-run finds its jobs instead of starting new ones.").
		Permissions(s3BatchReplicatePermissions...).
		Idempotent().
		Validate(validateS3Batch).
		Plan(func(ctx context.Context, req plugin.PlanRequest[s3BatchReplicateParams]) (plugin.Plan, error) {
			p := req.Params
			plan := plugin.Plan{Summary: fmt.Sprintf("start %d S3 Batch Operations replicate job(s) in %s", len(p.Buckets), p.Region)}
			if req.Unknown("/buckets") || req.Unknown("/region") || req.Unknown("/endpoint_url") {
				plan.Changes = []plugin.Change{{Resource: "s3 batch replicate jobs", AfterUnknown: true, Kind: plugin.ChangeAction}}
				return plan, nil
			}
			cfg, err := p.Conn().Config(ctx)
			if err != nil {
				return plugin.Plan{}, err
			}
			s3c := newS3(cfg)
			for i, b := range p.Buckets {
				name := bucketName(b)
				ch := plugin.Change{Resource: "s3 bucket " + name, Field: "existing objects", After: "replicated by an S3 Batch Operations job", Kind: plugin.ChangeAction}
				if _, ok := p.Manifests[b]; !ok {
					rep, err := s3c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(name)})
					switch {
					case err == nil:
						var dests []string
						for _, r := range rep.ReplicationConfiguration.Rules {
							if r.Destination != nil && r.Status == "Enabled" {
								dests = append(dests, aws.ToString(r.Destination.Bucket))
							}
						}
						ch.After = "replicated to " + strings.Join(dests, ", ") + " by an S3 Batch Operations job"
					case awscommon.IsCode(err, "ReplicationConfigurationNotFoundError", "NoSuchBucket"):
						plan.Diagnostics = append(plan.Diagnostics, plugin.Errorf(fmt.Sprintf("/buckets/%d", i), "bucket %s: %s; its replicate job would fail", name, awscommon.Describe(err)))
					default:
						return plugin.Plan{}, awscommon.Classify(err, "reading the replication configuration of %s", name)
					}
				}
				plan.Changes = append(plan.Changes, ch)
			}
			return plan, nil
		})
}
