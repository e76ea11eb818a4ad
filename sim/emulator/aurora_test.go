package emulator_test

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

	"github.com/runbookhq/runbook/sim/emulator"
)

// The Aurora Global Database tests run one after another on the shared emulator
// (every transition lasts `long`, skipped with advance), each with global clusters of
// its own. The regional-outage tests use regions no other test uses, so that a dark
// region never meets another test's resources.

// gdb is a global database made for a test: a writer cluster in one region and a
// secondary in another, each with one DB instance unless the test says otherwise.
type gdb struct {
	id                     string
	primary, dr            string // regions
	primaryARN, drARN      string
	primaryInst, drInst    string
	p, d                   *rds.Client
	primaryID, secondaryID string
}

type gdbOptions struct {
	engine, version, drVersion string
	headlessDR                 bool
}

func newGDB(t *testing.T, id, primaryRegion, drRegion string, o gdbOptions) gdb {
	t.Helper()
	ctx := context.Background()
	if o.engine == "" {
		o.engine, o.version = "aurora-postgresql", "15.4"
	}
	if o.drVersion == "" {
		o.drVersion = o.version
	}
	g := gdb{id: id, primary: primaryRegion, dr: drRegion,
		p: rds.NewFromConfig(shared.Config(primaryRegion)), d: rds.NewFromConfig(shared.Config(drRegion)),
		primaryID: id + "-primary", secondaryID: id + "-dr"}
	must(g.p.CreateGlobalCluster(ctx, &rds.CreateGlobalClusterInput{
		GlobalClusterIdentifier: aws.String(id), Engine: aws.String(o.engine), EngineVersion: aws.String(o.version),
	})).ok(t)
	a := must(g.p.CreateDBCluster(ctx, &rds.CreateDBClusterInput{
		DBClusterIdentifier: aws.String(g.primaryID), Engine: aws.String(o.engine), EngineVersion: aws.String(o.version),
		GlobalClusterIdentifier: aws.String(id), MasterUsername: aws.String("spacelift"), MasterUserPassword: aws.String("secret-password"),
	})).ok(t).DBCluster
	b := must(g.d.CreateDBCluster(ctx, &rds.CreateDBClusterInput{
		DBClusterIdentifier: aws.String(g.secondaryID), Engine: aws.String(o.engine), EngineVersion: aws.String(o.drVersion),
		GlobalClusterIdentifier: aws.String(id),
	})).ok(t).DBCluster
	g.primaryARN, g.drARN = aws.ToString(a.DBClusterArn), aws.ToString(b.DBClusterArn)
	g.primaryInst = g.addInstance(t, g.p, g.primaryID, o.engine)
	if !o.headlessDR {
		g.drInst = g.addInstance(t, g.d, g.secondaryID, o.engine)
	}
	return g
}

func (g *gdb) addInstance(t *testing.T, c *rds.Client, cluster, engine string) string {
	t.Helper()
	out := must(c.CreateDBInstance(context.Background(), &rds.CreateDBInstanceInput{
		DBInstanceIdentifier: aws.String(cluster + "-1"), DBClusterIdentifier: aws.String(cluster),
		Engine: aws.String(engine), DBInstanceClass: aws.String("db.r6g.large"),
	})).ok(t)
	return aws.ToString(out.DBInstance.DBInstanceIdentifier)
}

func (g gdb) describe(t *testing.T, c *rds.Client) rdstypes.GlobalCluster {
	t.Helper()
	out := must(c.DescribeGlobalClusters(context.Background(), &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String(g.id)})).ok(t)
	if len(out.GlobalClusters) != 1 {
		t.Fatalf("DescribeGlobalClusters(%s) returned %d clusters", g.id, len(out.GlobalClusters))
	}
	return out.GlobalClusters[0]
}

func writer(gc rdstypes.GlobalCluster) string {
	for _, m := range gc.GlobalClusterMembers {
		if aws.ToBool(m.IsWriter) {
			return aws.ToString(m.DBClusterArn)
		}
	}
	return ""
}

func member(t *testing.T, gc rdstypes.GlobalCluster, arn string) rdstypes.GlobalClusterMember {
	t.Helper()
	for _, m := range gc.GlobalClusterMembers {
		if aws.ToString(m.DBClusterArn) == arn {
			return m
		}
	}
	t.Fatalf("no member %s in %+v", arn, gc.GlobalClusterMembers)
	return rdstypes.GlobalClusterMember{}
}

// cluster reads a member cluster in its own region: its status and which of its
// instances is the writer ("" when none).
func cluster(t *testing.T, c *rds.Client, id string) (status, writerInstance string) {
	t.Helper()
	out := must(c.DescribeDBClusters(context.Background(), &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(id)})).ok(t)
	if len(out.DBClusters) != 1 {
		t.Fatalf("DescribeDBClusters(%s): %d clusters", id, len(out.DBClusters))
	}
	cl := out.DBClusters[0]
	if len(cl.DBClusterMembers) == 0 {
		t.Fatalf("cluster %s has no instances", id)
	}
	for _, m := range cl.DBClusterMembers {
		if aws.ToBool(m.IsClusterWriter) {
			writerInstance = aws.ToString(m.DBInstanceIdentifier)
		}
	}
	return aws.ToString(cl.Status), writerInstance
}

func fraction(t *testing.T, f float64) {
	t.Helper()
	if err := shared.Advance(context.Background(), time.Duration(f*float64(long))); err != nil {
		t.Fatal(err)
	}
}

func failoverState(gc rdstypes.GlobalCluster) string {
	if gc.FailoverState == nil {
		return ""
	}
	return string(gc.FailoverState.Status)
}

func lastHistory(t *testing.T, id string) emulator.AuroraOperation {
	t.Helper()
	st := must(shared.Aurora(context.Background())).ok(t)
	for i := len(st.History) - 1; i >= 0; i-- {
		if st.History[i].GlobalCluster == id {
			return st.History[i]
		}
	}
	t.Fatalf("no finished operation of %s in %+v", id, st.History)
	return emulator.AuroraOperation{}
}

func TestAuroraSwitchoverAndFailover(t *testing.T) {
	ctx := context.Background()
	g := newGDB(t, "sw-global", primary, dr, gdbOptions{})

	gc := g.describe(t, g.d)
	if writer(gc) != g.primaryARN || aws.ToString(gc.Status) != "available" || gc.FailoverState != nil {
		t.Fatalf("initial: writer %s status %s failover state %+v", writer(gc), aws.ToString(gc.Status), gc.FailoverState)
	}
	if m := member(t, gc, g.drARN); m.SynchronizationStatus != rdstypes.GlobalClusterMemberSynchronizationStatusConnected {
		t.Errorf("secondary: synchronization %q, want connected", m.SynchronizationStatus)
	}
	// A secondary's instances are all readers; the primary has its writer.
	if st, w := cluster(t, g.d, g.secondaryID); st != "available" || w != "" {
		t.Errorf("secondary cluster: status %s, writer instance %q; want available with no writer", st, w)
	}
	if _, w := cluster(t, g.p, g.primaryID); w != g.primaryInst {
		t.Errorf("primary cluster: writer instance %q, want %s", w, g.primaryInst)
	}
	_, err := g.d.DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String("no-such-global")})
	wantCode(t, err, "GlobalClusterNotFoundFault")
	if up := must(g.d.DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String("SW-GLOBAL")})).ok(t); len(up.GlobalClusters) != 1 {
		t.Errorf("the identifier is not case-sensitive: got %d clusters for SW-GLOBAL", len(up.GlobalClusters))
	}

	// Refusals: identifier instead of ARN, the writer itself, a non-member, a cluster
	// that does not exist, the wrong region, both flags.
	sw := func(c *rds.Client, target string) error {
		_, err := c.SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(target)})
		return err
	}
	wantCode(t, sw(g.p, g.secondaryID), "InvalidParameterValue")
	wantCode(t, sw(g.p, g.primaryARN), "InvalidParameterValue")
	lone := must(g.d.CreateDBCluster(ctx, &rds.CreateDBClusterInput{
		DBClusterIdentifier: aws.String("sw-lone"), Engine: aws.String("aurora-postgresql"),
		MasterUsername: aws.String("x"), MasterUserPassword: aws.String("secret-password"),
	})).ok(t).DBCluster
	wantCode(t, sw(g.p, aws.ToString(lone.DBClusterArn)), "InvalidParameterValue")
	wantCode(t, sw(g.p, strings.Replace(g.drARN, "sw-global-dr", "sw-nothing", 1)), "DBClusterNotFoundFault")
	// A switchover is issued in the current primary's region (User Guide).
	err = sw(g.d, g.drARN)
	wantCode(t, err, "InvalidParameterValue")
	if !strings.Contains(err.Error(), "must be called in the Region of the current primary DB cluster ("+primary+")") {
		t.Errorf("wrong-region refusal does not say where: %v", err)
	}
	_, err = g.d.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id),
		TargetDbClusterIdentifier: aws.String(g.drARN), AllowDataLoss: aws.Bool(true), Switchover: aws.Bool(true)})
	wantCode(t, err, "InvalidParameterCombination")
	if gc := g.describe(t, g.d); writer(gc) != g.primaryARN || gc.FailoverState != nil {
		t.Fatalf("a refused call changed the global cluster: %+v", gc)
	}

	// Planned switchover, issued in the primary's region.
	out := must(g.p.SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN)})).ok(t)
	if s := aws.ToString(out.GlobalCluster.Status); s != "switching-over" {
		t.Errorf("SwitchoverGlobalCluster returned status %q, want switching-over", s)
	}
	gc = g.describe(t, g.d)
	if aws.ToString(gc.Status) != "switching-over" || writer(gc) != g.primaryARN || failoverState(gc) != "pending" {
		t.Errorf("just started: status %s writer %s FailoverState %q; want switching-over, old writer, pending", aws.ToString(gc.Status), writer(gc), failoverState(gc))
	}
	if gc.FailoverState == nil || aws.ToString(gc.FailoverState.ToDbClusterArn) != g.drARN || aws.ToString(gc.FailoverState.FromDbClusterArn) != g.primaryARN || aws.ToBool(gc.FailoverState.IsDataLossAllowed) {
		t.Errorf("during switchover: FailoverState = %+v", gc.FailoverState)
	}
	fraction(t, 0.3)
	gc = g.describe(t, g.d)
	if failoverState(gc) != "switching-over" {
		t.Errorf("FailoverState.Status %q during a switchover, want switching-over (API reference)", failoverState(gc))
	}
	// Both clusters are unavailable while they take their new roles; no writer instance in the target yet.
	if st, w := cluster(t, g.d, g.secondaryID); st != "failing-over" || w != "" {
		t.Errorf("target during switchover: status %s writer instance %q", st, w)
	}
	if st, _ := cluster(t, g.p, g.primaryID); st != "failing-over" {
		t.Errorf("old primary during switchover: status %s", st)
	}
	_, err = g.d.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN), AllowDataLoss: aws.Bool(true)})
	wantCode(t, err, "InvalidGlobalClusterStateFault")
	advance(t)
	gc = g.describe(t, g.p)
	if aws.ToString(gc.Status) != "available" || writer(gc) != g.drARN || gc.FailoverState != nil {
		t.Fatalf("after switchover: status %s writer %s failover state %+v", aws.ToString(gc.Status), writer(gc), gc.FailoverState)
	}
	if m := member(t, gc, g.primaryARN); m.SynchronizationStatus != rdstypes.GlobalClusterMemberSynchronizationStatusConnected {
		t.Errorf("old primary after switchover: synchronization %q, want connected", m.SynchronizationStatus)
	}
	if st, w := cluster(t, g.d, g.secondaryID); st != "available" || w != g.drInst {
		t.Errorf("new primary: status %s writer instance %q, want available with %s", st, w, g.drInst)
	}
	if st, w := cluster(t, g.p, g.primaryID); st != "available" || w != "" {
		t.Errorf("old primary: status %s writer instance %q, want available, readers only", st, w)
	}
	if op := lastHistory(t, g.id); op.Kind != "switchover" || op.CalledInRegion != primary || op.AllowDataLoss {
		t.Errorf("history: %+v", op)
	}

	// The old primary is now a secondary: its lags are CloudWatch metrics in its region.
	// Aurora PostgreSQL publishes both AuroraGlobalDBRPOLag and AuroraGlobalDBReplicationLag.
	must(0, shared.SetLagMetric(ctx, g.primaryARN, emulator.MetricRPOLag, 1234)).ok(t)
	must(0, shared.SetLagMetric(ctx, g.primaryARN, emulator.MetricReplicationLag, 2000)).ok(t)
	for metric, want := range map[string]float64{emulator.MetricRPOLag: 1234, emulator.MetricReplicationLag: 2000} {
		if got := newestLag(t, primary, g.primaryID, metric); got == nil || *got != want {
			t.Errorf("%s of %s = %v, want %v", metric, g.primaryID, got, want)
		}
	}
	// The same through the SDK's default protocol (Smithy RPC v2 CBOR).
	cbor := cloudwatch.NewFromConfig(shared.Config(primary))
	now := simNow(t)
	data := must(cbor.GetMetricData(ctx, &cloudwatch.GetMetricDataInput{
		StartTime: aws.Time(now.Add(-10 * time.Minute)), EndTime: aws.Time(now.Add(time.Hour)),
		MetricDataQueries: []cwtypes.MetricDataQuery{{Id: aws.String("lag"), MetricStat: &cwtypes.MetricStat{
			Metric: &cwtypes.Metric{Namespace: aws.String("AWS/RDS"), MetricName: aws.String(emulator.MetricRPOLag),
				Dimensions: []cwtypes.Dimension{{Name: aws.String("DBClusterIdentifier"), Value: aws.String(g.primaryID)}}},
			Period: aws.Int32(60), Stat: aws.String("Maximum"),
		}}},
	})).ok(t)
	if len(data.MetricDataResults) != 1 || len(data.MetricDataResults[0].Values) == 0 || data.MetricDataResults[0].Values[0] != 1234 ||
		len(data.MetricDataResults[0].Timestamps) != len(data.MetricDataResults[0].Values) || data.MetricDataResults[0].Timestamps[0].IsZero() {
		t.Errorf("GetMetricData over CBOR = %+v, want the lag 1234 with timestamps", data.MetricDataResults)
	}
	_, err = cbor.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{Namespace: aws.String("AWS/RDS"), MetricName: aws.String("x"),
		StartTime: aws.Time(now), EndTime: aws.Time(now.Add(-time.Hour)), Period: aws.Int32(60), Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum}})
	if code(err) == "" || strings.HasPrefix(code(err), "non-API") {
		t.Errorf("an invalid request over CBOR: %v, want an API error", err)
	}

	// FailoverGlobalCluster without AllowDataLoss is a switchover (API reference): issued
	// in the primary's region (now the DR one), no data loss allowed.
	fo := must(g.d.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.primaryARN)})).ok(t)
	if s := aws.ToString(fo.GlobalCluster.Status); s != "switching-over" {
		t.Errorf("FailoverGlobalCluster without flags: status %q, want switching-over", s)
	}
	fraction(t, 0.3)
	if gc := g.describe(t, g.p); failoverState(gc) != "switching-over" || aws.ToBool(gc.FailoverState.IsDataLossAllowed) {
		t.Errorf("FailoverGlobalCluster without flags: FailoverState %+v, want a switchover", gc.FailoverState)
	}
	advance(t)
	if op := lastHistory(t, g.id); op.Kind != "switchover" || op.AllowDataLoss || op.CalledInRegion != dr {
		t.Errorf("history after FailoverGlobalCluster without flags: %+v", op)
	}

	// Unplanned failover to the DR cluster: issued anywhere but the target's region it is refused.
	must(0, shared.SetReplicationLag(ctx, g.drARN, 850)).ok(t)
	_, err = g.p.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN), AllowDataLoss: aws.Bool(true)})
	wantCode(t, err, "InvalidParameterValue")
	fo = must(g.d.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN), AllowDataLoss: aws.Bool(true)})).ok(t)
	if s := aws.ToString(fo.GlobalCluster.Status); s != "failing-over" {
		t.Errorf("FailoverGlobalCluster returned status %q, want failing-over", s)
	}
	fraction(t, 0.3)
	if gc := g.describe(t, g.d); failoverState(gc) != "failing-over" || !aws.ToBool(gc.FailoverState.IsDataLossAllowed) {
		t.Errorf("during failover: FailoverState %+v", gc.FailoverState)
	}
	advance(t)
	gc = g.describe(t, g.d)
	if writer(gc) != g.drARN || aws.ToString(gc.Status) != "available" || gc.FailoverState != nil {
		t.Fatalf("after failover (both regions up): writer %s status %s state %+v", writer(gc), aws.ToString(gc.Status), gc.FailoverState)
	}
	if m := member(t, gc, g.primaryARN); m.SynchronizationStatus != rdstypes.GlobalClusterMemberSynchronizationStatusPendingResync {
		t.Errorf("old writer after failover: synchronization %q, want pending-resync", m.SynchronizationStatus)
	}
	if op := lastHistory(t, g.id); op.Kind != "failover" || op.LostWritesMs != 850 || op.CalledInRegion != dr {
		t.Errorf("failover record %+v, want a failover called in %s that lost 850 ms", op, dr)
	}
	// A switchover back needs the resync finished.
	err = sw(g.d, g.primaryARN)
	wantCode(t, err, "InvalidDBClusterStateFault")
	advance(t) // aurora_resync
	if m := member(t, g.describe(t, g.p), g.primaryARN); m.SynchronizationStatus != rdstypes.GlobalClusterMemberSynchronizationStatusConnected {
		t.Errorf("after resync: synchronization %q, want connected", m.SynchronizationStatus)
	}
	must(0, sw(g.d, g.primaryARN)).ok(t)
	advance(t)
}

// AWS refuses to promote a headless secondary (no DB instance) and clusters whose
// engine versions differ (User Guide).
func TestAuroraRefusesHeadlessTargetsAndVersionMismatch(t *testing.T) {
	ctx := context.Background()
	g := newGDB(t, "headless-global", primary, dr, gdbOptions{headlessDR: true})
	_, err := g.p.SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN)})
	wantCode(t, err, "InvalidDBClusterStateFault")
	if !strings.Contains(err.Error(), "no DB instances") {
		t.Errorf("headless refusal does not name the fix: %v", err)
	}
	_, err = g.d.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN), AllowDataLoss: aws.Bool(true)})
	wantCode(t, err, "InvalidDBClusterStateFault")
	g.drInst = g.addInstance(t, g.d, g.secondaryID, "aurora-postgresql")
	must(g.p.SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN)})).ok(t)
	advance(t)

	v := newGDB(t, "version-global", primary, dr, gdbOptions{engine: "aurora-postgresql", version: "15.4", drVersion: "15.3"})
	_, err = v.p.SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(v.id), TargetDbClusterIdentifier: aws.String(v.drARN)})
	wantCode(t, err, "InvalidDBClusterStateFault")
	if !strings.Contains(err.Error(), "15.3") || !strings.Contains(err.Error(), "15.4") {
		t.Errorf("version refusal does not name the versions: %v", err)
	}
	_, err = v.d.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(v.id), TargetDbClusterIdentifier: aws.String(v.drARN), AllowDataLoss: aws.Bool(true)})
	wantCode(t, err, "InvalidDBClusterStateFault")
	if gc := v.describe(t, v.d); writer(gc) != v.primaryARN || aws.ToString(gc.Status) != "available" {
		t.Errorf("refused operations changed the global cluster: %+v", gc)
	}
}

// A failover while the old primary's region is dark: the target is promoted (writer
// flag, available cluster with a writer instance), but the global cluster is not
// available again, nor its FailoverState empty, until that region returns; then the
// old primary resynchronises for aurora_resync.
func TestAuroraFailoverWhileOldPrimaryRegionIsDark(t *testing.T) {
	ctx := context.Background()
	const pr, sr = "us-east-2", "us-west-2"
	g := newGDB(t, "dark-global", pr, sr, gdbOptions{})
	must(0, shared.SetReplicationLag(ctx, g.drARN, 700)).ok(t)
	if got := newestLag(t, sr, g.secondaryID, emulator.MetricRPOLag); got == nil || *got != 700 {
		t.Fatalf("RPO lag before the outage = %v, want 700", got)
	}
	must(0, shared.SetRegionDark(ctx, pr, true)).ok(t)
	t.Cleanup(func() { _ = shared.SetRegionDark(context.Background(), pr, false) })
	darkAt := simNow(t)
	if dark := must(shared.DarkRegions(ctx)).ok(t); dark[pr] == 0 {
		t.Fatalf("dark regions = %v, want %s", dark, pr)
	}
	// Replication (and its metrics) stop with the primary: ten minutes on, the newest
	// datapoint is still the one from before the outage.
	fraction(t, 1) // 10 minutes
	newest := newestLagTime(t, sr, g.secondaryID, emulator.MetricRPOLag)
	if newest.IsZero() || newest.After(darkAt) || darkAt.Sub(newest) > time.Minute {
		t.Errorf("newest RPO lag datapoint at %s, want the last minute before the outage at %s", newest, darkAt)
	}

	must(g.d.FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN), AllowDataLoss: aws.Bool(true)})).ok(t)
	advance(t)
	gc := g.describe(t, g.d)
	if writer(gc) != g.drARN {
		t.Fatalf("after the failover's period: writer %s, want %s", writer(gc), g.drARN)
	}
	if st, w := cluster(t, g.d, g.secondaryID); st != "available" || w != g.drInst {
		t.Errorf("new primary: status %s writer instance %q, want available with %s", st, w, g.drInst)
	}
	for i := 0; i < 2; i++ { // however long the region stays dark
		if aws.ToString(gc.Status) == "available" || failoverState(gc) != "failing-over" || aws.ToString(gc.FailoverState.ToDbClusterArn) != g.drARN {
			t.Errorf("old primary's region dark: status %s FailoverState %+v; want failing-over until it returns", aws.ToString(gc.Status), gc.FailoverState)
		}
		if m := member(t, gc, g.primaryARN); aws.ToBool(m.IsWriter) || m.SynchronizationStatus != rdstypes.GlobalClusterMemberSynchronizationStatusPendingResync {
			t.Errorf("old primary while dark: %+v", m)
		}
		advance(t)
		gc = g.describe(t, g.d)
	}
	st := must(shared.Aurora(ctx)).ok(t)
	for _, c := range st.GlobalClusters {
		if c.GlobalCluster == g.id && (c.Operation == nil || !strings.Contains(c.Operation.Phase, "waiting for the old primary's region "+pr)) {
			t.Errorf("control view while waiting: %+v", c.Operation)
		}
	}
	// Another operation meanwhile is refused.
	_, err := g.d.SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.primaryARN)})
	wantCode(t, err, "InvalidGlobalClusterStateFault")

	// The region returns: the old primary rejoins, resynchronising; the global cluster is available.
	must(0, shared.SetRegionDark(ctx, pr, false)).ok(t)
	gc = g.describe(t, g.d)
	if aws.ToString(gc.Status) != "available" || gc.FailoverState != nil || writer(gc) != g.drARN {
		t.Errorf("region returned: status %s state %+v writer %s", aws.ToString(gc.Status), gc.FailoverState, writer(gc))
	}
	if m := member(t, gc, g.primaryARN); m.SynchronizationStatus != rdstypes.GlobalClusterMemberSynchronizationStatusPendingResync {
		t.Errorf("rejoined old primary: synchronization %q, want pending-resync", m.SynchronizationStatus)
	}
	if op := lastHistory(t, g.id); op.Kind != "failover" || op.Finished == "" || op.PromotedAt == "" || op.LostWritesMs != 700 {
		t.Errorf("history: %+v", op)
	}
	fraction(t, 0.5)
	if m := member(t, g.describe(t, g.d), g.primaryARN); m.SynchronizationStatus != rdstypes.GlobalClusterMemberSynchronizationStatusPendingResync {
		t.Errorf("resync half-way: %q, want pending-resync (aurora_resync runs from the region's return)", m.SynchronizationStatus)
	}
	advance(t)
	if m := member(t, g.describe(t, g.d), g.primaryARN); m.SynchronizationStatus != rdstypes.GlobalClusterMemberSynchronizationStatusConnected {
		t.Errorf("after resync: %q, want connected", m.SynchronizationStatus)
	}
}

// An operation does not complete while its target's region is dark, whatever the clock.
func TestAuroraSwitchoverWaitsForADarkTarget(t *testing.T) {
	ctx := context.Background()
	const pr, sr = "us-east-2", "ap-southeast-2"
	g := newGDB(t, "stuck-global", pr, sr, gdbOptions{})
	must(g.p.SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{GlobalClusterIdentifier: aws.String(g.id), TargetDbClusterIdentifier: aws.String(g.drARN)})).ok(t)
	must(0, shared.SetRegionDark(ctx, sr, true)).ok(t)
	t.Cleanup(func() { _ = shared.SetRegionDark(context.Background(), sr, false) })
	advance(t)
	advance(t)
	if gc := g.describe(t, g.p); writer(gc) != g.primaryARN || aws.ToString(gc.Status) != "switching-over" {
		t.Errorf("target region dark: writer %s status %s; want the old writer, still switching-over", writer(gc), aws.ToString(gc.Status))
	}
	must(0, shared.SetRegionDark(ctx, sr, false)).ok(t)
	if gc := g.describe(t, g.p); writer(gc) != g.drARN || aws.ToString(gc.Status) != "available" {
		t.Errorf("target region back: writer %s status %s", writer(gc), aws.ToString(gc.Status))
	}
}

// AuroraGlobalDBRPOLag exists for Aurora PostgreSQL and Aurora MySQL 3.04.0 / 2.12.0
// and higher; older Aurora MySQL only has AuroraGlobalDBReplicationLag (User Guide).
func TestAuroraLagMetricsByEngine(t *testing.T) {
	ctx := context.Background()
	oldMySQL := newGDB(t, "mysql-old", primary, dr, gdbOptions{engine: "aurora-mysql", version: "5.7.mysql_aurora.2.11.2"})
	newMySQL := newGDB(t, "mysql-new", primary, dr, gdbOptions{engine: "aurora-mysql", version: "8.0.mysql_aurora.3.04.0"})
	must(0, shared.SetReplicationLag(ctx, oldMySQL.drARN, 300)).ok(t)
	must(0, shared.SetReplicationLag(ctx, newMySQL.drARN, 400)).ok(t)
	if got := newestLag(t, dr, oldMySQL.secondaryID, emulator.MetricRPOLag); got != nil {
		t.Errorf("Aurora MySQL 2.11.2 has AuroraGlobalDBRPOLag %v, want none", *got)
	}
	if got := newestLag(t, dr, oldMySQL.secondaryID, emulator.MetricReplicationLag); got == nil || *got != 300 {
		t.Errorf("Aurora MySQL 2.11.2 replication lag %v, want 300", got)
	}
	if got := newestLag(t, dr, newMySQL.secondaryID, emulator.MetricRPOLag); got == nil || *got != 400 {
		t.Errorf("Aurora MySQL 3.04.0 RPO lag %v, want 400", got)
	}
	err := shared.SetLagMetric(ctx, newMySQL.drARN, "AuroraGlobalDBSomething", 1)
	if err == nil || !strings.Contains(err.Error(), "metric must be one of") {
		t.Errorf("unknown metric: %v", err)
	}
	var out map[string]any
	err = shared.Control(ctx, "POST", "regions", map[string]any{"region": "eu-west-1", "dark": "yes"}, &out)
	if err == nil || !strings.Contains(err.Error(), "dark must be true or false") {
		t.Errorf("bad regions body: %v", err)
	}
}

func simNow(t *testing.T) time.Time {
	t.Helper()
	var c struct {
		Now float64 `json:"now"`
	}
	must(0, shared.Control(context.Background(), "GET", "clock", nil, &c)).ok(t)
	return time.Unix(0, int64(c.Now*1e9)).UTC()
}

func lagDatapoints(t *testing.T, region, clusterID, metric string) []cwtypes.Datapoint {
	t.Helper()
	// JSON 1.0, as the AWS plugin reads it.
	cw := cloudwatch.NewFromConfig(shared.Config(region), func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
	})
	now := simNow(t)
	out := must(cw.GetMetricStatistics(context.Background(), &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String("AWS/RDS"), MetricName: aws.String(metric),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("DBClusterIdentifier"), Value: aws.String(clusterID)}},
		StartTime:  aws.Time(now.Add(-time.Hour)), EndTime: aws.Time(now.Add(5 * time.Minute)),
		Period: aws.Int32(60), Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum},
	})).ok(t)
	return out.Datapoints
}

func newestDatapoint(dps []cwtypes.Datapoint) *cwtypes.Datapoint {
	var best *cwtypes.Datapoint
	for i := range dps {
		if best == nil || dps[i].Timestamp.After(*best.Timestamp) {
			best = &dps[i]
		}
	}
	return best
}

func newestLag(t *testing.T, region, clusterID, metric string) *float64 {
	t.Helper()
	if d := newestDatapoint(lagDatapoints(t, region, clusterID, metric)); d != nil {
		return d.Maximum
	}
	return nil
}

func newestLagTime(t *testing.T, region, clusterID, metric string) time.Time {
	t.Helper()
	if d := newestDatapoint(lagDatapoints(t, region, clusterID, metric)); d != nil {
		return d.Timestamp.UTC()
	}
	return time.Time{}
}
