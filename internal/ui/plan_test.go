package ui

import (
	"bytes"
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/spec"
)

var update = flag.Bool("update", false, "rewrite the golden files")

func golden(t *testing.T, name string, got []byte) {
	t.Helper()
	path := filepath.Join("testdata", name)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, got, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), string(got)); diff != "" {
		t.Errorf("%s differs (-want +got; go test -update rewrites it):\n%s", path, diff)
	}
}

// failoverPlan is a plan as the engine returns it for a failover-like
// runbook: every kind of change, unknown values, a skipped step, a
// conditional step, a conditional group, a skipped group, a step whose
// action cannot plan and one that could not be planned.
func failoverPlan() *engine.PlanResult {
	return &engine.PlanResult{RunID: "20250611T101500Z-3f9a2c1d", Steps: []engine.PlanStep{
		{ID: "preflight", Uses: "aws.aurora_global_status", Decision: engine.PlanRun,
			Plan: &spec.Plan{Summary: "reads the global cluster", Changes: nil},
			Read: true, Outputs: map[string]any{"writer_region": "eu-west-1", "status": "available", "members": []any{"a", "b"}, "operation": ""}},
		{ID: "db", Name: "Promote the DR Aurora cluster", Uses: "aws.aurora_global_switchover", Decision: engine.PlanRun,
			Params:   map[string]any{"global_cluster": "spacelift", "target_region": "eu-west-3"},
			Rollback: "aws.aurora_global_switchover",
			Plan: &spec.Plan{Summary: "switch the writer of spacelift from eu-west-1 to eu-west-3", Changes: []spec.Change{
				{Resource: "global cluster spacelift", Field: "writer_region", Before: "eu-west-1", After: "eu-west-3", Kind: spec.ChangeUpdate},
				{Resource: "cluster spacelift-euw3", Field: "role", Before: "reader", After: "writer", Kind: spec.ChangeUpdate},
			}}},
		{ID: "db_failover", Uses: "aws.aurora_global_failover", Decision: engine.PlanSkip,
			Condition: `inputs.mode == "unplanned"`, SkipReason: `if: inputs.mode == "unplanned" is false`},
		{ID: "services", Uses: "aws.ecs_services", Decision: engine.PlanRun,
			Params:  map[string]any{"cluster": "spacelift", "desired_counts": nil},
			Unknown: []string{"/desired_counts", "/target/dns~1name"},
			Plan: &spec.Plan{Summary: "scale 2 services in eu-west-3", Changes: []spec.Change{
				{Resource: "service spacelift-server", Field: "desired_count", Before: 0.0, AfterUnknown: true, Kind: spec.ChangeUpdate},
				{Resource: "service spacelift-drain", Field: "desired_count", Before: 2.0, After: 2.0, Kind: spec.ChangeNoop},
				{Resource: "service spacelift-scheduler", Kind: spec.ChangeNoop},
			}}},
		{ID: "switch", Name: "Move traffic", IsGroup: true, Decision: engine.PlanConditional, Condition: `steps.services.status == "succeeded"`},
		{ID: "dns_server", Group: "switch", Uses: "dns.route53_record", Decision: engine.PlanConditional, Condition: `steps.services.status == "succeeded"`,
			Plan: &spec.Plan{Summary: "UPSERT spacelift.example.com", Changes: []spec.Change{
				{Resource: "record spacelift.example.com A", Field: "alias", Before: "lb-euw1.example.com", After: "lb-euw3.example.com", Kind: spec.ChangeReplace},
				{Resource: "record old.example.com CNAME", Before: "lb-euw1.example.com", Kind: spec.ChangeDelete},
				{Resource: "record dr.example.com TXT", After: "active=eu-west-3", Kind: spec.ChangeCreate},
				{Resource: "record probe.example.com A", AfterUnknown: true, Kind: spec.ChangeCreate},
				{Resource: "record iot.example.com CNAME", Kind: spec.ChangeUpdate,
					Before: map[string]any{"name": "iot.example.com", "ttl": 60.0, "values": []any{"a.eu-west-1"}, "alias": map[string]any{"zone": "Z1", "health": true}, "old": "x"},
					After:  map[string]any{"name": "iot.example.com", "ttl": 60.0, "values": []any{"a.eu-west-3"}, "alias": map[string]any{"zone": "Z1", "health": false}, "new": 1.0}},
			}}},
		{ID: "workers", Group: "switch", Uses: "spacelift.worker_pool_cycle", Decision: engine.PlanConditional, Condition: `steps.services.status == "succeeded"`,
			NoPlanSupport: true},
		{ID: "inner", Group: "switch", IsGroup: true, Decision: engine.PlanConditional, Condition: `steps.services.status == "succeeded"`},
		{ID: "restart", Group: "inner", Uses: "k8sworkers.restart", Decision: engine.PlanConditional, Condition: `steps.dns_probe.status == "failed"`,
			Plan: &spec.Plan{Summary: "restart the worker controller", Changes: []spec.Change{
				{Resource: "deployment spacelift-workers", Kind: spec.ChangeAction},
				{Resource: "deployment spacelift-workers", Field: "restartedAt", After: "now", Kind: spec.ChangeAction},
			}}},
		{ID: "broken", Uses: "notify.slack", Decision: engine.PlanRun, Err: "plugin notify: connection refused"},
		{ID: "cleanup", IsGroup: true, Decision: engine.PlanSkip, Condition: "inputs.keep", SkipReason: "if: inputs.keep is false"},
		{ID: "stop_old", Group: "cleanup", Uses: "aws.ecs_services", Decision: engine.PlanSkip, Condition: "inputs.keep", SkipReason: "group cleanup is skipped"},
		{ID: "confirm", Uses: "core.approve", Decision: engine.PlanRun,
			Plan: &spec.Plan{Summary: "would ask for approval: Writer is now in (known at run time)"}},
		{ID: "check", Uses: "core.assert", Decision: engine.PlanRun,
			Plan: &spec.Plan{Summary: "assertion would fail: lag too high", Diagnostics: []spec.Diagnostic{
				{Severity: spec.SeverityWarning, Summary: "assertion would fail: lag too high", Path: "/that"},
			}}},
	}}
}

func TestPlanTextGolden(t *testing.T) {
	var b bytes.Buffer
	PlanText(&b, "spacelift-failover", failoverPlan())
	golden(t, "plan.golden", b.Bytes())
}

func TestPlanTextStructure(t *testing.T) {
	var b bytes.Buffer
	PlanText(&b, "x", failoverPlan())
	out := b.String()
	lines := strings.Split(out, "\n")
	find := func(prefix string) int {
		t.Helper()
		for i, l := range lines {
			if strings.HasPrefix(l, prefix) {
				return i
			}
		}
		t.Fatalf("no line starting %q in:\n%s", prefix, out)
		return -1
	}
	// Children indented under their group, nested groups deeper.
	find("    dns_server  dns.route53_record")
	find("      restart  k8sworkers.restart")
	// old -> new, unknowns, skip and condition marks.
	find(`      ~ global cluster spacelift: writer_region: "eu-west-1" -> "eu-west-3"`)
	find(`      ~ service spacelift-server: desired_count: 0 -> (known at run time)`)
	find(`      (known at run time: desired_counts, target.dns/name)`)
	i0 := find(`        ~ record iot.example.com CNAME:`)
	if got := strings.Join(lines[i0+1:i0+5], "\n"); got != `            ~ alias.health: true -> false
            + new = 1
            - old (was "x")
            ~ values: ["a.eu-west-1"] -> ["a.eu-west-3"]` {
		t.Errorf("object change, field by field:\n%s", got)
	}
	find(`      - skipped: if: inputs.mode == "unplanned" is false`)
	i := find(`  switch  Move traffic (parallel group)`)
	if !strings.Contains(lines[i+1], `? runs only if steps.services.status == "succeeded" (decided at run time)`) {
		t.Errorf("conditional group not marked: %q", lines[i+1])
	}
	// The group's condition is not repeated on each child; a child's own
	// condition is.
	if n := strings.Count(out, `runs only if steps.services.status`); n != 1 {
		t.Errorf("group condition said %d times", n)
	}
	find(`          ? runs only if steps.dns_probe.status == "failed" (decided at run time)`)
	if strings.Contains(out, "group cleanup is skipped") {
		t.Error("skip reason inherited from the group repeated on its child")
	}
	if !strings.HasSuffix(out, "\n4 steps with changes, 3 no-ops, 2 skipped, 3 conditional, 1 not plannable, 1 could not be planned.\n") {
		t.Errorf("totals:\n%s", out)
	}
}

func TestDescribeChange(t *testing.T) {
	for _, tc := range []struct {
		c    spec.Change
		want string
	}{
		{spec.Change{Resource: "r", Field: "f", Before: 1, After: 2, Kind: spec.ChangeUpdate}, "r: f: 1 -> 2"},
		{spec.Change{Resource: "r", Before: "a", AfterUnknown: true, Kind: spec.ChangeUpdate}, `r: "a" -> (known at run time)`},
		{spec.Change{Resource: "r", Kind: spec.ChangeCreate}, "r"},
		{spec.Change{Resource: "r", After: map[string]any{"k": "v"}, Kind: spec.ChangeCreate}, `r = {"k":"v"}`},
		{spec.Change{Resource: "r", AfterUnknown: true, Kind: spec.ChangeCreate}, "r = (known at run time)"},
		{spec.Change{Resource: "r", Before: 3, Kind: spec.ChangeDelete}, "r (was 3)"},
		{spec.Change{Resource: "r", Before: 3, Kind: spec.ChangeNoop}, "r = 3"},
		{spec.Change{Resource: "r", Kind: spec.ChangeAction}, "r"},
		{spec.Change{Resource: "r", After: "x", Kind: spec.ChangeAction}, `r: "x"`},
		{spec.Change{Resource: "r", AfterUnknown: true, Kind: spec.ChangeAction}, "r: (known at run time)"},
		{spec.Change{Resource: "r", Before: nil, After: 1, Kind: spec.ChangeUpdate}, "r: (none) -> 1"},
	} {
		if got := describeChange(tc.c); got != tc.want {
			t.Errorf("describeChange(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

// A step's control planes, the warnings on the steps and the approval, and
// the path's warning after the totals.
func TestPlanTextControlPlaneWarnings(t *testing.T) {
	w := "Warning: this path depends on the Route 53 control plane in us-east-1 (steps dns_server), the region being left."
	p := &engine.PlanResult{Steps: []engine.PlanStep{
		{ID: "approve_db", Uses: "core.approve", Decision: engine.PlanRun, Plan: &spec.Plan{Summary: "would ask for approval: Promote?"}, Warnings: []string{w}},
		{ID: "dns_server", Uses: "dns.route53_record", Decision: engine.PlanRun, Plan: &spec.Plan{Summary: "x"},
			ControlPlanes: []spec.ControlPlane{{Service: "Route 53", Region: "us-east-1"}},
			Warnings:      []string{"depends on the Route 53 control plane in us-east-1, the region being left (approval approve_db)"}},
	}, Warnings: []string{w}}
	var b bytes.Buffer
	PlanText(&b, "x", p)
	out := b.String()
	for _, want := range []string{
		"\n      ⚠ " + w + "\n",
		"\n      ⌂ calls the Route 53 control plane (served from us-east-1)\n",
		"\n      ⚠ depends on the Route 53 control plane in us-east-1, the region being left (approval approve_db)\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan text lacks %q:\n%s", want, out)
		}
	}
	if !strings.HasSuffix(out, ".\n\n⚠ "+w+"\n") {
		t.Errorf("the path's warning is not after the totals:\n%s", out)
	}
}
