package actions

import (
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sim/emulator"
)

// versionsUnder counts the object versions (and delete markers) under prefix.
func versionsUnder(t *testing.T, env *awstest.Env, region, bucket, prefix string) int {
	t.Helper()
	out, err := s3Client(t, env, region).ListObjectVersions(context.Background(), &s3.ListObjectVersionsInput{Bucket: aws.String(bucket), Prefix: aws.String(prefix)})
	if err != nil {
		t.Fatal(err)
	}
	return len(out.Versions) + len(out.DeleteMarkers)
}

// Without replication metrics, a marker per bucket: written, waited for in the
// destination, its travel time the S3 RPO, deleted from both buckets after.
func TestS3ReplicationWaitMarker(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	seedReplicatedBuckets(t, env)
	drCfg := sources(t)
	out, err := c.Apply(tctx(t), "s3_replication_wait", env.Params(primaryRegion, map[string]any{
		"replica_region": drRegion, "buckets": drCfg, "poll_interval": "100ms", "max_wait": "30s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	buckets := out["buckets"].([]any)
	if out["ok"] != true || len(buckets) != 5 {
		t.Fatalf("outputs %v", out)
	}
	max := 0.0
	for _, b := range buckets {
		r := b.(map[string]any)
		rpo := r["rpo_seconds"].(float64)
		// The emulator's replication lag is 0.5 s (awstest.FastTiming).
		if r["method"] != "marker" || r["drained"] != true || rpo < 0.5 || !strings.HasPrefix(r["marker_key"].(string), DefaultMarkerPrefix) ||
			!strings.Contains(r["evidence"].(string), "arrived in "+r["destination"].(string)) {
			t.Errorf("bucket report %v", r)
		}
		max = maxf(max, rpo)
		if n := versionsUnder(t, env, primaryRegion, r["bucket"].(string), DefaultMarkerPrefix); n != 0 {
			t.Errorf("%d marker versions left in %s", n, r["bucket"])
		}
		if n := versionsUnder(t, env, drRegion, r["destination"].(string), DefaultMarkerPrefix); n != 0 {
			t.Errorf("%d marker versions left in %s", n, r["destination"])
		}
	}
	if out["max_rpo_seconds"] != max {
		t.Errorf("max_rpo_seconds %v, want %v", out["max_rpo_seconds"], max)
	}
	if de := out["done_evidence"].(string); !strings.HasPrefix(de, "S3 replication from "+primaryRegion+" to "+drRegion+" drained") || strings.Count(de, " -> ") != len(buckets) {
		t.Errorf("done_evidence %q: want the S3 RPO and each bucket's evidence", de)
	}
}

// sources names the primary's five buckets, as the DR installer config does.
func sources(t *testing.T) map[string]any {
	m := map[string]any{"enabled": true}
	for _, kind := range bucketKinds {
		m[kind+"_bucket_arn"] = "arn:aws:s3:::" + bucketFor(t, kind, primaryRegion)
	}
	return m
}

func maxf(a, b float64) float64 {
	if a > b {
		return a
	}
	return b
}

// A rule that publishes replication metrics is watched through CloudWatch:
// the backlog at the start is reported, and the wait ends on a datapoint
// of 0 pending operations.
func TestS3ReplicationWaitMetrics(t *testing.T) {
	t.Parallel()
	c, _ := start(t)
	// An emulator of its own, whose replication lag outlasts the action's
	// setup on a loaded machine, so that the first read sees the backlog.
	env := awstest.Start(t)
	if err := env.Emulator.SetTiming(context.Background(), emulator.Timing{emulator.S3Replication: 3}); err != nil {
		t.Fatal(err)
	}
	seedReplicatedBuckets(t, env)
	drCfg := sources(t)
	role := replicationRole(t, env)
	src, dst := bucketFor(t, "states", primaryRegion), bucketFor(t, "states", drRegion)
	rule := wholeBucketRule(dst)
	rule.Destination.Metrics = &s3types.Metrics{Status: s3types.MetricsStatusEnabled}
	putRules(t, env, primaryRegion, src, role, rule)
	for _, k := range []string{"a", "b", "c"} {
		if _, err := s3Client(t, env, primaryRegion).PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(src), Key: aws.String("state/" + k), Body: strings.NewReader("0123456789")}); err != nil {
			t.Fatal(err)
		}
	}
	out, err := c.Apply(tctx(t), "s3_replication_wait", env.Params(primaryRegion, map[string]any{
		"replica_region": drRegion, "buckets": drCfg, "poll_interval": "100ms", "max_wait": "30s",
	}))
	if err != nil {
		t.Fatal(err)
	}
	states := out["buckets"].([]any)[0].(map[string]any)
	if states["bucket"] != src || states["method"] != "metrics" || states["drained"] != true || states["pending_operations"] != float64(3) ||
		states["pending_bytes"] != float64(30) || states["marker_key"] != "" || !strings.Contains(states["evidence"].(string), "OperationsPendingReplication 0") {
		t.Errorf("states bucket %v", states)
	}
	if other := out["buckets"].([]any)[1].(map[string]any); other["method"] != "marker" {
		t.Errorf("a bucket without metrics: %v", other)
	}
	if !hasMessage(progressMessages(c), "3 operations (30 bytes) pending") {
		t.Errorf("progress %v, want the backlog seen", progressMessages(c))
	}
}

// SSE-KMS objects under a rule that does not select them are never
// replicated: the marker never arrives and the wait fails after max_wait,
// naming the bucket; a destination no longer versioned fails it at once.
func TestS3ReplicationWaitFailures(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	seedReplicatedBuckets(t, env)
	drCfg := sources(t)
	kmsEncrypt(t, env, primaryRegion, bucketFor(t, "modules", primaryRegion))
	params := env.Params(primaryRegion, map[string]any{"replica_region": drRegion, "buckets": drCfg, "poll_interval": "100ms", "max_wait": "2s"})
	_, err := c.Apply(tctx(t), "s3_replication_wait", params)
	pe := wantFatal(t, err, "did not drain within 2s", "modules bucket "+bucketFor(t, "modules", primaryRegion)+" -> "+bucketFor(t, "modules", drRegion)+": marker "+DefaultMarkerPrefix)
	if pe.Code != "ReplicationBacklog" || strings.Contains(pe.Message, "states bucket") {
		t.Errorf("error %+v, want only the modules bucket named", pe)
	}
	// Its marker was still cleaned up.
	if n := versionsUnder(t, env, primaryRegion, bucketFor(t, "modules", primaryRegion), DefaultMarkerPrefix); n != 0 {
		t.Errorf("%d marker versions left behind", n)
	}

	if _, err := s3Client(t, env, drRegion).PutBucketVersioning(context.Background(), &s3.PutBucketVersioningInput{Bucket: aws.String(bucketFor(t, "run_logs", drRegion)),
		VersioningConfiguration: &s3types.VersioningConfiguration{Status: s3types.BucketVersioningStatusSuspended}}); err != nil {
		t.Fatal(err)
	}
	params["max_wait"] = "30s"
	_, err = c.Apply(tctx(t), "s3_replication_wait", params)
	pe = wantFatal(t, err, "(ReplicationStatus FAILED)", bucketFor(t, "run_logs", primaryRegion))
	if pe.Code != "ReplicationFailed" {
		t.Errorf("code %q", pe.Code)
	}

	// The other config's block (the DR buckets) is refused, naming the mix-up.
	params["buckets"] = map[string]any{}
	for _, kind := range bucketKinds {
		params["buckets"].(map[string]any)[kind+"_bucket_arn"] = bucketFor(t, kind, drRegion)
	}
	_, err = c.Apply(tctx(t), "s3_replication_wait", params)
	wantFatal(t, err, "states bucket "+bucketFor(t, "states", drRegion)+" is in eu-west-3, not in eu-west-1")
}
