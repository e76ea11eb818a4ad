package actions

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/outage"
)

// An unplanned failover against a real outage of the primary region: the region
// does not answer (the proxy) and AWS's state goes on without it (the emulator),
// so the global cluster stays failing-over after the promotion. Each step the
// runbook takes is an action call here, in order: the old writer's health, the
// fence, the pre-flight verdict, the failover, the services next to the new
// writer, a re-run after a crash; then the failback's pre-flight while the old
// primary resynchronises.
func TestUnplannedFailoverWithThePrimaryRegionDark(t *testing.T) {
	t.Parallel()
	env := awstest.Start(t) // its own emulator: a dark region is the whole emulator's
	c := plugintest.Start(t, plugin.Info{Name: "aws"}, All()...)
	ctx := tctx(t)
	if err := env.Emulator.SetTiming(ctx, emulator.Timing{emulator.AuroraResync: 3600}); err != nil {
		t.Fatal(err)
	}
	db := seedGlobalDB(t, env, "gdb")
	seedECS(t, env, primaryRegion, "app")
	seedECS(t, env, drRegion, "app")
	if _, err := ecs.NewFromConfig(env.Config(t, primaryRegion)).UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String("app"), Service: aws.String("spacelift-server"), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if err := env.Emulator.SetReplicationLag(ctx, db.DRARN, 640); err != nil {
		t.Fatal(err)
	}
	p := proxy(t, env)
	params := func(region string, more map[string]any) map[string]any {
		m := map[string]any{"region": region, "endpoint_url": p.URL}
		for k, v := range more {
			m[k] = v
		}
		return m
	}

	// Healthy first: the old writer answers, a planned switchover is possible.
	h, err := c.Apply(ctx, "aurora_writer_health", params(drRegion, map[string]any{"global_cluster": db.ID, "within": "2s"}))
	if err != nil {
		t.Fatal(err)
	}
	if h["reachable"] != true || h["writer_healthy"] != true || h["writer_instance"] != db.ID+"-primary-1" || h["writer_region"] != primaryRegion {
		t.Fatalf("healthy writer: %v", h)
	}

	o, err := outage.Start(ctx, p, env.Emulator, primaryRegion, faultproxy.Hang)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = o.End(context.Background()) })
	p.ResetLog()

	h, err = c.Apply(ctx, "aurora_writer_health", params(drRegion, map[string]any{"global_cluster": db.ID, "within": "1s"}))
	if err != nil {
		t.Fatal(err)
	}
	if h["reachable"] != false || h["writer_healthy"] != false || h["cluster_status"] != "unknown" || !strings.Contains(h["seen"].(string), "did not answer within 1s") {
		t.Fatalf("dark writer: %v", h)
	}

	// The fence is bounded and does not fail: the region did not answer.
	start := time.Now()
	f, err := c.Apply(ctx, "ecs_fence", params(primaryRegion, map[string]any{"cluster": "app", "services": spaceliftServices, "within": "2s", "retry_interval": "500ms"}))
	if err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > 10*time.Second { // a hang guard, not a timing assertion
		t.Errorf("the fence took %s with within 2s", took)
	}
	if f["outcome"] != "unreachable" || f["fenced"] != false || !strings.Contains(f["summary"].(string), "did not answer within 2s") {
		t.Fatalf("fence against a dark region: %v", f)
	}
	if n := p.Count("ecs", "UpdateService"); n != 0 {
		t.Fatalf("UpdateService reached the emulator %d times", n)
	}

	// Pre-flight, read from the DR region: a failover is possible; the writer's region not answering is a warning.
	st, err := c.Apply(ctx, "aurora_global_status", params(drRegion, map[string]any{"global_cluster": db.ID, "target_region": drRegion, "kind": "failover", "member_timeout": "1s"}))
	if err != nil {
		t.Fatal(err)
	}
	if st["ready"] != true || !strings.Contains(strings.Join(toStrings(st["warnings"]), " "), "writer's region "+primaryRegion+" did not answer") {
		t.Fatalf("failover pre-flight: %v / %v / %v", st["verdict"], st["reasons"], st["warnings"])
	}
	// A switchover is not: every cluster must be healthy.
	st, err = c.Apply(ctx, "aurora_global_status", params(drRegion, map[string]any{"global_cluster": db.ID, "target_region": drRegion, "kind": "switchover", "member_timeout": "1s"}))
	if err != nil {
		t.Fatal(err)
	}
	if st["ready"] != false || !strings.Contains(st["verdict"].(string), "a switchover needs every cluster healthy") {
		t.Fatalf("switchover pre-flight with the primary dark: %v", st["verdict"])
	}

	// The failover ends on the target's own state, while the global cluster is still failing-over.
	out, err := c.Apply(ctx, "aurora_global_failover", params(drRegion, map[string]any{"global_cluster": db.ID, "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	ev := wantDone(t, out, db.DRARN, drRegion, "gdb-dr-1")
	if ev["global_status"] != "failing-over" || !strings.Contains(ev["operation"].(string), "failover failing-over") || !strings.Contains(ev["summary"].(string), "not waited for") {
		t.Fatalf("done while the old primary's region is dark: %v", ev)
	}
	if out["replication_lag_ms"] != 640.0 || out["replication_lag_metric"] != "AuroraGlobalDBRPOLag" || out["replication_lag_age"] == "" {
		t.Fatalf("lag before the failover: %v %v %v", out["replication_lag_ms"], out["replication_lag_metric"], out["replication_lag_age"])
	}
	if n := p.CountWhere(faultproxy.Filter{Region: primaryRegion, Service: "rds"}).Forwarded; n != 0 {
		t.Fatalf("%d RDS calls reached the dark region", n)
	}

	// The services start next to the new writer although the global cluster is not available.
	if _, err := c.Apply(ctx, "ecs_services", params(drRegion, map[string]any{
		"cluster": "app", "desired_counts": map[string]any{"spacelift-server": 2}, "wait_stable": false,
		"require_writer": map[string]any{"global_cluster": db.ID},
	})); err != nil {
		t.Fatalf("split-brain guard after the failover: %v", err)
	}
	// A re-run (a resumed step) joins the failover under way and confirms it.
	again, err := c.Apply(ctx, "aurora_global_failover", params(drRegion, map[string]any{"global_cluster": db.ID, "poll_interval": "100ms"}))
	if err != nil {
		t.Fatal(err)
	}
	wantDone(t, again, db.DRARN, drRegion, "gdb-dr-1")
	if n := p.Count("rds", "FailoverGlobalCluster"); n != 1 {
		t.Fatalf("FailoverGlobalCluster reached the emulator %d times, want 1", n)
	}

	// The region returns. The failback's pre-flight (read from the primary region)
	// sees the old primary resynchronising: blocked, with the reason, until it ends.
	if err := o.End(ctx); err != nil {
		t.Fatal(err)
	}
	fb := params(primaryRegion, map[string]any{"global_cluster": db.ID, "target_region": primaryRegion, "kind": "switchover"})
	st, err = c.Apply(ctx, "aurora_global_status", fb)
	if err != nil {
		t.Fatal(err)
	}
	if st["status"] != "available" || st["resync_pending"] != true || st["ready"] != false || !strings.Contains(st["verdict"].(string), "still resynchronising") {
		t.Fatalf("failback pre-flight during the resync: %v / %v", st["resync_pending"], st["verdict"])
	}
	if err := env.Emulator.Advance(ctx, 2*time.Hour); err != nil {
		t.Fatal(err)
	}
	st, err = c.Apply(ctx, "aurora_global_status", fb)
	if err != nil {
		t.Fatal(err)
	}
	if st["resync_pending"] != false || st["ready"] != true {
		t.Fatalf("failback pre-flight after the resync: %v / %v", st["resync_pending"], st["verdict"])
	}
}

// The fence, both regions up: services set to 0, one already stopped, one that
// does not exist; nothing fails.
func TestECSFence(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	cluster := awstest.Name(t, "fence")
	seedECS(t, env, primaryRegion, cluster)
	ctx := tctx(t)
	if _, err := ecs.NewFromConfig(env.Config(t, primaryRegion)).UpdateService(ctx, &ecs.UpdateServiceInput{Cluster: aws.String(cluster), Service: aws.String("spacelift-server"), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	out, err := c.Apply(ctx, "ecs_fence", env.Params(primaryRegion, map[string]any{"cluster": cluster, "services": []any{"spacelift-server", "spacelift-drain", "nope"}}))
	if err != nil {
		t.Fatal(err)
	}
	svcs := out["services"].(map[string]any)
	server, drain, nope := svcs["spacelift-server"].(map[string]any), svcs["spacelift-drain"].(map[string]any), svcs["nope"].(map[string]any)
	if server["outcome"] != "fenced" || server["previous_desired_count"] != 2.0 || drain["outcome"] != "already_stopped" || nope["outcome"] != "error" ||
		out["outcome"] != "partial" || out["fenced"] != false {
		t.Fatalf("fence = %v", out)
	}
	if d := desiredCounts(t, env, primaryRegion, cluster); d["spacelift-server"] != 0.0 {
		t.Fatalf("desired counts after the fence: %v", d)
	}
	out, err = c.Apply(ctx, "ecs_fence", env.Params(primaryRegion, map[string]any{"cluster": cluster, "services": spaceliftServices}))
	if err != nil || out["outcome"] != "fenced" || out["fenced"] != true {
		t.Fatalf("fence again: %v (%v)", out, err)
	}
	for _, tc := range []struct {
		action string
		params map[string]any
		path   string
	}{
		{"ecs_fence", map[string]any{"region": primaryRegion, "cluster": "c", "services": []any{}}, "/services"},
		{"ecs_fence", map[string]any{"region": primaryRegion, "cluster": "c", "services": []any{"a", "a"}}, "/services/1"},
		{"ecs_fence", map[string]any{"region": primaryRegion, "cluster": "c", "services": []any{"a"}, "within": "0s"}, "/within"},
		{"aurora_writer_health", map[string]any{"region": drRegion, "global_cluster": "g", "within": "-1s"}, "/within"},
		{"aurora_writer_health", map[string]any{"region": drRegion, "global_cluster": "g", "cluster_arn": "db-1"}, "/cluster_arn"},
	} {
		diags, err := c.Validate(ctx, tc.action, tc.params, nil)
		if err != nil || len(diags) != 1 || diags[0].Path != tc.path {
			t.Errorf("%s %v: diags = %+v (%v), want one at %s", tc.action, tc.params, diags, err, tc.path)
		}
	}
}

func toStrings(v any) []string {
	var out []string
	for _, s := range v.([]any) {
		out = append(out, s.(string))
	}
	return out
}
