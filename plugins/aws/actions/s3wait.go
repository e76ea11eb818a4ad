package actions

import (
	"context"
	"errors"
	"fmt"
	"math"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// DefaultMarkerPrefix is where s3_replication_wait writes its marker objects
// (under the replication rule's own prefix, if it has one).
const DefaultMarkerPrefix = "runbook-replication-marker/"

type s3WaitParams struct {
	awscommon.Params
	ReplicaRegion string        `json:"replica_region" required:"true" doc:"The region of the destination buckets."`
	Buckets       bucketSet     `json:"buckets" required:"true" doc:"The source buckets, in region, as an installer config's disaster_recovery.s3_bucket_replication names them. A config names its replicas: when failing over from the primary, pass the DR config's block (it names the primary's buckets)."`
	Method        string        `json:"method" default:"auto" enum:"auto,metrics,marker" doc:"auto: replication metrics for rules that publish them and have recent datapoints, a marker object otherwise; metrics or marker: that for every bucket."`
	MarkerPrefix  string        `json:"marker_prefix" default:"runbook-replication-marker/" doc:"Where marker objects are written (after the rule's own prefix). Their keys are unique to the run, step and attempt; they are deleted afterwards."`
	MaxWait       time.Duration `json:"max_wait" default:"15m" doc:"How long the backlog may take to drain before the step fails, naming what is still pending (S3 Replication Time Control's own objective is 15 minutes)."`
	PollInterval  time.Duration `json:"poll_interval" default:"2s" doc:"How often to read the metrics or look for the markers."`
	Cleanup       bool          `json:"cleanup" default:"true" doc:"Delete the marker objects (their versions, in both buckets) afterwards."`
}

type bucketDrain struct {
	Kind              string  `json:"kind"`
	Bucket            string  `json:"bucket"`
	Destination       string  `json:"destination"`
	Rule              string  `json:"rule" doc:"The replication rule that replicates to the destination."`
	Method            string  `json:"method" doc:"metrics or marker."`
	Drained           bool    `json:"drained"`
	RPOSeconds        float64 `json:"rpo_seconds" doc:"How far the destination was behind: the marker's travel time, or the ReplicationLatency when the pending operations reached 0."`
	PendingOperations float64 `json:"pending_operations" doc:"OperationsPendingReplication when the wait began (metrics)."`
	PendingBytes      float64 `json:"pending_bytes" doc:"BytesPendingReplication when the wait began (metrics)."`
	MarkerKey         string  `json:"marker_key"`
	Evidence          string  `json:"evidence" doc:"What proved the backlog drained, or what was last seen."`

	rule           s3types.ReplicationRule
	metricsSeen    bool
	written        time.Time
	markerVersion  string
	replicaVersion string
}

type s3WaitOutputs struct {
	OK            bool          `json:"ok"`
	Buckets       []bucketDrain `json:"buckets"`
	MaxRPOSeconds float64       `json:"max_rpo_seconds" doc:"The largest rpo_seconds: the S3 RPO of the switch."`
	// DoneEvidence is what `runbook report` shows under "What ended each wait".
	DoneEvidence string        `json:"done_evidence" doc:"What ended the wait: the S3 RPO and, per bucket, what proved its backlog drained (for the report)."`
	Duration     time.Duration `json:"duration"`
}

// metricsLookback is how far back replication metrics are read: auto mode
// falls back to a marker for a rule with no datapoint in it.
const metricsLookback = 15 * time.Minute

func s3ReplicationWait() plugin.Action {
	return plugin.NewAction("s3_replication_wait", func(ctx context.Context, req plugin.Request[s3WaitParams]) (s3WaitOutputs, error) {
		start := time.Now()
		p := req.Params
		srcCfg, err := p.Conn().Config(ctx)
		if err != nil {
			return s3WaitOutputs{}, err
		}
		dstCfg, err := p.Conn().WithRegion(p.ReplicaRegion).Config(ctx)
		if err != nil {
			return s3WaitOutputs{}, err
		}
		src, dst := newS3(srcCfg), newS3(dstCfg)
		cw := cloudwatch.NewFromConfig(srcCfg, func(o *cloudwatch.Options) {
			o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
		})
		drains, err := replicationTargets(ctx, src, p)
		if err != nil {
			return s3WaitOutputs{}, err
		}
		token := markerToken(req.RunID, req.StepID, req.Attempt)
		for _, d := range drains {
			if d.Method != "marker" {
				continue
			}
			if err := writeMarker(ctx, src, d, p.MarkerPrefix+token); err != nil {
				cleanupMarkers(ctx, src, dst, drains, req.Progress)
				return s3WaitOutputs{}, err
			}
			req.Progress("marker written: "+d.Bucket+"/"+d.MarkerKey, "bucket", d.Bucket, "destination", d.Destination)
		}

		check := func(ctx context.Context) (bool, error) {
			var mu sync.Mutex
			var wg sync.WaitGroup
			errs := make([]error, len(drains))
			for i, d := range drains {
				if d.Drained {
					continue
				}
				wg.Add(1)
				go func() {
					defer wg.Done()
					var err error
					switch d.Method {
					case "metrics", "auto":
						err = readBacklog(ctx, cw, d, start, p.Method == "auto")
						if err == nil && d.Method == "marker" { // auto fell back
							err = writeMarker(ctx, src, d, p.MarkerPrefix+token)
						}
					default:
						err = lookForMarker(ctx, src, dst, d)
					}
					mu.Lock()
					errs[i] = err
					mu.Unlock()
				}()
			}
			wg.Wait()
			all := true
			for i, d := range drains {
				if errs[i] != nil {
					return false, errs[i]
				}
				all = all && d.Drained
			}
			return all, nil
		}
		seen := awscommon.Changes{}
		progress := func(ctx context.Context) (bool, error) {
			done, err := check(ctx)
			for _, d := range drains {
				if seen.Changed(d.Bucket+">"+d.Destination, d.Evidence) {
					req.Progress(d.Bucket+" -> "+d.Destination+": "+d.Evidence, "bucket", d.Bucket, "method", d.Method, "drained", d.Drained)
				}
			}
			return done, err
		}
		wctx, cancel := context.WithTimeout(ctx, p.MaxWait)
		err = awscommon.Poll(wctx, p.PollInterval, fmt.Sprintf("S3 replication from %s to %s to drain", p.Region, p.ReplicaRegion), progress)
		cancel()
		if p.Cleanup {
			cleanupMarkers(ctx, src, dst, drains, req.Progress)
		}
		out := s3WaitOutputs{OK: true, Buckets: []bucketDrain{}, Duration: time.Since(start)}
		for _, d := range drains {
			out.Buckets = append(out.Buckets, *d)
			out.MaxRPOSeconds = math.Max(out.MaxRPOSeconds, d.RPOSeconds)
			out.OK = out.OK && d.Drained
		}
		if err != nil {
			if !errors.Is(err, context.DeadlineExceeded) || ctx.Err() != nil {
				return s3WaitOutputs{}, err
			}
			var left []string
			for _, d := range drains {
				if !d.Drained {
					left = append(left, fmt.Sprintf("%s bucket %s -> %s: %s", d.Kind, d.Bucket, d.Destination, d.Evidence))
				}
			}
			return s3WaitOutputs{}, plugin.FatalCode("ReplicationBacklog", "S3 replication from %s to %s did not drain within %s; switching now would leave these objects behind:\n- %s", p.Region, p.ReplicaRegion, p.MaxWait, strings.Join(left, "\n- "))
		}
		proofs := make([]string, 0, len(drains))
		for _, d := range drains {
			proof := d.Evidence
			if d.Method == "marker" { // its key is in the bucket's report; keep the report's row short
				proof = fmt.Sprintf("marker arrived after %.1f s", d.RPOSeconds)
			}
			proofs = append(proofs, d.Bucket+" -> "+d.Destination+": "+proof)
		}
		out.DoneEvidence = fmt.Sprintf("S3 replication from %s to %s drained, S3 RPO %.1f s: %s", p.Region, p.ReplicaRegion, out.MaxRPOSeconds, strings.Join(proofs, "; "))
		req.Progress(fmt.Sprintf("S3 replication drained; S3 RPO %.1f s", out.MaxRPOSeconds), "max_rpo_seconds", out.MaxRPOSeconds)
		return out, nil
	}).
		Doc("Waits, at most max_wait, until S3 replication from the source buckets to their destinations has caught up: through the replication metrics (CloudWatch AWS/S3 OperationsPendingReplication reaching 0) where the rule publishes them, otherwise by writing a marker object into each source bucket and waiting for it in the destination (HeadObject). Reports per bucket and as a maximum how far the destination was behind (the S3 RPO). Deletes its markers afterwards. For a planned switch: without it, \"no data loss\" holds for the database only.").
		Permissions(s3ReplicationWaitPermissions...).
		Idempotent().
		Plan(func(ctx context.Context, req plugin.PlanRequest[s3WaitParams]) (plugin.Plan, error) {
			p := req.Params
			return plugin.Plan{Summary: fmt.Sprintf("wait (at most %s) for S3 replication from %s to %s to drain, by %s; writes and deletes marker objects under %s", p.MaxWait, p.Region, p.ReplicaRegion, p.Method, p.MarkerPrefix)}, nil
		})
}

// replicationTargets reads each source bucket's replication configuration and
// returns one drain per destination, with the rule S3 applies to it (the
// highest priority) and the method to watch it by.
func replicationTargets(ctx context.Context, src *s3.Client, p s3WaitParams) ([]*bucketDrain, error) {
	var out []*bucketDrain
	for _, kind := range bucketKinds {
		bucket := bucketName(p.Buckets.get(kind))
		if bucket == "" {
			return nil, plugin.FatalCode("NoBucket", "buckets.%s_bucket_arn is empty", kind)
		}
		// The installer configs name each other's buckets: passing the wrong
		// one is an easy mistake, and it would watch the other direction.
		loc, err := src.GetBucketLocation(ctx, &s3.GetBucketLocationInput{Bucket: aws.String(bucket)})
		switch {
		case awscommon.IsCode(err, "NoSuchBucket"):
			return nil, plugin.FatalCode("NoSuchBucket", "%s bucket %s does not exist", kind, bucket)
		case err != nil:
			return nil, awscommon.Classify(err, "locating bucket %s", bucket)
		}
		if where := firstNonEmpty(string(loc.LocationConstraint), "us-east-1"); where != p.Region {
			return nil, plugin.FatalCode("WrongRegion", "%s bucket %s is in %s, not in %s: buckets must name the buckets of the region being left (a config's s3_bucket_replication names its replicas: pass the other config's)", kind, bucket, where, p.Region)
		}
		rep, err := src.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(bucket)})
		switch {
		case awscommon.IsCode(err, "ReplicationConfigurationNotFoundError"):
			return nil, plugin.FatalCode("NoReplication", "%s bucket %s (%s) has no replication configuration: nothing of it reaches %s", kind, bucket, p.Region, p.ReplicaRegion)
		case awscommon.IsCode(err, "NoSuchBucket"):
			return nil, plugin.FatalCode("NoSuchBucket", "%s bucket %s does not exist in %s", kind, bucket, p.Region)
		case err != nil:
			return nil, awscommon.Classify(err, "reading the replication configuration of bucket %s (%s)", bucket, p.Region)
		}
		byDest := map[string]*bucketDrain{}
		var order []string
		for _, rule := range rep.ReplicationConfiguration.Rules {
			if rule.Status != s3types.ReplicationRuleStatusEnabled || rule.Destination == nil {
				continue
			}
			dest := bucketName(aws.ToString(rule.Destination.Bucket))
			if d, ok := byDest[dest]; ok && aws.ToInt32(d.rule.Priority) >= aws.ToInt32(rule.Priority) {
				continue
			}
			if _, ok := byDest[dest]; !ok {
				order = append(order, dest)
			}
			d := &bucketDrain{Kind: kind, Bucket: bucket, Destination: dest, Rule: aws.ToString(rule.ID), rule: rule, Method: "marker"}
			m, rt := rule.Destination.Metrics, rule.Destination.ReplicationTime
			metrics := (m != nil && m.Status == s3types.MetricsStatusEnabled) || (rt != nil && rt.Status == s3types.ReplicationTimeStatusEnabled)
			switch {
			case p.Method == "metrics":
				d.Method = "metrics"
			case p.Method == "auto" && metrics:
				d.Method = "auto" // metrics, unless the rule has no recent datapoint
			}
			byDest[dest] = d
		}
		if len(order) == 0 {
			return nil, plugin.FatalCode("NoReplication", "%s bucket %s (%s) has no enabled replication rule: nothing of it reaches %s", kind, bucket, p.Region, p.ReplicaRegion)
		}
		for _, dest := range order {
			out = append(out, byDest[dest])
		}
	}
	return out, nil
}

// markerToken makes marker keys unique to the run, step and attempt.
func markerToken(runID, stepID string, attempt int) string {
	clean := func(s string) string {
		return strings.Map(func(r rune) rune {
			if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_' || r == '.' {
				return r
			}
			return '-'
		}, s)
	}
	if runID == "" {
		runID = fmt.Sprintf("t%d", time.Now().UnixNano())
	}
	return fmt.Sprintf("%s/%s-%d", clean(runID), clean(firstNonEmpty(stepID, "step")), attempt)
}

// writeMarker puts the marker object where the rule replicates it: under the
// rule's prefix, with its tags.
func writeMarker(ctx context.Context, src *s3.Client, d *bucketDrain, key string) error {
	prefix := aws.ToString(d.rule.Prefix) //nolint:staticcheck // the V1 schema's rule-level prefix
	var tags []s3types.Tag
	if f := d.rule.Filter; f != nil {
		prefix = firstNonEmpty(aws.ToString(f.Prefix), prefix)
		if f.Tag != nil {
			tags = append(tags, *f.Tag)
		}
		if f.And != nil {
			prefix = firstNonEmpty(aws.ToString(f.And.Prefix), prefix)
			tags = append(tags, f.And.Tags...)
		}
	}
	d.MarkerKey = prefix + key
	in := &s3.PutObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(d.MarkerKey),
		Body: strings.NewReader("runbook replication marker\n"), ContentType: aws.String("text/plain")}
	if len(tags) > 0 {
		q := url.Values{}
		for _, t := range tags {
			q.Set(aws.ToString(t.Key), aws.ToString(t.Value))
		}
		in.Tagging = aws.String(q.Encode())
	}
	d.written = time.Now()
	out, err := src.PutObject(ctx, in)
	if err != nil {
		return awscommon.Classify(err, "writing replication marker %s to bucket %s", d.MarkerKey, d.Bucket)
	}
	d.markerVersion = aws.ToString(out.VersionId)
	d.Evidence = "marker " + d.MarkerKey + " written, not yet in " + d.Destination
	return nil
}

// lookForMarker checks whether the marker reached the destination; a marker
// whose replication failed ends the wait.
func lookForMarker(ctx context.Context, src, dst *s3.Client, d *bucketDrain) error {
	h, err := dst.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.Destination), Key: aws.String(d.MarkerKey)})
	switch {
	case err == nil:
		d.Drained = true
		d.RPOSeconds = math.Round(time.Since(d.written).Seconds()*10) / 10
		d.replicaVersion = aws.ToString(h.VersionId)
		d.Evidence = fmt.Sprintf("marker %s arrived in %s after %.1f s", d.MarkerKey, d.Destination, d.RPOSeconds)
		return nil
	case !awscommon.IsCode(err, "NotFound", "NoSuchKey"):
		return awscommon.Classify(err, "looking for replication marker %s in bucket %s", d.MarkerKey, d.Destination)
	}
	s, err := src.HeadObject(ctx, &s3.HeadObjectInput{Bucket: aws.String(d.Bucket), Key: aws.String(d.MarkerKey), VersionId: aws.String(d.markerVersion)})
	if err != nil {
		return awscommon.Classify(err, "reading replication marker %s in bucket %s", d.MarkerKey, d.Bucket)
	}
	if s.ReplicationStatus == s3types.ReplicationStatusFailed {
		return plugin.FatalCode("ReplicationFailed", "S3 could not replicate marker %s from %s to %s (ReplicationStatus FAILED): check the rule %q, its role, the destination's versioning and KMS key", d.MarkerKey, d.Bucket, d.Destination, d.Rule)
	}
	d.Evidence = fmt.Sprintf("marker %s not yet in %s after %.0f s (source ReplicationStatus %s)", d.MarkerKey, d.Destination, time.Since(d.written).Seconds(), firstNonEmpty(string(s.ReplicationStatus), "none"))
	return nil
}

// readBacklog reads the rule's replication metrics. The backlog counts as
// drained on a datapoint of OperationsPendingReplication of 0 whose period
// ends after the wait began. In auto mode, a rule without any datapoint in
// metricsLookback switches to a marker.
func readBacklog(ctx context.Context, cw *cloudwatch.Client, d *bucketDrain, since time.Time, auto bool) error {
	dims := []cwtypes.Dimension{
		{Name: aws.String("SourceBucket"), Value: aws.String(d.Bucket)},
		{Name: aws.String("DestinationBucket"), Value: aws.String(d.Destination)},
		{Name: aws.String("RuleId"), Value: aws.String(d.Rule)},
	}
	q := func(id, metric string) cwtypes.MetricDataQuery {
		return cwtypes.MetricDataQuery{Id: aws.String(id), ReturnData: aws.Bool(true), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/S3"), MetricName: aws.String(metric), Dimensions: dims},
			Period: aws.Int32(60), Stat: aws.String("Maximum"),
		}}
	}
	now := time.Now()
	out, err := cw.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(now.Add(-metricsLookback)), EndTime: aws.Time(now.Add(time.Minute)),
		MetricDataQueries: []cwtypes.MetricDataQuery{q("ops", "OperationsPendingReplication"), q("bytes", "BytesPendingReplication"), q("latency", "ReplicationLatency")},
	})
	if err != nil {
		return awscommon.Classify(err, "reading the replication metrics of %s -> %s (rule %s)", d.Bucket, d.Destination, d.Rule)
	}
	newest := map[string]struct {
		at time.Time
		v  float64
	}{}
	for _, r := range out.MetricDataResults {
		for i, ts := range r.Timestamps {
			if i < len(r.Values) && ts.After(newest[aws.ToString(r.Id)].at) {
				newest[aws.ToString(r.Id)] = struct {
					at time.Time
					v  float64
				}{ts, r.Values[i]}
			}
		}
	}
	ops, ok := newest["ops"]
	if !ok {
		if auto && !d.metricsSeen {
			d.Method = "marker"
			return nil
		}
		d.Evidence = fmt.Sprintf("no OperationsPendingReplication datapoint in the last %s", metricsLookback)
		return nil
	}
	if !d.metricsSeen {
		d.metricsSeen = true
		d.Method = "metrics"
		d.PendingOperations, d.PendingBytes = ops.v, newest["bytes"].v
	}
	if ops.v == 0 && ops.at.Add(time.Minute).After(since) {
		d.Drained = true
		d.RPOSeconds = newest["latency"].v
		d.Evidence = fmt.Sprintf("OperationsPendingReplication 0 in the minute from %s; ReplicationLatency %.0f s", ops.at.UTC().Format("15:04"), d.RPOSeconds)
		return nil
	}
	d.Evidence = fmt.Sprintf("%.0f operations (%.0f bytes) pending at %s, ReplicationLatency %.0f s", ops.v, newest["bytes"].v, ops.at.UTC().Format("15:04"), newest["latency"].v)
	return nil
}

// cleanupMarkers deletes the markers' versions in both buckets. Deleting a
// version (not the key) is not replicated, so nothing else moves.
func cleanupMarkers(ctx context.Context, src, dst *s3.Client, drains []*bucketDrain, progress func(string, ...any)) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), 30*time.Second)
	defer cancel()
	for _, d := range drains {
		if d.MarkerKey == "" || d.markerVersion == "" {
			continue
		}
		for _, v := range []struct {
			c       *s3.Client
			bucket  string
			version string
		}{{src, d.Bucket, d.markerVersion}, {dst, d.Destination, d.replicaVersion}} {
			if v.version == "" {
				continue
			}
			if _, err := v.c.DeleteObject(ctx, &s3.DeleteObjectInput{Bucket: aws.String(v.bucket), Key: aws.String(d.MarkerKey), VersionId: aws.String(v.version)}); err != nil {
				progress("could not delete replication marker "+v.bucket+"/"+d.MarkerKey+": "+awscommon.Describe(err), "bucket", v.bucket)
			}
		}
	}
}
