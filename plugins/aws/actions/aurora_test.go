package actions

import (
	"context"
	"fmt"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
	"github.com/runbookhq/runbook/sim/emulator"
)

type globalDB struct {
	ID         string
	PrimaryARN string
	DRARN      string
}

// dbOptions vary a seeded global database: its engine and version, the DR
// cluster's own version, a DR cluster without DB instance (headless).
type dbOptions struct {
	Engine, Version, DRVersion string
	HeadlessDR                 bool
}

// seedGlobalDB creates an Aurora PostgreSQL 15.4 global database with its
// writer in primaryRegion and a secondary in drRegion, each with one DB
// instance, as a real installation has.
func seedGlobalDB(t *testing.T, env *awstest.Env, id string, opts ...dbOptions) globalDB {
	t.Helper()
	ctx := context.Background()
	o := dbOptions{Engine: "aurora-postgresql", Version: "15.4"}
	if len(opts) > 0 {
		o = opts[0]
	}
	if o.DRVersion == "" {
		o.DRVersion = o.Version
	}
	prim := rds.NewFromConfig(env.Config(t, primaryRegion))
	if _, err := prim.CreateGlobalCluster(ctx, &rds.CreateGlobalClusterInput{
		GlobalClusterIdentifier: aws.String(id), Engine: aws.String(o.Engine), EngineVersion: aws.String(o.Version),
	}); err != nil {
		t.Fatal(err)
	}
	mk := func(c *rds.Client, name, version string, instance bool) string {
		out, err := c.CreateDBCluster(ctx, &rds.CreateDBClusterInput{
			DBClusterIdentifier: aws.String(name), Engine: aws.String(o.Engine), EngineVersion: aws.String(version),
			GlobalClusterIdentifier: aws.String(id), MasterUsername: aws.String("spacelift"), MasterUserPassword: aws.String("not-a-secret-1"),
		})
		if err != nil {
			t.Fatal(err)
		}
		if instance {
			addInstance(t, c, name, o.Engine)
		}
		return aws.ToString(out.DBCluster.DBClusterArn)
	}
	db := globalDB{ID: id}
	db.PrimaryARN = mk(prim, id+"-primary", o.Version, true)
	db.DRARN = mk(rds.NewFromConfig(env.Config(t, drRegion)), id+"-dr", o.DRVersion, !o.HeadlessDR)
	return db
}

// addInstance adds DB instance <cluster>-1 to a cluster.
func addInstance(t *testing.T, c *rds.Client, cluster, engine string) {
	t.Helper()
	if _, err := c.CreateDBInstance(context.Background(), &rds.CreateDBInstanceInput{
		DBInstanceIdentifier: aws.String(cluster + "-1"), DBClusterIdentifier: aws.String(cluster),
		Engine: aws.String(engine), DBInstanceClass: aws.String("db.r6g.large"),
	}); err != nil {
		t.Fatal(err)
	}
}

// writerOf reads the global cluster's writer straight from the emulator.
func writerOf(t *testing.T, env *awstest.Env, id string) string {
	t.Helper()
	out, err := rds.NewFromConfig(env.Config(t, drRegion)).DescribeGlobalClusters(context.Background(), &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String(id)})
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range out.GlobalClusters {
		if aws.ToString(g.GlobalClusterIdentifier) != id {
			continue
		}
		for _, m := range g.GlobalClusterMembers {
			if aws.ToBool(m.IsWriter) {
				return aws.ToString(m.DBClusterArn)
			}
		}
	}
	return ""
}

func TestAuroraGlobalStatus(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	// Aurora publishes the lag to CloudWatch; the emulator does the same.
	if err := env.Emulator.SetReplicationLag(tctx(t), db.DRARN, 850); err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(tctx(t), "aurora_global_status", env.Params(drRegion, map[string]any{"global_cluster": db.ID}))
	if err != nil {
		t.Fatal(err)
	}
	if out["status"] != "available" || out["writer_cluster_arn"] != db.PrimaryARN || out["writer_region"] != primaryRegion {
		t.Fatalf("outputs = %v", out)
	}
	members := out["members"].([]any)
	if len(members) != 2 {
		t.Fatalf("members = %v", members)
	}
	byRegion := map[string]map[string]any{}
	for _, m := range members {
		mm := m.(map[string]any)
		byRegion[mm["region"].(string)] = mm
	}
	if p := byRegion[primaryRegion]; p["cluster_arn"] != db.PrimaryARN || p["is_writer"] != true || p["status"] != "available" ||
		p["engine_version"] != "15.4" || p["writer_instance"] != db.ID+"-primary-1" {
		t.Fatalf("primary member = %v", p)
	}
	d := byRegion[drRegion]
	if d["cluster_arn"] != db.DRARN || d["is_writer"] != false || d["cluster_id"] != db.ID+"-dr" || d["synchronization_status"] != "connected" || d["engine_version"] != "15.4" {
		t.Fatalf("dr member = %v", d)
	}
	// A secondary's instances are all readers: no writer instance until it is promoted.
	if d["writer_instance"] != "" || !reflect.DeepEqual(d["instances"], []any{map[string]any{"id": db.ID + "-dr-1", "status": "available", "role": "reader"}}) {
		t.Fatalf("dr instances = %v, writer %v", d["instances"], d["writer_instance"])
	}
	// Aurora PostgreSQL: the RPO is AuroraGlobalDBRPOLag (Aurora User Guide), with the datapoint's age.
	if d["replication_lag_ms"] != 850.0 || d["replication_lag_metric"] != "AuroraGlobalDBRPOLag" || d["replication_lag_at"] == "" || d["replication_lag_age"] == "" {
		t.Fatalf("dr lag = %v / %v / %v / %v", d["replication_lag_ms"], d["replication_lag_metric"], d["replication_lag_at"], d["replication_lag_age"])
	}
	if age, err := time.ParseDuration(d["replication_lag_age"].(string)); err != nil || age < 0 || age > 2*time.Minute {
		t.Fatalf("lag age %v (%v): one datapoint a minute, so at most about a minute old", d["replication_lag_age"], err)
	}
	if out["resync_pending"] != false || out["engine"] != "aurora-postgresql" || out["verdict"] != "" {
		t.Fatalf("outputs = %v", out)
	}
}

// The pre-flight verdict: what AWS documents as blocking a switchover or failover
// to the member of target_region, each reason with its fix.
func TestAuroraStatusVerdict(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	ctx := tctx(t)
	verdict := func(id, kind string) map[string]any {
		t.Helper()
		out, err := c.Apply(ctx, "aurora_global_status", env.Params(drRegion, map[string]any{"global_cluster": id, "target_region": drRegion, "kind": kind}))
		if err != nil {
			t.Fatal(err)
		}
		return out
	}
	healthy := seedGlobalDB(t, env, awstest.Name(t, "ok"))
	if err := env.Emulator.SetReplicationLag(ctx, healthy.DRARN, 75); err != nil {
		t.Fatal(err)
	}
	for _, kind := range []string{"switchover", "failover"} {
		if out := verdict(healthy.ID, kind); out["ready"] != true || len(out["reasons"].([]any)) != 0 || out["target_cluster_arn"] != healthy.DRARN ||
			!strings.HasPrefix(out["verdict"].(string), "ready") {
			t.Errorf("%s to a healthy secondary: %v / %v", kind, out["verdict"], out["reasons"])
		} else if out["target_replication_lag_ms"] != 75.0 || out["target_replication_lag_metric"] != "AuroraGlobalDBRPOLag" || out["target_replication_lag_age"] == "" {
			t.Errorf("target lag: %v %v %v", out["target_replication_lag_ms"], out["target_replication_lag_metric"], out["target_replication_lag_age"])
		}
	}
	headless := seedGlobalDB(t, env, awstest.Name(t, "headless"), dbOptions{Engine: "aurora-postgresql", Version: "15.4", HeadlessDR: true})
	out := verdict(headless.ID, "failover")
	if out["ready"] != false || !strings.Contains(out["verdict"].(string), "has no DB instance") || !strings.Contains(out["verdict"].(string), "CreateDBInstance with DBClusterIdentifier "+headless.ID+"-dr") {
		t.Errorf("headless target: %v", out["verdict"])
	}
	versions := seedGlobalDB(t, env, awstest.Name(t, "versions"), dbOptions{Engine: "aurora-postgresql", Version: "15.4", DRVersion: "15.3"})
	out = verdict(versions.ID, "switchover")
	if out["ready"] != false || !strings.Contains(out["verdict"].(string), "engine versions differ: 15.3 ("+versions.ID+"-dr), 15.4 ("+versions.ID+"-primary)") {
		t.Errorf("versions: %v", out["verdict"])
	}
	// Only the patch level differs (Aurora MySQL 3.04.0 and 3.04.1): a warning, not a block.
	patch := seedGlobalDB(t, env, awstest.Name(t, "patch"), dbOptions{Engine: "aurora-mysql", Version: "8.0.mysql_aurora.3.04.0", DRVersion: "8.0.mysql_aurora.3.04.1"})
	out = verdict(patch.ID, "failover")
	if out["ready"] != true || len(out["warnings"].([]any)) != 1 || !strings.Contains(out["warnings"].([]any)[0].(string), "only the patch levels differ") {
		t.Errorf("patch levels: %v / %v", out["verdict"], out["warnings"])
	}
	// The target already is the writer: ready, with a warning that there is nothing to do.
	out, err := c.Apply(ctx, "aurora_global_status", env.Params(drRegion, map[string]any{"global_cluster": healthy.ID, "target_region": primaryRegion, "kind": "failover"}))
	if err != nil || out["ready"] != true || !strings.Contains(fmt.Sprint(out["warnings"]), "already is the writer") {
		t.Errorf("target already the writer: %v / %v (%v)", out["verdict"], out["warnings"], err)
	}
	diags, _ := c.Validate(ctx, "aurora_global_status", map[string]any{"region": drRegion, "global_cluster": "g", "target_region": drRegion, "members": false}, nil)
	if len(diags) != 1 || diags[0].Path != "/members" {
		t.Errorf("target_region without members: diags = %+v", diags)
	}
}

func TestAuroraGlobalStatusUnknownCluster(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	_, err := c.Apply(tctx(t), "aurora_global_status", env.Params(drRegion, map[string]any{"global_cluster": "nope"}))
	wantFatal(t, err, `global cluster "nope" not found`)
}

func TestAuroraSwitchoverAlreadyWriterIsNoop(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	out, err := c.Apply(tctx(t), "aurora_global_switchover", env.Params(drRegion, map[string]any{"global_cluster": db.ID, "target_region": primaryRegion}))
	if err != nil {
		t.Fatal(err)
	}
	if out["switched"] != false || out["writer_cluster_arn"] != db.PrimaryARN || out["previous_writer_cluster_arn"] != db.PrimaryARN || out["writer_region"] != primaryRegion {
		t.Fatalf("outputs = %v", out)
	}
	if !hasMessage(progressMessages(c), "already the writer") {
		t.Fatalf("progress = %v", progressMessages(c))
	}
}

func TestAuroraSwitchoverNonMemberTarget(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	_, err := c.Apply(tctx(t), "aurora_global_switchover", env.Params(primaryRegion, map[string]any{"global_cluster": db.ID, "target_region": "us-east-2"}))
	pe := wantFatal(t, err, "has no member in us-east-2")
	if pe.Code != "NotAMember" {
		t.Fatalf("code = %q", pe.Code)
	}
	_, err = c.Apply(tctx(t), "aurora_global_switchover", env.Params(primaryRegion, map[string]any{"global_cluster": db.ID, "target_cluster_arn": "arn:aws:rds:eu-west-3:111122223333:cluster:other"}))
	wantFatal(t, err, "is not a member of global cluster "+db.ID)
	if w := writerOf(t, env, db.ID); w != db.PrimaryARN {
		t.Fatalf("writer changed: %q", w)
	}
}

func TestAuroraPromoteValidate(t *testing.T) {
	t.Parallel()
	c, _ := start(t)
	ctx := tctx(t)
	cases := []struct {
		action string
		params map[string]any
		path   string
	}{
		{"aurora_global_switchover", map[string]any{"region": "eu-west-1", "global_cluster": "g"}, ""},
		{"aurora_global_switchover", map[string]any{"region": "eu-west-1", "global_cluster": "g", "target_region": "x", "target_cluster_arn": "arn:aws:rds:eu-west-3:1:cluster:a"}, "/target_region"},
		{"aurora_global_switchover", map[string]any{"region": "eu-west-1", "global_cluster": "g", "target_cluster_arn": "db-cluster"}, "/target_cluster_arn"},
		{"aurora_global_failover", map[string]any{"region": "eu-west-1", "global_cluster": "g", "target_region": "eu-west-3"}, "/target_region"},
		{"aurora_global_failover", map[string]any{"region": "eu-west-1", "global_cluster": "g", "target_cluster_arn": "arn:aws:rds:eu-west-3:1:cluster:a"}, "/target_cluster_arn"},
	}
	for _, tc := range cases {
		diags, err := c.Validate(ctx, tc.action, tc.params, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(diags) != 1 || diags[0].Path != tc.path {
			t.Errorf("%s %v: diags = %+v", tc.action, tc.params, diags)
		}
	}
	// A target known only at run time is not a problem yet.
	diags, _ := c.Validate(ctx, "aurora_global_switchover", map[string]any{"region": "eu-west-1", "global_cluster": "g", "target_cluster_arn": nil}, []string{"/target_cluster_arn"})
	if len(diags) != 0 {
		t.Fatalf("diags = %+v", diags)
	}
}

func TestAuroraSwitchoverPlanChangesNothing(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	plan, err := c.PlanParams(tctx(t), "aurora_global_switchover", env.Params(primaryRegion, map[string]any{"global_cluster": db.ID, "target_region": drRegion}))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || plan.Changes[0].Before != db.PrimaryARN || plan.Changes[0].After != db.DRARN || plan.Changes[0].Kind != plugin.ChangeUpdate {
		t.Fatalf("plan = %+v", plan)
	}
	if writerOf(t, env, db.ID) != db.PrimaryARN {
		t.Fatal("plan changed the writer")
	}
	plan, err = c.PlanParams(tctx(t), "aurora_global_failover", env.Params(drRegion, map[string]any{"global_cluster": db.ID}))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || plan.Changes[0].After != db.DRARN || len(plan.Diagnostics) != 0 {
		t.Fatalf("failover plan = %+v", plan)
	}
	if writerOf(t, env, db.ID) != db.PrimaryARN {
		t.Fatal("failover plan changed the writer")
	}
	plan, err = c.PlanParams(tctx(t), "aurora_global_switchover", env.Params(primaryRegion, map[string]any{"global_cluster": db.ID, "target_region": primaryRegion}))
	if err != nil || plan.Changes[0].Kind != plugin.ChangeNoop {
		t.Fatalf("noop plan = %+v, err = %v", plan, err)
	}
}

// lastOperation is the emulator's record of the global cluster's newest
// completed switchover or failover.
func lastOperation(t *testing.T, env *awstest.Env, id string) emulator.AuroraOperation {
	t.Helper()
	st, err := env.Emulator.Aurora(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	for i := len(st.History) - 1; i >= 0; i-- {
		if st.History[i].GlobalCluster == id {
			return st.History[i]
		}
	}
	t.Fatalf("no operation recorded for %s: %+v", id, st.History)
	return emulator.AuroraOperation{}
}

func TestAuroraSwitchoverAndBack(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	ctx := tctx(t)
	// The step's region is only where to look the cluster up.
	out, err := c.Apply(ctx, "aurora_global_switchover", env.Params(drRegion, map[string]any{"global_cluster": db.ID, "target_region": drRegion, "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{
		"writer_cluster_arn": db.DRARN, "writer_region": drRegion,
		"previous_writer_cluster_arn": db.PrimaryARN, "previous_writer_region": primaryRegion, "switched": true,
	}
	for k, v := range want {
		if out[k] != v {
			t.Fatalf("%s = %v, want %v (outputs %v)", k, out[k], v, out)
		}
	}
	if writerOf(t, env, db.ID) != db.DRARN {
		t.Fatal("the emulator's writer is not the DR cluster")
	}
	wantDone(t, out, db.DRARN, drRegion, db.ID+"-dr-1")
	op := lastOperation(t, env, db.ID)
	if op.Kind != "switchover" || op.CalledInRegion != primaryRegion || op.AllowDataLoss || op.ToClusterARN != db.DRARN {
		t.Fatalf("operation = %+v: a switchover must be issued in the current primary's region", op)
	}
	if msgs := progressMessages(c); !hasMessage(msgs, "global cluster switching-over") || !hasMessage(msgs, "switchover complete") {
		t.Fatalf("progress = %v", msgs)
	}

	// The rollback: back to the previous writer, issued in the now-primary DR region.
	back, err := c.Apply(ctx, "aurora_global_switchover", env.Params(drRegion, map[string]any{"global_cluster": db.ID, "target_cluster_arn": out["previous_writer_cluster_arn"], "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if back["writer_cluster_arn"] != db.PrimaryARN || writerOf(t, env, db.ID) != db.PrimaryARN {
		t.Fatalf("switch back: outputs %v", back)
	}
	if op := lastOperation(t, env, db.ID); op.CalledInRegion != drRegion {
		t.Fatalf("switch back issued in %s, want %s", op.CalledInRegion, drRegion)
	}
}

func TestAuroraFailoverRecordsLag(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "gdb"))
	ctx := tctx(t)
	// Two metrics with two values: Aurora PostgreSQL's RPO is AuroraGlobalDBRPOLag.
	if err := env.Emulator.SetLagMetric(ctx, db.DRARN, emulator.MetricRPOLag, 1234); err != nil {
		t.Fatal(err)
	}
	if err := env.Emulator.SetLagMetric(ctx, db.DRARN, emulator.MetricReplicationLag, 9999); err != nil {
		t.Fatal(err)
	}
	// Issued anywhere but the target region, it is refused before any change.
	_, err := c.Apply(ctx, "aurora_global_failover", env.Params(primaryRegion, map[string]any{"global_cluster": db.ID, "target_cluster_arn": db.DRARN}))
	if pe := wantFatal(t, err, "issued in the target region"); pe.Code != "WrongRegion" || writerOf(t, env, db.ID) != db.PrimaryARN {
		t.Fatalf("err = %+v", pe)
	}
	out, err := c.Apply(ctx, "aurora_global_failover", env.Params(drRegion, map[string]any{"global_cluster": db.ID, "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if out["writer_cluster_arn"] != db.DRARN || out["previous_writer_cluster_arn"] != db.PrimaryARN || out["switched"] != true {
		t.Fatalf("outputs = %v", out)
	}
	if out["replication_lag_ms"] != 1234.0 || out["replication_lag_metric"] != "AuroraGlobalDBRPOLag" || out["replication_lag_at"] == "" ||
		out["replication_lag_age"] == "" || out["replication_lag_reason"] != "" {
		t.Fatalf("lag evidence = %v / %v / %v / %v / %v", out["replication_lag_ms"], out["replication_lag_metric"], out["replication_lag_at"], out["replication_lag_age"], out["replication_lag_reason"])
	}
	wantDone(t, out, db.DRARN, drRegion, db.ID+"-dr-1")
	if writerOf(t, env, db.ID) != db.DRARN {
		t.Fatal("the emulator's writer is not the DR cluster")
	}
	op := lastOperation(t, env, db.ID)
	if op.Kind != "failover" || !op.AllowDataLoss || op.CalledInRegion != drRegion {
		t.Fatalf("operation = %+v: a failover must allow data loss and be issued in the target region", op)
	}

	// Again: the target is the writer, nothing to do.
	again, err := c.Apply(ctx, "aurora_global_failover", env.Params(drRegion, map[string]any{"global_cluster": db.ID, "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if again["switched"] != false || again["replication_lag_ms"] != "unknown" || again["writer_cluster_arn"] != db.DRARN {
		t.Fatalf("re-run outputs = %v", again)
	}
	wantDone(t, again, db.DRARN, drRegion, db.ID+"-dr-1")
}

// wantDone asserts the evidence that ended a promotion's wait: read in the
// target's region, the target the writer member, its cluster and writer
// instance available.
func wantDone(t *testing.T, out map[string]any, target, region, writerInstance string) map[string]any {
	t.Helper()
	ev, _ := out["done_evidence"].(map[string]any)
	if ev == nil || ev["read_in_region"] != region || ev["target_cluster_arn"] != target || ev["target_is_writer"] != true ||
		ev["target_cluster_status"] != "available" || ev["writer_instance"] != writerInstance || ev["writer_instance_status"] != "available" ||
		ev["read_at"] == "" || !strings.Contains(ev["summary"].(string), "read in "+region) {
		t.Fatalf("done_evidence = %v", ev)
	}
	return ev
}

// Older Aurora MySQL has no AuroraGlobalDBRPOLag: the failover records
// AuroraGlobalDBReplicationLag (Aurora User Guide).
func TestAuroraFailoverOlderAuroraMySQLReadsReplicationLag(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	db := seedGlobalDB(t, env, awstest.Name(t, "mysql"), dbOptions{Engine: "aurora-mysql", Version: "5.7.mysql_aurora.2.11.2"})
	if err := env.Emulator.SetReplicationLag(tctx(t), db.DRARN, 321); err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(tctx(t), "aurora_global_failover", env.Params(drRegion, map[string]any{"global_cluster": db.ID, "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if out["replication_lag_ms"] != 321.0 || out["replication_lag_metric"] != "AuroraGlobalDBReplicationLag" {
		t.Fatalf("lag = %v (%v)", out["replication_lag_ms"], out["replication_lag_metric"])
	}
}

// A headless secondary cannot be promoted; engine versions must match (Aurora
// User Guide). Both are refused before anything is sent.
func TestAuroraPromotionRefusals(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	ctx := tctx(t)
	headless := seedGlobalDB(t, env, awstest.Name(t, "headless"), dbOptions{Engine: "aurora-postgresql", Version: "15.4", HeadlessDR: true})
	_, err := c.Apply(ctx, "aurora_global_switchover", env.Params(primaryRegion, map[string]any{"global_cluster": headless.ID, "target_region": drRegion}))
	if pe := wantFatal(t, err, "has no DB instance", "Add a DB instance", "nothing was changed"); pe.Code != "HeadlessTarget" {
		t.Fatalf("code = %q", pe.Code)
	}
	_, err = c.Apply(ctx, "aurora_global_failover", env.Params(drRegion, map[string]any{"global_cluster": headless.ID}))
	if pe := wantFatal(t, err, "has no DB instance"); pe.Code != "HeadlessTarget" {
		t.Fatalf("code = %q", pe.Code)
	}
	versions := seedGlobalDB(t, env, awstest.Name(t, "versions"), dbOptions{Engine: "aurora-postgresql", Version: "15.4", DRVersion: "14.9"})
	_, err = c.Apply(ctx, "aurora_global_switchover", env.Params(primaryRegion, map[string]any{"global_cluster": versions.ID, "target_region": drRegion}))
	if pe := wantFatal(t, err, "runs 14.9", "runs 15.4"); pe.Code != "EngineVersionMismatch" {
		t.Fatalf("code = %q", pe.Code)
	}
	st, err := env.Emulator.Aurora(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, h := range st.History {
		if h.GlobalCluster == headless.ID || h.GlobalCluster == versions.ID {
			t.Errorf("an operation was started: %+v", h)
		}
	}
	for _, id := range []string{headless.ID, versions.ID} {
		if w := writerOf(t, env, id); !strings.HasSuffix(w, id+"-primary") {
			t.Errorf("%s: writer changed to %s", id, w)
		}
	}
}

// TestAuroraBusyGlobalCluster runs a switchover slow enough to be caught in
// the middle, on an emulator of its own (its timing is the test's).
func TestAuroraBusyGlobalCluster(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t)
	c := plugintest.Start(t, plugin.Info{Name: "aws"}, All()...)
	ctx := tctx(t)
	if err := env.Emulator.SetTiming(ctx, emulator.Timing{emulator.AuroraSwitchover: 3}); err != nil {
		t.Fatal(err)
	}
	db := seedGlobalDB(t, env, "gdb")
	// Someone else starts a switchover to the DR cluster.
	if _, err := rds.NewFromConfig(env.Config(t, primaryRegion)).SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{
		GlobalClusterIdentifier: aws.String(db.ID), TargetDbClusterIdentifier: aws.String(db.DRARN),
	}); err != nil {
		t.Fatal(err)
	}
	// A switchover elsewhere (here: back to the primary) and a failover are refused.
	_, err := c.Apply(ctx, "aurora_global_switchover", env.Params(primaryRegion, map[string]any{"global_cluster": db.ID, "target_region": primaryRegion}))
	if pe := wantFatal(t, err, "is busy", "switchover"); pe.Code != "OperationInProgress" {
		t.Fatalf("code = %q", pe.Code)
	}
	_, err = c.Apply(ctx, "aurora_global_failover", env.Params(drRegion, map[string]any{"global_cluster": db.ID}))
	wantFatal(t, err, "is busy", "refusing to start a failover")
	plan, err := c.PlanParams(ctx, "aurora_global_switchover", env.Params(primaryRegion, map[string]any{"global_cluster": db.ID, "target_region": primaryRegion}))
	if err != nil || len(plan.Diagnostics) != 1 {
		t.Fatalf("plan during a switchover = %+v, %v", plan, err)
	}
	// The same switchover (a resumed step) is joined and waited for.
	out, err := c.Apply(ctx, "aurora_global_switchover", env.Params(drRegion, map[string]any{"global_cluster": db.ID, "target_region": drRegion, "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if out["writer_cluster_arn"] != db.DRARN || out["previous_writer_cluster_arn"] != db.PrimaryARN || writerOf(t, env, db.ID) != db.DRARN {
		t.Fatalf("joined switchover: outputs %v", out)
	}
	if !hasMessage(progressMessages(c), "joining the switchover already under way") {
		t.Fatalf("progress = %v", progressMessages(c))
	}
}
