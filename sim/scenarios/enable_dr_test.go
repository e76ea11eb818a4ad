package scenarios_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	s3types "github.com/aws/aws-sdk-go-v2/service/s3/types"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/topology"
)

// runbooks/enable-dr.yaml on an installation whose primary buckets held
// objects before their replication rules existed: the rules leave those
// objects alone (as S3 does), the runbook's Batch Operations jobs copy them.
// A bucket whose rule covers only part of it (S3 would leave the rest
// behind) is refused by the pre-flight, naming the bucket and its filter,
// before any job; once the rule is fixed, the jobs copy what is missing.
func TestEnableDRReplicatesExistingObjects(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	ctx := s.ctx()
	src := s3.NewFromConfig(s.emu.Config(s.topo.Primary.Name), func(o *s3.Options) { o.UsePathStyle = true })
	dst := s3.NewFromConfig(s.emu.Config(s.topo.DR.Name), func(o *s3.Options) { o.UsePathStyle = true })

	// Objects written before the rules: take each primary bucket's rules away,
	// write, put the rules back. The modules bucket's rule comes back limited
	// to modules/, so its object outside that prefix cannot be replicated.
	existing := map[string][]string{} // purpose -> keys
	for _, purpose := range topology.BucketPurposes {
		bucket := s.topo.Primary.Buckets[purpose].Name
		if _, err := src.DeleteBucketReplication(ctx, &s3.DeleteBucketReplicationInput{Bucket: aws.String(bucket)}); err != nil {
			t.Fatal(err)
		}
		keys := []string{purpose + "/object-1", purpose + "/nested/object-2", purpose + "/object-3.json"}
		if purpose == "modules" {
			keys = append(keys, "legacy/outside-the-rule.zip")
		}
		for _, k := range keys {
			putObject(t, src, bucket, k, objectBody(bucket, k))
		}
		existing[purpose] = keys
		prefix := ""
		if purpose == "modules" {
			prefix = "modules/"
		}
		s.putReplicationRule(t, src, purpose, prefix)
	}
	// The rules work for new objects, and left the older ones alone.
	states := s.topo.Primary.Buckets["states"].Name
	putObject(t, src, states, "states/written-after-the-rules", objectBody(states, "states/written-after-the-rules"))
	// S3 replication is asynchronous: the object arrives after the emulator's lag.
	arrived := false
	for deadline := time.Now().Add(15 * time.Second); !arrived && time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		arrived = hasObject(t, dst, s.topo.DR.Buckets["states"].Name, "states/written-after-the-rules")
	}
	if !arrived {
		t.Fatal("the emulator did not replicate an object written after the rules")
	}
	existing["states"] = append(existing["states"], "states/written-after-the-rules")
	for purpose, keys := range existing {
		for _, k := range keys {
			if k != "states/written-after-the-rules" && hasObject(t, dst, s.topo.DR.Buckets[purpose].Name, k) {
				t.Fatalf("%s was replicated by the rules although it existed before them", k)
			}
		}
	}
	reports := "spacelift-batch-reports-" + s.topo.AccountID
	if _, err := src.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(reports),
		CreateBucketConfiguration: &s3types.CreateBucketConfiguration{LocationConstraint: s3types.BucketLocationConstraint(s.topo.Primary.Name)}}); err != nil {
		t.Fatal(err)
	}

	args := []string{"run", enableDR, "--auto-approve", "-o", "json",
		"--var", "primary=@" + filepath.Join(s.dir, topology.PrimaryConfigFile), "--var", "dr=@" + filepath.Join(s.dir, topology.DRConfigFile),
		"--var", "batch_role_arn=" + s.topo.BatchRoleARN, "--var", "report_bucket=" + reports, "--var", "report_scope=AllTasks",
		"--var", "poll_interval=250ms", "--state", filepath.Join(s.dir, "state")}

	t.Run("a rule covering part of a bucket is refused before any job", func(t *testing.T) {
		res := s.runbook(ctx, nil, args...)
		if res.code != 1 {
			t.Fatalf("exit %d, want 1\n%s", res.code, res.stderr)
		}
		f := res.eventsOf("replication", journal.StepFailed)
		if len(f) != 1 || f[0].Error == nil || !strings.Contains(f[0].Error.Message, "modules bucket "+s.topo.Primary.Buckets["modules"].Name) ||
			!strings.Contains(f[0].Error.Message, `covers only part of the bucket (prefix "modules/")`) || strings.Contains(f[0].Error.Message, "states bucket") {
			t.Errorf("replication check: want a failure naming exactly the modules bucket's partial rule, got %+v", f)
		}
		if started := res.eventsOf("primary_states", ""); len(started) != 0 {
			t.Errorf("a job step ran after the refused pre-flight: %+v", started)
		}
		for purpose, keys := range existing {
			for _, k := range keys {
				if k != "states/written-after-the-rules" && hasObject(t, dst, s.topo.DR.Buckets[purpose].Name, k) {
					t.Errorf("%s reached the DR %s bucket although no job ran", k, purpose)
				}
			}
		}
	})

	t.Run("run again after the fix: only what is missing", func(t *testing.T) {
		s.putReplicationRule(t, src, "modules", "")
		res := s.runbook(ctx, nil, args...)
		if res.code != 0 {
			t.Fatalf("exit %d\n%s", res.code, res.stderr)
		}
		fin := res.eventsOf("", journal.RunFinished)
		if len(fin) != 1 {
			t.Fatalf("run_finished: %+v", fin)
		}
		jobs, _ := fin[0].Outputs["primary_to_dr"].(map[string]any)
		total := 0.0
		for _, purpose := range topology.BucketPurposes {
			job, _ := jobs[purpose].(map[string]any)
			// The objects older than the rules; the one written after them was
			// replicated by the rule (ReplicationStatus COMPLETED) and is left out.
			want := float64(len(existing[purpose]))
			if purpose == "states" {
				want--
			}
			total += want
			if job["status"] != "Complete" || job["tasks_total"] != want || job["tasks_succeeded"] != want {
				t.Errorf("%s job %+v, want Complete with %v of %v tasks", purpose, job, want, want)
			}
		}
		if fin[0].Outputs["objects_replicated"] != total {
			t.Errorf("objects_replicated %v, want %v", fin[0].Outputs["objects_replicated"], total)
		}
		// The completion report of the states bucket's job.
		if ok := res.eventsOf("primary_states", journal.StepSucceeded); len(ok) == 1 {
			job := ok[0].Outputs["jobs"].([]any)[0].(map[string]any)
			runID := res.eventsOf("", journal.RunStarted)[0].RunID
			key := fmt.Sprintf("runbook/enable-dr/%s/primary/states/job-%s/manifest.json", runID, job["job_id"])
			if !hasObject(t, src, reports, key) {
				t.Errorf("no completion report at s3://%s/%s", reports, key)
			}
		}
		for purpose, keys := range existing {
			for _, k := range keys {
				b, err := getObject(dst, s.topo.DR.Buckets[purpose].Name, k)
				if err != nil || !bytes.Equal(b, objectBody(s.topo.Primary.Buckets[purpose].Name, k)) {
					t.Errorf("%s in the DR %s bucket: %q, %v", k, purpose, b, err)
				}
			}
		}
	})
}

func objectBody(bucket, key string) []byte { return []byte("content of " + bucket + "/" + key + "\n") }

func putObject(t *testing.T, c *s3.Client, bucket, key string, body []byte) {
	t.Helper()
	if _, err := c.PutObject(context.Background(), &s3.PutObjectInput{Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader(body)}); err != nil {
		t.Fatal(err)
	}
}

func getObject(c *s3.Client, bucket, key string) ([]byte, error) {
	out, err := c.GetObject(context.Background(), &s3.GetObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	if err != nil {
		return nil, err
	}
	defer out.Body.Close()
	return io.ReadAll(out.Body)
}

func hasObject(t *testing.T, c *s3.Client, bucket, key string) bool {
	t.Helper()
	_, err := c.HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(key)})
	var nf *s3types.NotFound
	switch {
	case err == nil:
		return true
	case errors.As(err, &nf):
		return false
	}
	t.Fatalf("HeadObject %s/%s: %v", bucket, key, err)
	return false
}

// putReplicationRule gives a primary bucket the seeded rule to its DR peer,
// limited to prefix.
func (s *sim) putReplicationRule(t *testing.T, c *s3.Client, purpose, prefix string) {
	t.Helper()
	_, err := c.PutBucketReplication(context.Background(), &s3.PutBucketReplicationInput{
		Bucket: aws.String(s.topo.Primary.Buckets[purpose].Name),
		ReplicationConfiguration: &s3types.ReplicationConfiguration{
			Role: aws.String(s.topo.ReplicationRoleARN),
			Rules: []s3types.ReplicationRule{{
				ID: aws.String("replicate-to-" + s.topo.DR.Name), Priority: aws.Int32(1), Status: s3types.ReplicationRuleStatusEnabled,
				Filter:                  &s3types.ReplicationRuleFilter{Prefix: aws.String(prefix)},
				DeleteMarkerReplication: &s3types.DeleteMarkerReplication{Status: s3types.DeleteMarkerReplicationStatusEnabled},
				// The buckets are SSE-KMS: S3 replicates their objects only with these.
				SourceSelectionCriteria: &s3types.SourceSelectionCriteria{SseKmsEncryptedObjects: &s3types.SseKmsEncryptedObjects{Status: s3types.SseKmsEncryptedObjectsStatusEnabled}},
				Destination: &s3types.Destination{Bucket: aws.String(s.topo.DR.Buckets[purpose].ARN),
					EncryptionConfiguration: &s3types.EncryptionConfiguration{ReplicaKmsKeyID: aws.String(s.topo.DR.KMSKeyARN)}},
			}},
		},
	})
	if err != nil {
		t.Fatal(err)
	}
}
