package scenarios_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// A failback whose server record change is refused is rolled back: the
// writer goes back to the DR region. Its summary, outputs and report say so,
// as read at the end of the run (region-switch.yaml's finally steps), and
// the milestones it reached and then undid are marked undone; nothing says
// the writer is in the primary region.
func TestRolledBackFailbackStatesWhereThingsAre(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	if r := s.runbook(s.ctx(), nil, s.failoverArgs()...); r.code != 0 {
		t.Fatalf("the failover before the failback: exit %d\n%s", r.code, r.stderr)
	}
	if _, err := s.proxy.AddRule(faultproxy.Rule{Service: "route53", Operation: "ChangeResourceRecordSets", BodyContains: "<Type>A</Type>", ErrorRate: 1, Error: faultproxy.ServerError}); err != nil {
		t.Fatal(err)
	}
	const runID = "20260101T000000Z-rolledback"
	// Human output: the summary, as an operator reads it.
	res := s.runbook(s.ctx(), nil, append([]string{"run", failback, "--auto-approve", "--run-id", runID}, s.drArgs()...)...)
	s.proxy.Clear()
	noPanic(t, "failback", res)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1 (rolled back)\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	s.assertActiveIn(s.state(), s.topo.DR, s.topo.Primary)
	out := res.stdout + res.stderr
	dr, primary := s.topo.DR, s.topo.Primary
	for _, want := range []string{
		"(rolled back)",
		"writer_region = " + dr.Name + "\n",
		"services_now = " + dr.Name + " (" + dr.ECSCluster + "): drain 1, scheduler 1, server 2; " + primary.Name + " (" + primary.ECSCluster + "): drain 0, scheduler 0, server 0",
		"database writable",
		"(then undone by the rollback: the writer went back to " + dr.Name + ")",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("the summary does not say %q:\n%s", want, out)
		}
	}
	if !strings.Contains(strings.ToLower(out), "traffic_target = "+strings.ToLower(s.topo.ServerRecordName)+" -> "+strings.ToLower(strings.TrimSuffix(dr.LoadBalancerDNS, "."))+" ("+dr.Name+")") {
		t.Errorf("the summary does not say the server hostname points at %s's load balancer:\n%s", dr.Name, out)
	}
	if strings.Contains(out, "writer_region = "+primary.Name) {
		t.Errorf("the summary says the writer is in %s:\n%s", primary.Name, out)
	}
	for _, line := range strings.Split(out, "\n") {
		if strings.Contains(line, "◆ database writable") && !strings.Contains(line, "undone by the rollback") {
			t.Errorf("milestone not shown as undone: %q", line)
		}
	}
	rep := s.runbook(s.ctx(), nil, "report", runID, "--state", filepath.Join(s.dir, "state"), "--format", "markdown")
	if rep.code != 0 {
		t.Fatalf("report: exit %d\n%s", rep.code, rep.stderr)
	}
	for _, want := range []string{"| `writer_region` | `" + dr.Name + "` |", "database writable (undone by the rollback)", "`switch.now_db`"} {
		if !strings.Contains(rep.stdout, want) {
			t.Errorf("the report does not say %q:\n%s", want, rep.stdout)
		}
	}
}

// The unplanned failover with the primary dark could not stop the primary's
// services (the fence and stop_source_unplanned found the region dark): when
// the region returns they run against a database that is not writable
// there. The failback's plan and pre-flight find them, and the failback
// stops them as a step (approved with the promotion, with a rollback),
// before the switchover; start_target starts them again once the writer is
// back.
func TestLeftoverServicesStoppedInFailback(t *testing.T) {
	d := darkFailover(t)
	topo := d.s.topo
	leftover := false
	for _, n := range d.during.primaryCounts {
		leftover = leftover || n > 0
	}
	if !leftover {
		t.Fatalf("no service left running in %s after the unplanned failover (%v): the scenario proves nothing", topo.Primary.Name, d.during.primaryCounts)
	}
	if d.backPlan.code != 0 {
		t.Fatalf("plan of the failback: exit %d\n%s\n%s", d.backPlan.code, d.backPlan.stdout, d.backPlan.stderr)
	}
	plan := d.backPlan.stdout
	_, stop, ok := strings.Cut(plan, dr("stop_leftovers"))
	stop, _, _ = strings.Cut(stop, dr("s3_drain"))
	if !ok || !strings.Contains(stop, "-> 0") || strings.Contains(stop, "skip") || !strings.Contains(stop, topo.Primary.Name) {
		t.Errorf("the failback's plan does not stop the services left in %s (a change to 0 under stop_leftovers):\n%s", topo.Primary.Name, plan)
	}
	back := d.back
	ap := back.eventsOf(dr("approve_db"), journal.StepStarted)
	st := back.eventsOf(dr("stop_leftovers"), journal.StepSucceeded)
	sw := back.eventsOf(dr("db_switchover"), journal.StepStarted)
	if len(ap) != 1 || len(st) != 1 || len(sw) != 1 || st[0].Time.Before(ap[0].Time) || sw[0].Time.Before(st[0].Time) {
		t.Fatalf("want approve_db, then stop_leftovers succeeded, then db_switchover: %+v %+v %+v", ap, st, sw)
	}
	// The services were at 0 when the writer moved, and run again after.
	var stopped bool
	for _, e := range d.backLog {
		if e.Forwarded && e.Region == topo.Primary.Name && e.Service == "ecs" && e.Operation == "UpdateService" && e.Time.Before(sw[0].Time) {
			stopped = true
		}
	}
	if !stopped {
		t.Errorf("no UpdateService in %s before the switchover", topo.Primary.Name)
	}
	d.s.assertActiveIn(d.backAfter, topo.Primary, topo.DR)
}

// A plan of the unplanned failover with the primary region dark: the dark
// region is expected, not a plan failure. Steps that target it are planned
// as tolerated at run time, bounded, naming the region; the plan exits 0 in
// bounded time.
func TestUnplannedPlanWithPrimaryDark(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	o := s.darken(s.topo.Primary.Name)
	defer s.brighten(o)
	start := time.Now()
	res := s.runbook(s.ctx(), nil, append([]string{"plan", failover, "--var", "mode=unplanned"}, s.drArgs()...)...)
	took := time.Since(start)
	noPanic(t, "plan", res)
	t.Logf("plan with %s dark: exit %d in %s\n%s", s.topo.Primary.Name, res.code, took.Round(time.Second), res.stdout)
	if res.code != 0 {
		t.Fatalf("plan exit %d, want 0\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	if !strings.Contains(res.stdout, "⚐ not planned now: ") || !strings.Contains(res.stdout, "region unreachable: "+s.topo.Primary.Name+" did not answer ECS DescribeServices") || !strings.Contains(res.stdout, "tolerated at run time (continue_on_error; bounded by 1m0s)") {
		t.Errorf("the plan does not say the steps against %s are tolerated at run time:\n%s", s.topo.Primary.Name, res.stdout)
	}
	if strings.Contains(res.stdout, "cannot plan") {
		t.Errorf("a step could not be planned:\n%s", res.stdout)
	}
}

// configEdits is left_to_do's item for the installer configs after a run
// that did not rewrite them (rewrite_installer_configs false, as in the
// simulation's runs): the edits, then the commands that make them.
func configEdits(operation string) string {
	active, passive := "config.dr.json", "config.json"
	if operation == "failback" {
		active, passive = passive, active
	}
	return "edit the installer configs before re-running the installer (disable_services false in " + active + ", disable_services true in " + passive + "): " +
		"cp " + active + " " + active + ".bak && jq '.disable_services = false' " + active + ".bak > " + active + " && " +
		"cp " + passive + " " + passive + ".bak && jq '.disable_services = true' " + passive + ".bak > " + passive
}

// besidesConfigEdits is what left_to_do says besides the installer config
// edits, which a run that does not rewrite the configs always leaves
// ("nothing" if that is all); an error if they are missing.
func besidesConfigEdits(t *testing.T, left any, operation string) string {
	t.Helper()
	s, _ := left.(string)
	edits := configEdits(operation)
	if !strings.Contains(s, edits) {
		t.Errorf("left_to_do %q does not end with the installer config edits %q", s, edits)
		return s
	}
	rest := strings.TrimSuffix(strings.TrimSuffix(strings.Replace(s, edits, "", 1), "; "), "; ")
	rest = strings.TrimPrefix(strings.ReplaceAll(rest, "; ; ", "; "), "; ")
	if rest == "" {
		return "nothing"
	}
	return rest
}

// After a default failover (route53, asg, the installer configs not
// rewritten), left_to_do lists what is left by hand, the installer config
// edits, with the commands to paste; pasted as printed, next to copies of
// the two configs, they make the edits.
func TestLeftToDoCompleteAfterDefaultRun(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	res := s.runbook(s.ctx(), nil, s.failoverArgs()...)
	fin, ok := res.finished()
	if res.code != 0 || !ok {
		t.Fatalf("failover: exit %d\n%s", res.code, res.stderr)
	}
	left, _ := fin.Outputs["left_to_do"].(string)
	want := configEdits("failover")
	if left != want {
		t.Fatalf("left_to_do = %q, want exactly %q", left, want)
	}
	_, cmd, _ := strings.Cut(left, "): ")
	dir := t.TempDir()
	for name, from := range map[string]string{"config.json": topology.PrimaryConfigFile, "config.dr.json": topology.DRConfigFile} {
		b, err := os.ReadFile(filepath.Join(s.dir, from))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, name), b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	sh := exec.Command("sh", "-c", cmd)
	sh.Dir = dir
	if out, err := sh.CombinedOutput(); err != nil {
		t.Fatalf("%s: %v\n%s", cmd, err, out)
	}
	assertConfig(t, filepath.Join(dir, "config.dr.json"), map[string]any{"disable_services": false})
	assertConfig(t, filepath.Join(dir, "config.json"), map[string]any{"disable_services": true})
}
