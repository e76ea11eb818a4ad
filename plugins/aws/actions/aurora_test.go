package actions

import (
	"context"
	"testing"

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

// seedGlobalDB creates an Aurora PostgreSQL global database with its writer
// in primaryRegion and a secondary in drRegion.
func seedGlobalDB(t *testing.T, env *awstest.Env, id string) globalDB {
	t.Helper()
	ctx := context.Background()
	prim := rds.NewFromConfig(env.Config(t, primaryRegion))
	if _, err := prim.CreateGlobalCluster(ctx, &rds.CreateGlobalClusterInput{
		GlobalClusterIdentifier: aws.String(id), Engine: aws.String("aurora-postgresql"), EngineVersion: aws.String("15.4"),
	}); err != nil {
		t.Fatal(err)
	}
	mk := func(c *rds.Client, name string) string {
		out, err := c.CreateDBCluster(ctx, &rds.CreateDBClusterInput{
			DBClusterIdentifier: aws.String(name), Engine: aws.String("aurora-postgresql"), EngineVersion: aws.String("15.4"),
			GlobalClusterIdentifier: aws.String(id), MasterUsername: aws.String("spacelift"), MasterUserPassword: aws.String("not-a-secret-1"),
		})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(out.DBCluster.DBClusterArn)
	}
	db := globalDB{ID: id}
	db.PrimaryARN = mk(prim, id+"-primary")
	db.DRARN = mk(rds.NewFromConfig(env.Config(t, drRegion)), id+"-dr")
	return db
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
	if p := byRegion[primaryRegion]; p["cluster_arn"] != db.PrimaryARN || p["is_writer"] != true || p["status"] != "available" {
		t.Fatalf("primary member = %v", p)
	}
	if d := byRegion[drRegion]; d["cluster_arn"] != db.DRARN || d["is_writer"] != false || d["cluster_id"] != db.ID+"-dr" || d["replication_lag_ms"] != 850.0 || d["replication_lag_at"] == "" {
		t.Fatalf("dr member = %v", d)
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
	if err := env.Emulator.SetReplicationLag(ctx, db.DRARN, 1234); err != nil {
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
	if out["replication_lag_ms"] != 1234.0 || out["replication_lag_at"] == "" || out["replication_lag_reason"] != "" {
		t.Fatalf("lag evidence = %v / %v / %v", out["replication_lag_ms"], out["replication_lag_at"], out["replication_lag_reason"])
	}
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
