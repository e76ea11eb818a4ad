package scenarios_test

import (
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/topology"
)

// The checks and waits of region-switch.yaml that follow AWS's documents
// (docs/dr-guide.md, "What each check and wait means"), each against the
// emulator behaving as AWS does: refusals at pre-flight with nothing
// changed, the S3 backlog drained before the switchover, traffic moved only
// to services healthy behind their load balancer.

// s3Client is an S3 client of the emulator itself (not the proxy), as the
// operator's other tools would reach S3.
func (s *sim) s3Client(region string) *s3.Client {
	return s3.NewFromConfig(s.emu.Config(region), func(o *s3.Options) { o.UsePathStyle = true })
}

// putObjects writes n objects into a bucket: what users write while the
// installation runs.
func (s *sim) putObjects(t *testing.T, region, bucket, prefix string, n int) []string {
	t.Helper()
	var keys []string
	for i := range n {
		key := fmt.Sprintf("%s/object-%d", prefix, i)
		if _, err := s.s3Client(region).PutObject(context.Background(), &s3.PutObjectInput{
			Bucket: aws.String(bucket), Key: aws.String(key), Body: bytes.NewReader([]byte("state " + key)),
		}); err != nil {
			t.Fatal(err)
		}
		keys = append(keys, key)
	}
	return keys
}

// missingObjects returns the keys not (yet) in a bucket.
func (s *sim) missingObjects(t *testing.T, region, bucket string, keys []string) []string {
	t.Helper()
	var missing []string
	for _, k := range keys {
		if _, err := s.s3Client(region).HeadObject(context.Background(), &s3.HeadObjectInput{Bucket: aws.String(bucket), Key: aws.String(k)}); err != nil {
			missing = append(missing, k)
		}
	}
	return missing
}

// assertRefusedAtPreflight: the run failed before anything changed, naming
// every part of the cause, at step.
func assertRefusedAtPreflight(t *testing.T, s *sim, res result, before state, step string, causes ...string) {
	t.Helper()
	noPanic(t, "run", res)
	fin, ok := res.finished()
	if res.code != 1 || !ok || fin.Status != journal.StatusFailed || fin.RolledBack {
		t.Fatalf("exit %d, run_finished %+v; want failed at pre-flight, nothing to roll back\n%s", res.code, fin, res.stderr)
	}
	f := res.eventsOf(step, journal.StepFailed)
	if len(f) != 1 || f[0].Error == nil {
		t.Fatalf("%s: want one step_failed, got %+v", step, res.eventsOf(step, ""))
	}
	for _, c := range causes {
		if !strings.Contains(f[0].Error.Message, c) {
			t.Errorf("%s failed with %q, which does not say %q", step, f[0].Error.Message, c)
		}
	}
	t.Logf("%s refused: %s", step, f[0].Error.Message)
	for _, late := range []string{dr("approve_db"), dr("fence"), dr("s3_drain"), dr("db_switchover"), dr("db_failover"), dr("start_target"), dr("traffic"), dr("finish")} {
		if len(res.eventsOf(late, journal.StepStarted)) > 0 {
			t.Errorf("%s started although pre-flight refused", late)
		}
	}
	s.assertNoMutation(t)
	if d := diffState(before, s.state()); d != "" {
		t.Errorf("the refused run changed %s", d)
	}
}

// A bucket whose replication rule does not select SSE-KMS objects: S3 never
// replicates the installation's objects (the buckets encrypt with KMS by
// default), so the pre-flight refuses, naming the bucket and the setting.
func TestKMSReplicationRuleRefused(t *testing.T) {
	s := newSim(t)
	ctx := s.ctx()
	bucket := s.topo.Primary.Buckets["states"].Name
	c := s.s3Client(s.topo.Primary.Name)
	cur, err := c.GetBucketReplication(ctx, &s3.GetBucketReplicationInput{Bucket: aws.String(bucket)})
	if err != nil {
		t.Fatal(err)
	}
	cfg := cur.ReplicationConfiguration
	for i := range cfg.Rules {
		cfg.Rules[i].SourceSelectionCriteria = nil
	}
	if _, err := c.PutBucketReplication(ctx, &s3.PutBucketReplicationInput{Bucket: aws.String(bucket), ReplicationConfiguration: cfg}); err != nil {
		t.Fatal(err)
	}
	before := s.state()
	s.proxy.ResetLog()
	res := s.runbook(ctx, nil, s.failoverArgs()...)
	assertRefusedAtPreflight(t, s, res, before, dr("replication"), bucket, "SseKmsEncryptedObjects")
}

// A headless DR cluster (no DB instance): AWS refuses to promote it, so the
// pre-flight does, in either mode, naming the cluster and the fix.
func TestHeadlessTargetRefused(t *testing.T) {
	s := newSim(t)
	ctx := s.ctx()
	c := rds.NewFromConfig(s.emu.Config(s.topo.DR.Name))
	if _, err := c.DeleteDBInstance(ctx, &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(s.topo.DR.DBInstanceID), SkipFinalSnapshot: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	for deadline := time.Now().Add(time.Minute); ; time.Sleep(200 * time.Millisecond) { // a hang guard
		out, err := c.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(s.topo.DR.DBClusterID)})
		if err != nil {
			t.Fatal(err)
		}
		if len(out.DBClusters[0].DBClusterMembers) == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the DR cluster still has instances: %+v", out.DBClusters[0].DBClusterMembers)
		}
	}
	before := s.state()
	for _, mode := range []string{"planned", "unplanned"} {
		s.proxy.ResetLog()
		res := s.runbook(ctx, nil, s.failoverArgs("--var", "mode="+mode)...)
		assertRefusedAtPreflight(t, s, res, before, dr("check_db"), s.topo.DR.DBClusterID, "headless", "Add a DB instance", "Nothing was changed")
	}
}

// Planned mode waits, bounded, for the S3 replication backlog to drain
// before the switchover: the objects written before the run are in the DR
// buckets when the wait ends, and the run reports the S3 RPO next to the
// database's. A backlog that does not drain within s3_max_wait stops the
// run before the switchover, nothing changed, naming what is pending.
func TestS3BacklogWaitedBeforeSwitch(t *testing.T) {
	s := newSim(t)
	ctx := s.ctx()
	const replication = 3 // seconds per object version, source to destination
	if err := s.emu.SetTiming(ctx, emulator.Timing{emulator.S3Replication: replication}); err != nil {
		t.Fatal(err)
	}
	src, dst := s.topo.Primary.Buckets["states"].Name, s.topo.DR.Buckets["states"].Name
	keys := s.putObjects(t, s.topo.Primary.Name, src, "before-failover", 3)
	var missingAtDrain []string
	drained := false
	res := s.runbook(ctx, func(e journal.Record, _ *exec.Cmd) {
		if e.Type == journal.StepSucceeded && e.Step == dr("s3_drain") {
			drained = true
			missingAtDrain = s.missingObjects(t, s.topo.DR.Name, dst, keys)
		}
	}, s.failoverArgs()...)
	noPanic(t, "failover", res)
	if res.code != 0 {
		t.Fatalf("failover: exit %d\n%s", res.code, res.stderr)
	}
	if !drained || len(missingAtDrain) > 0 {
		t.Errorf("when the S3 drain ended (%v), the DR bucket %s still lacked %v", drained, dst, missingAtDrain)
	}
	d := res.eventsOf(dr("s3_drain"), journal.StepSucceeded)
	sw := res.eventsOf(dr("db_switchover"), journal.StepStarted)
	if len(d) != 1 || len(sw) != 1 || sw[0].Time.Before(d[0].Time) {
		t.Fatalf("s3_drain %v, db_switchover %v: want the drain to end before the switchover starts", d, sw)
	}
	if took := time.Duration(d[0].Duration); took < replication*time.Second {
		t.Errorf("the drain took %s, less than one object's replication (%ds): it did not wait", took, replication)
	}
	fin, _ := res.finished()
	rpo, _ := fin.Outputs["s3_rpo_seconds"].(float64)
	if rpo < replication || rpo > 10*replication {
		t.Errorf("output s3_rpo_seconds %v, want about %d", fin.Outputs["s3_rpo_seconds"], replication)
	}
	if rep, _ := fin.Outputs["s3_replication"].(string); strings.Count(rep, " -> ") != len(topology.BucketPurposes) || !strings.Contains(rep, src+" -> "+dst) {
		t.Errorf("output s3_replication %q: want each of the five buckets' evidence", fin.Outputs["s3_replication"])
	}
	if _, ok := fin.Outputs["replication_lag_before_failover_ms"]; !ok {
		t.Errorf("no database RPO figure next to the S3 one: %v", fin.Outputs)
	}
	t.Logf("S3 RPO %v s; %s", rpo, fin.Outputs["s3_replication"])

	// The way back, with a backlog that takes longer than allowed: the
	// failback stops before its switchover, nothing changed, naming it.
	if err := s.emu.SetTiming(ctx, emulator.Timing{emulator.S3Replication: 60}); err != nil {
		t.Fatal(err)
	}
	s.putObjects(t, s.topo.DR.Name, dst, "before-failback", 3)
	before := s.state()
	s.proxy.ResetLog()
	res = s.runbook(ctx, nil, append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs("--var", "s3_max_wait=2s")...)...)
	noPanic(t, "failback", res)
	fin, ok := res.finished()
	if res.code != 1 || !ok || fin.Status != journal.StatusFailed {
		t.Fatalf("failback with a backlog: exit %d, run_finished %+v; want failed\n%s", res.code, fin, res.stderr)
	}
	f := res.eventsOf(dr("s3_drain"), journal.StepFailed)
	if len(f) != 1 || f[0].Error == nil || f[0].Error.Code != "ReplicationBacklog" || !strings.Contains(f[0].Error.Message, "did not drain within 2s") || !strings.Contains(f[0].Error.Message, dst) {
		t.Fatalf("s3_drain: want ReplicationBacklog naming %s, got %+v", dst, res.eventsOf(dr("s3_drain"), ""))
	}
	t.Logf("s3_drain refused: %s", f[0].Error.Message)
	if len(res.eventsOf(dr("db_switchover"), journal.StepStarted)) > 0 || s.proxy.Count("rds", "SwitchoverGlobalCluster") > 0 {
		t.Errorf("the switchover started although the backlog had not drained")
	}
	for _, e := range s.proxy.Log() {
		if e.Forwarded && isMutating(e.Operation) && !isMarkerWrite(e) {
			t.Errorf("mutating call %s %s %s reached the emulator", e.Region, e.Service, e.Operation)
		}
	}
	if d := diffState(before, s.state()); d != "" {
		t.Errorf("the stopped failback changed %s", d)
	}
}

// Traffic moves only to services healthy behind their load balancer
// (DescribeTargetHealth): targets that fail their health checks stop the
// run before traffic, which is rolled back naming the target group and the
// reason; targets still in their initial checks are waited for, and the
// approval then says "healthy behind the load balancer".
func TestTrafficWaitsForHealthyTargets(t *testing.T) {
	s := newSim(t)
	ctx := s.ctx()
	tg := s.topo.DR.TargetGroups["server"]
	if err := s.emu.SetUnhealthyTargets(ctx, tg, 1, ""); err != nil {
		t.Fatal(err)
	}
	res := s.runbook(ctx, nil, s.failoverArgs("--var", "healthy_targets_timeout=3s")...)
	noPanic(t, "failover", res)
	assertRolledBack(t, s, res, dr("target_serving"), "not healthy behind their load balancer", "1 of 2 healthy", "1 unhealthy", "Target.ResponseCodeMismatch")
	for _, step := range []string{dr("approve_traffic"), dr("traffic"), dr("dns_server"), dr("dns_iot")} {
		if len(res.eventsOf(step, journal.StepStarted)) > 0 {
			t.Errorf("%s started although the DR services were not healthy", step)
		}
	}
	if n := s.proxy.Count("route53", "ChangeResourceRecordSets"); n != 0 {
		t.Errorf("ChangeResourceRecordSets reached the emulator %d times", n)
	}

	// Healed, but slow to pass the checks: the run waits, then moves traffic.
	const healthy = 6 // seconds from a task's start to its target's healthy
	if err := s.emu.SetUnhealthyTargets(ctx, tg, 0, ""); err != nil {
		t.Fatal(err)
	}
	if err := s.emu.SetTiming(ctx, emulator.Timing{emulator.ELBTargetHealthy: healthy}); err != nil {
		t.Fatal(err)
	}
	res = s.runbook(ctx, nil, s.failoverArgs()...)
	noPanic(t, "failover", res)
	if res.code != 0 {
		t.Fatalf("failover: exit %d\n%s", res.code, res.stderr)
	}
	ts := res.eventsOf(dr("target_serving"), journal.StepSucceeded)
	if len(ts) != 1 {
		t.Fatalf("target_serving: %+v", res.eventsOf(dr("target_serving"), ""))
	}
	waited := false
	for _, e := range res.eventsOf(dr("target_serving"), journal.Progress) {
		waited = waited || strings.Contains(e.Message, "initial")
	}
	if !waited {
		t.Errorf("target_serving never saw a target in its initial checks: it did not wait")
	}
	evidence, _ := ts[0].Outputs["evidence"].(string)
	asked := res.eventsOf(dr("approve_traffic"), journal.ApprovalRequested)
	if len(asked) != 1 || asked[0].Time.Before(ts[0].Time) || !strings.Contains(asked[0].Message, "healthy behind the load balancer ("+evidence+")") ||
		!strings.Contains(evidence, "2 of 2 healthy") {
		t.Errorf("approve_traffic %+v: want it asked after target_serving, saying healthy behind the load balancer with %q", asked, evidence)
	}
	fin, _ := res.finished()
	if fin.Outputs["serving_evidence"] != evidence {
		t.Errorf("output serving_evidence %q, want %q", fin.Outputs["serving_evidence"], evidence)
	}
	s.assertActiveIn(s.state(), s.topo.DR, s.topo.Primary)
}
