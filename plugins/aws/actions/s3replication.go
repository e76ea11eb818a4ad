package actions

import (
	"context"
	"fmt"
	"strings"
	"sync"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/iam"
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
	Encryption         string   `json:"encryption" doc:"The bucket's default encryption: aws:kms, aws:kms:dsse, AES256, or empty."`
	RuleID             string   `json:"rule_id" doc:"The enabled rule that replicates to the peer (the highest priority one)."`
	Scope              string   `json:"scope" doc:"What that rule covers: \"whole bucket\", or its prefix and tags."`
	KMSSelected        bool     `json:"kms_selected" doc:"Whether that rule replicates SSE-KMS objects (SourceSelectionCriteria.SseKmsEncryptedObjects Enabled)."`
	ReplicaKMSKey      string   `json:"replica_kms_key" doc:"That rule's Destination.EncryptionConfiguration.ReplicaKmsKeyID."`
	MetricsEnabled     bool     `json:"metrics_enabled" doc:"Whether that rule publishes replication metrics (Destination.Metrics or ReplicationTime Enabled)."`
	Role               string   `json:"role" doc:"The replication configuration's IAM role."`
	RoleVerified       string   `json:"role_verified" doc:"exists, or why its existence could not be read (the check needs iam:GetRole)."`
	OK                 bool     `json:"ok"`
	Problems           []string `json:"problems"`

	peerRule       *s3types.ReplicationRule
	peerVersioning string
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
		if err := verifyRoles(ctx, p.Conn(), pairs); err != nil {
			return s3ReplicationCheckOutputs{}, err
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
			checkPair(pair[0], pair[1])
			checkPair(pair[1], pair[0])
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
		Permissions(s3ReplicationCheckPermissions...).
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
	r.Role = aws.ToString(rep.ReplicationConfiguration.Role)
	for i, rule := range rep.ReplicationConfiguration.Rules {
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
			// S3 replicates by the highest-priority rule per destination.
			if r.peerRule == nil || aws.ToInt32(rule.Priority) > aws.ToInt32(r.peerRule.Priority) {
				r.peerRule = &rep.ReplicationConfiguration.Rules[i]
			}
		}
	}
	if !r.ReplicationEnabled && r.Peer != "" {
		if len(r.Destinations) == 0 {
			r.Problems = append(r.Problems, "has no enabled replication rule")
		} else {
			r.Problems = append(r.Problems, fmt.Sprintf("replicates to %s, not to %s", strings.Join(r.Destinations, ", "), peerARN))
		}
	}
	if r.Role == "" {
		r.Problems = append(r.Problems, "its replication configuration names no IAM role (Role)")
	} else if !strings.Contains(r.Role, ":role/") {
		r.Problems = append(r.Problems, fmt.Sprintf("replication Role %s is not an IAM role ARN", r.Role))
	}
	if rule := r.peerRule; rule != nil {
		r.RuleID = aws.ToString(rule.ID)
		r.Scope = ruleScope(*rule)
		if r.Scope != wholeBucket {
			r.Problems = append(r.Problems, fmt.Sprintf("replication rule %q covers only part of the bucket (%s): objects outside it are not replicated", r.RuleID, r.Scope))
		}
		r.KMSSelected = rule.SourceSelectionCriteria != nil && rule.SourceSelectionCriteria.SseKmsEncryptedObjects != nil &&
			rule.SourceSelectionCriteria.SseKmsEncryptedObjects.Status == s3types.SseKmsEncryptedObjectsStatusEnabled
		if ec := rule.Destination.EncryptionConfiguration; ec != nil {
			r.ReplicaKMSKey = aws.ToString(ec.ReplicaKmsKeyID)
		}
		m := rule.Destination.Metrics
		rt := rule.Destination.ReplicationTime
		r.MetricsEnabled = (m != nil && m.Status == s3types.MetricsStatusEnabled) || (rt != nil && rt.Status == s3types.ReplicationTimeStatusEnabled)
	}
	enc, err := c.GetBucketEncryption(ctx, &s3.GetBucketEncryptionInput{Bucket: aws.String(r.Bucket)})
	switch {
	case awscommon.IsCode(err, "ServerSideEncryptionConfigurationNotFoundError"):
	case err != nil:
		if ce := awscommon.Classify(err, "reading the default encryption of bucket %s", r.Bucket); isRetryable(ce) {
			return ce
		}
		r.Problems = append(r.Problems, "cannot read its default encryption: "+awscommon.Describe(err))
	case enc.ServerSideEncryptionConfiguration != nil:
		for _, rule := range enc.ServerSideEncryptionConfiguration.Rules {
			if d := rule.ApplyServerSideEncryptionByDefault; d != nil {
				r.Encryption = string(d.SSEAlgorithm)
			}
		}
	}
	return nil
}

const wholeBucket = "whole bucket"

// ruleScope says what a replication rule covers: the whole bucket, or the
// prefix and tags its filter (or V1 prefix) limits it to.
func ruleScope(rule s3types.ReplicationRule) string {
	prefix := aws.ToString(rule.Prefix) //nolint:staticcheck // the V1 schema's rule-level prefix
	var tags []string
	if f := rule.Filter; f != nil {
		prefix = firstNonEmpty(aws.ToString(f.Prefix), prefix)
		if f.Tag != nil {
			tags = append(tags, aws.ToString(f.Tag.Key)+"="+aws.ToString(f.Tag.Value))
		}
		if f.And != nil {
			prefix = firstNonEmpty(aws.ToString(f.And.Prefix), prefix)
			for _, t := range f.And.Tags {
				tags = append(tags, aws.ToString(t.Key)+"="+aws.ToString(t.Value))
			}
		}
	}
	var parts []string
	if prefix != "" {
		parts = append(parts, fmt.Sprintf("prefix %q", prefix))
	}
	if len(tags) > 0 {
		parts = append(parts, "tags "+strings.Join(tags, ", "))
	}
	if len(parts) == 0 {
		return wholeBucket
	}
	return strings.Join(parts, ", ")
}

// checkPair adds the problems that need both buckets of a pair read: each rule's
// destination versioned, and SSE-KMS objects replicated with a key in the
// destination's region (S3 User Guide, "Replicating encrypted objects (SSE-S3,
// SSE-KMS, DSSE-KMS)": S3 does not replicate SSE-KMS objects unless the rule sets
// SourceSelectionCriteria.SseKmsEncryptedObjects and names ReplicaKmsKeyID, a key
// in the destination bucket's region).
func checkPair(src, dst *bucketReport) {
	if src.peerRule == nil {
		return
	}
	if dst.Region != "" && dst.Versioning != string(s3types.BucketVersioningStatusEnabled) {
		src.Problems = append(src.Problems, fmt.Sprintf("replicates to %s, whose versioning is %s: S3 fails every replication into it (DstBucketUnversioned)", dst.Bucket, firstNonEmpty(dst.Versioning, "off")))
	}
	if src.Encryption != "aws:kms" && src.Encryption != "aws:kms:dsse" {
		return
	}
	what := fmt.Sprintf("its default encryption is %s, so replication rule %q", src.Encryption, src.RuleID)
	if !src.KMSSelected {
		src.Problems = append(src.Problems, what+" must select KMS-encrypted objects (SourceSelectionCriteria.SseKmsEncryptedObjects.Status: Enabled); without it S3 replicates none of its objects")
	}
	switch region, err := awscommon.RegionOfARN(src.ReplicaKMSKey); {
	case src.ReplicaKMSKey == "":
		src.Problems = append(src.Problems, what+" must name a replica KMS key in "+firstNonEmpty(dst.Region, "the destination region")+" (Destination.EncryptionConfiguration.ReplicaKmsKeyID)")
	case err != nil:
		src.Problems = append(src.Problems, fmt.Sprintf("%s names replica KMS key %q, not a key ARN: give the ARN of a key in %s (Destination.EncryptionConfiguration.ReplicaKmsKeyID)", what, src.ReplicaKMSKey, firstNonEmpty(dst.Region, "the destination region")))
	case dst.Region != "" && region != dst.Region:
		src.Problems = append(src.Problems, fmt.Sprintf("%s encrypts replicas with KMS key %s, in %s, not in the destination's region %s (Destination.EncryptionConfiguration.ReplicaKmsKeyID)", what, src.ReplicaKMSKey, region, dst.Region))
	}
}

// verifyRoles reads each replication role named by the buckets with IAM
// GetRole: a role that is gone leaves S3 unable to replicate anything
// (failure reason AssumeRoleNotPermitted). Credentials without iam:GetRole
// leave it unverified, which is reported, not failed.
func verifyRoles(ctx context.Context, conn awscommon.Conn, pairs [][]*bucketReport) error {
	byRole := map[string][]*bucketReport{}
	for _, pair := range pairs {
		for _, r := range pair {
			if strings.Contains(r.Role, ":role/") {
				byRole[r.Role] = append(byRole[r.Role], r)
			}
		}
	}
	if len(byRole) == 0 {
		return nil
	}
	cfg, err := conn.Config(ctx)
	if err != nil {
		return err
	}
	client := iam.NewFromConfig(cfg)
	for role, reports := range byRole {
		name := role[strings.LastIndex(role, "/")+1:]
		verdict := "exists"
		_, err := client.GetRole(ctx, &iam.GetRoleInput{RoleName: aws.String(name)})
		switch {
		case awscommon.IsCode(err, "NoSuchEntity"):
			for _, r := range reports {
				r.Problems = append(r.Problems, fmt.Sprintf("replication role %s does not exist: S3 cannot assume it and replicates nothing (AssumeRoleNotPermitted)", role))
			}
			verdict = "does not exist"
		case err != nil:
			if ce := awscommon.Classify(err, "reading IAM role %s", role); isRetryable(ce) {
				return ce
			}
			verdict = "not verified: " + awscommon.Describe(err)
		}
		for _, r := range reports {
			r.RoleVerified = verdict
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
