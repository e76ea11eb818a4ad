package actions

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// bucketSet names the five buckets of one installation, with the field
// names of the installer config's disaster_recovery.s3_bucket_replication,
// so a runbook passes that object as it is. Each field takes a bucket ARN
// or a bare name.
type bucketSet struct {
	Enabled               *bool  `json:"enabled" doc:"The installer's replication switch; false is reported as a problem."`
	ReplicaKMSKeyARN      string `json:"replica_kms_key_arn" doc:"Accepted as the installer config has it; replicas' KMS keys are reported, not checked."`
	StatesBucketARN       string `json:"states_bucket_arn"`
	RunLogsBucketARN      string `json:"run_logs_bucket_arn"`
	ModulesBucketARN      string `json:"modules_bucket_arn"`
	PolicyInputsBucketARN string `json:"policy_inputs_bucket_arn"`
	WorkspacesBucketARN   string `json:"workspaces_bucket_arn"`
}

// bucketKinds are the five buckets, in report order.
var bucketKinds = []string{"states", "run_logs", "modules", "policy_inputs", "workspaces"}

func (b bucketSet) get(kind string) string {
	switch kind {
	case "states":
		return b.StatesBucketARN
	case "run_logs":
		return b.RunLogsBucketARN
	case "modules":
		return b.ModulesBucketARN
	case "policy_inputs":
		return b.PolicyInputsBucketARN
	case "workspaces":
		return b.WorkspacesBucketARN
	}
	return ""
}

// bucketName accepts "arn:aws:s3:::name" or "name".
func bucketName(s string) string {
	if i := strings.Index(s, ":::"); strings.HasPrefix(s, "arn:") && i >= 0 {
		return s[i+3:]
	}
	return s
}

type s3ReplicationCheckParams struct {
	awscommon.Params
	ReplicaRegion  string    `json:"replica_region" required:"true" doc:"The other region of the pair."`
	Buckets        bucketSet `json:"buckets" required:"true" doc:"One side's five buckets: an installer config's disaster_recovery.s3_bucket_replication as it is."`
	ReplicaBuckets bucketSet `json:"replica_buckets" required:"true" doc:"The other side's five buckets: the other config's disaster_recovery.s3_bucket_replication. Which side names which region's buckets does not matter: each bucket's region is read from S3."`
	FailOnProblem  bool      `json:"fail_on_problem" default:"true" doc:"Fail the step (fatal, listing every bad bucket) when any check fails; false only reports."`
}

type bucketReport struct {
	Kind               string   `json:"kind" doc:"states, run_logs, modules, policy_inputs or workspaces."`
	Bucket             string   `json:"bucket"`
	Region             string   `json:"region" doc:"Where the bucket is, or empty when it could not be read."`
	Versioning         string   `json:"versioning" doc:"Enabled, Suspended, or empty (never enabled)."`
	ReplicationEnabled bool     `json:"replication_enabled" doc:"Whether an enabled replication rule points at the pair's other bucket."`
	Destinations       []string `json:"destinations" doc:"Destination bucket ARNs of the bucket's enabled rules."`
	ReplicaKMSKeys     []string `json:"replica_kms_keys" doc:"KMS keys the rules encrypt replicas with."`
	Peer               string   `json:"peer" doc:"The bucket it should replicate to."`
	OK                 bool     `json:"ok"`
	Problems           []string `json:"problems"`
}

type s3ReplicationCheckOutputs struct {
	OK       bool           `json:"ok" doc:"Every bucket is versioned and replicates to its peer in the other region."`
	Buckets  []bucketReport `json:"buckets" doc:"One report per bucket (ten: five kinds in two regions)."`
	Problems []string       `json:"problems" doc:"Every problem, prefixed with the bucket."`
}

func s3ReplicationCheck() plugin.Action {
	return plugin.NewAction("s3_replication_check", func(ctx context.Context, req plugin.Request[s3ReplicationCheckParams]) (s3ReplicationCheckOutputs, error) {
		p := req.Params
		out := s3ReplicationCheckOutputs{Buckets: []bucketReport{}, Problems: []string{}}
		for _, side := range []struct {
			name string
			set  bucketSet
		}{{"buckets", p.Buckets}, {"replica_buckets", p.ReplicaBuckets}} {
			if side.set.Enabled != nil && !*side.set.Enabled {
				out.Problems = append(out.Problems, side.name+": the installer config has s3_bucket_replication.enabled: false")
			}
		}
		var mu sync.Mutex // guards clients
		clients := map[string]*s3.Client{}
		clientFor := func(region string) (*s3.Client, error) {
			mu.Lock()
			defer mu.Unlock()
			if c, ok := clients[region]; ok {
				return c, nil
			}
			cfg, err := p.Conn().WithRegion(region).Config(ctx)
			if err != nil {
				return nil, err
			}
			c := newS3(cfg)
			clients[region] = c
			return c, nil
		}
		pairs := make([][]*bucketReport, len(bucketKinds))
		for k, kind := range bucketKinds {
			a, b := bucketName(p.Buckets.get(kind)), bucketName(p.ReplicaBuckets.get(kind))
			pairs[k] = []*bucketReport{
				{Kind: kind, Bucket: a, Peer: b, Destinations: []string{}, ReplicaKMSKeys: []string{}, Problems: []string{}},
				{Kind: kind, Bucket: b, Peer: a, Destinations: []string{}, ReplicaKMSKeys: []string{}, Problems: []string{}},
			}
		}
		// The ten buckets are read concurrently: a region that does not
		// answer then costs one request timeout (and the SDK's retries)
		// once, not once per bucket. The first error in bucket order wins,
		// so the outcome does not depend on which answer came first.
		errs := make([][2]error, len(bucketKinds))
		var wg sync.WaitGroup
		for k, pair := range pairs {
			for i, r := range pair {
				if r.Bucket == "" {
					field := r.Kind + "_bucket_arn"
					side := []string{"buckets", "replica_buckets"}[i]
					r.Problems = append(r.Problems, fmt.Sprintf("no %s bucket given (%s.%s is empty)", r.Kind, side, field))
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					// GetBucketLocation answers from the bucket's own region and
					// from us-east-1; try the pair's regions first.
					errs[k][i] = inspectBucket(ctx, clientFor, uniq(p.Region, p.ReplicaRegion, "us-east-1"), r)
				}()
			}
		}
		wg.Wait()
		for _, e := range errs {
			for _, err := range e {
				if err != nil {
					return s3ReplicationCheckOutputs{}, err
				}
			}
		}
		for _, pair := range pairs {
			kind := pair[0].Kind
			// The pair must span the two regions.
			if pair[0].Region != "" && pair[1].Region != "" {
				if pair[0].Region == pair[1].Region {
					for _, r := range pair {
						r.Problems = append(r.Problems, fmt.Sprintf("both %s buckets are in %s; replication must cross from %s to %s", kind, r.Region, p.Region, p.ReplicaRegion))
					}
				}
				for _, r := range pair {
					if r.Region != p.Region && r.Region != p.ReplicaRegion {
						r.Problems = append(r.Problems, fmt.Sprintf("bucket is in %s, neither %s nor %s", r.Region, p.Region, p.ReplicaRegion))
					}
				}
			}
			for _, r := range pair {
				r.OK = len(r.Problems) == 0
				for _, pr := range r.Problems {
					out.Problems = append(out.Problems, fmt.Sprintf("%s bucket %s (%s): %s", r.Kind, firstNonEmpty(r.Bucket, "?"), firstNonEmpty(r.Region, "region unknown"), pr))
				}
				req.Progress("bucket checked: "+r.Bucket, "kind", r.Kind, "region", r.Region, "ok", r.OK)
				out.Buckets = append(out.Buckets, *r)
			}
		}
		out.OK = len(out.Problems) == 0
		if !out.OK && p.FailOnProblem {
			return s3ReplicationCheckOutputs{}, plugin.FatalCode("ReplicationProblems", "S3 replication between %s and %s is not as required (%d problem(s)):\n- %s", p.Region, p.ReplicaRegion, len(out.Problems), strings.Join(out.Problems, "\n- "))
		}
		return out, nil
	}).
		Doc("Checks that the installation's five buckets (states, run-logs, modules, policy-inputs, workspaces) in both regions are versioned and replicate, each to its peer in the other region, with an enabled replication rule. The buckets are given as the installer configs' disaster_recovery.s3_bucket_replication objects, as they are (ARNs or names). Reports per bucket; fails (fatal, listing every problem) unless fail_on_problem is false. Read-only.").
		ReadOnly().
		Plan(func(ctx context.Context, req plugin.PlanRequest[s3ReplicationCheckParams]) (plugin.Plan, error) {
			return plugin.Plan{Summary: fmt.Sprintf("check versioning and replication of 10 buckets between %s and %s (read-only)", req.Params.Region, req.Params.ReplicaRegion)}, nil
		})
}

// newS3 makes an S3 client; with a custom endpoint, path-style addressing
// (an emulator or proxy cannot serve bucket-name subdomains).
func newS3(cfg aws.Config) *s3.Client {
	pathStyle := awscommon.EndpointOverridden(cfg, "S3")
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = pathStyle })
}

// inspectBucket fills a bucket's region, versioning and replication rules
// into r, recording problems. Only transient errors are returned.
func inspectBucket(ctx context.Context, clientFor func(string) (*s3.Client, error), regions []string, r *bucketReport) error {
	var lastErr error
	for _, region := range regions {
		c, err := clientFor(region)
		if err != nil {
			return err
		}
		loc, err := c.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(r.Bucket)})
		if err == nil {
			r.Region = string(loc.LocationConstraint)
			switch r.Region {
			case "":
				r.Region = "us-east-1"
			case "EU":
				r.Region = "eu-west-1"
			}
			lastErr = nil
			break
		}
		if awscommon.IsCode(err, "NoSuchBucket") {
			r.Problems = append(r.Problems, "bucket does not exist")
			return nil
		}
		lastErr = err
	}
	if lastErr != nil {
		if c := awscommon.Classify(lastErr, "locating bucket %s", r.Bucket); isRetryable(c) {
			return c
		}
		r.Problems = append(r.Problems, "cannot read its location: "+awscommon.Describe(lastErr))
		return nil
	}
	c, err := clientFor(r.Region)
	if err != nil {
		return err
	}
	v, err := c.GetBucketVersioning(ctx, &s3.GetBucketVersioningInput{Bucket: aws.String(r.Bucket)})
	if err != nil {
		if ce := awscommon.Classify(err, "reading versioning of bucket %s", r.Bucket); isRetryable(ce) {
			return ce
		}
		r.Problems = append(r.Problems, "cannot read versioning: "+awscommon.Describe(err))
	} else {
		r.Versioning = string(v.Status)
		if v.Status != s3types.BucketVersioningStatusEnabled {
			r.Problems = append(r.Problems, fmt.Sprintf("versioning is %s, not Enabled", firstNonEmpty(r.Versioning, "off")))
		}
	}
	rep, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(r.Bucket)})
	switch {
	case awscommon.IsCode(err, "ReplicationConfigurationNotFoundError"):
		r.Problems = append(r.Problems, "has no replication configuration")
		return nil
	case err != nil:
		if ce := awscommon.Classify(err, "reading replication of bucket %s", r.Bucket); isRetryable(ce) {
			return ce
		}
		r.Problems = append(r.Problems, "cannot read replication: "+awscommon.Describe(err))
		return nil
	}
	peerARN := "arn:aws:s3:::" + r.Peer
	for _, rule := range rep.ReplicationConfiguration.Rules {
		if rule.Status != s3types.ReplicationRuleStatusEnabled || rule.Destination == nil {
			continue
		}
		dest := aws.ToString(rule.Destination.Bucket)
		r.Destinations = append(r.Destinations, dest)
		if ec := rule.Destination.EncryptionConfiguration; ec != nil && aws.ToString(ec.ReplicaKmsKeyID) != "" {
			r.ReplicaKMSKeys = append(r.ReplicaKMSKeys, aws.ToString(ec.ReplicaKmsKeyID))
		}
		if r.Peer != "" && (dest == peerARN || bucketName(dest) == r.Peer) {
			r.ReplicationEnabled = true
		}
	}
	if !r.ReplicationEnabled && r.Peer != "" {
		if len(r.Destinations) == 0 {
			r.Problems = append(r.Problems, "has no enabled replication rule")
		} else {
			r.Problems = append(r.Problems, fmt.Sprintf("replicates to %s, not to %s", strings.Join(r.Destinations, ", "), peerARN))
		}
	}
	return nil
}

func isRetryable(err error) bool {
	pe, ok := err.(*plugin.Error)
	return ok && pe.Retryable
}

func uniq(vs ...string) []string {
	var out []string
	seen := map[string]bool{}
	for _, v := range vs {
		if v != "" && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	return out
}
