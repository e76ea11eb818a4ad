package scenarios_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// darkFailover is one unplanned failover with the primary region dark (sim/outage)
// from before the run to after it, then the region's return and the planned
// failback. Several tests look at it (TestUnplannedFailoverWithPrimaryDown,
// TestRegionalOutages' CI case, TestOutage_GlobalClusterNeverAvailable,
// TestFencingBeforeUnplannedFailover's dark case): the run takes half a
// minute, and one run proves all of it. It runs once per test binary, under
// whichever of them asks first; what the others need is kept here (the
// emulator stops with that test).
type darkRun struct {
	s    *sim // the topology; the emulator may be gone
	res  result
	took time.Duration
	hung int // requests to the dark region held unanswered
	log  []faultproxy.Entry
	// during is the state read back after the run, the region still dark.
	during state
	// report is `runbook report` of the failover, in Markdown.
	report string

	// The failback's plan, once the region answers again, and the failback.
	backPlan  result
	back      result
	backLog   []faultproxy.Entry
	backAfter state
	// backReport is `runbook report` of the failback, in Markdown.
	backReport string
	// resyncing: the old primary was pending-resync when the failback started.
	resyncing bool

	ok bool
}

var darkOnce struct {
	sync.Once
	run darkRun
}

// darkResync is how long the old primary resynchronises in darkFailover,
// from the region's return: long enough that the failback, started after
// its plan, must wait for it.
const darkResync = 30.0

func darkFailover(t *testing.T) *darkRun {
	t.Helper()
	darkOnce.Do(func() {
		d := &darkOnce.run
		s := newSim(t)
		d.s = s
		timing := emulator.Timing{emulator.AuroraResync: darkResync}
		if err := s.emu.SetTiming(s.ctx(), timing); err != nil {
			t.Fatal(err)
		}
		o := s.darken(s.topo.Primary.Name)
		start := time.Now()
		// A hang guard, not a timed assertion.
		ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
		defer cancel()
		d.res = s.runbook(ctx, nil, append([]string{"run", failover, "--auto-approve", "-o", "json", "--var", "mode=unplanned"}, s.drArgs()...)...)
		d.took = time.Since(start)
		s.assertNoProcesses("after the unplanned failover")
		noPanic(t, "unplanned failover", d.res)
		d.during = s.state()
		d.log = s.proxy.Log()
		d.hung = s.proxy.CountWhere(faultproxy.Filter{Region: s.topo.Primary.Name}).Faulted
		d.report = s.reportOf(ctx, d.res)
		if d.res.code != 0 {
			t.Fatalf("the unplanned failover with the primary dark: exit %d\n%s", d.res.code, d.res.stderr)
		}

		// The region returns: the old primary rejoins, resynchronising; the
		// failback is planned (it finds the services left running there) and
		// started at once.
		s.brighten(o)
		s.proxy.ResetLog()
		d.backPlan = s.runbook(ctx, nil, append([]string{"plan", failback}, s.drArgs()...)...)
		d.resyncing = s.memberResyncing(s.topo.Primary.DBClusterARN)
		d.back = s.runbook(ctx, nil, append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs()...)...)
		s.assertNoProcesses("after the failback")
		noPanic(t, "failback", d.back)
		d.backLog = s.proxy.Log()
		d.backAfter = s.state()
		d.backReport = s.reportOf(ctx, d.back)
		d.ok = true
	})
	if !darkOnce.run.ok {
		t.Fatal("the shared unplanned failover with the primary dark failed (see the test that ran it first)")
	}
	return &darkOnce.run
}

// reportOf is `runbook report` of a run, in Markdown.
func (s *sim) reportOf(ctx context.Context, r result) string {
	s.t.Helper()
	rep := s.runbook(ctx, nil, "report", r.runID(), "--state", filepath.Join(s.dir, "state"), "--format", "markdown")
	if rep.code != 0 {
		s.t.Fatalf("report: exit %d\n%s", rep.code, rep.stderr)
	}
	return rep.stdout
}

// memberResyncing reports whether a member of the global cluster is in
// SynchronizationStatus pending-resync, as the emulator has it.
func (s *sim) memberResyncing(arn string) bool {
	s.t.Helper()
	a, err := s.emu.Aurora(context.Background())
	if err != nil {
		s.t.Fatal(err)
	}
	for _, g := range a.GlobalClusters {
		for _, m := range g.Members {
			if m.ClusterARN == arn {
				return m.Synchronization == "pending-resync"
			}
		}
	}
	return false
}

// Issue: a real outage. The primary region is dark for the whole unplanned
// failover, so the global cluster is never `available` again during it (AWS
// re-adds the old primary only when its region returns). The failover is
// done, and the DR region serves, on the evidence AWS documents: the DR
// cluster the writer member, available with an available writer instance,
// read in the DR region; its services healthy behind the load balancer;
// each on the run's critical path. Once the region returns, the failback
// waits for the old primary's resync before its switchover, which is then
// called once and never refused.
func TestOutage_GlobalClusterNeverAvailable(t *testing.T) {
	d := darkFailover(t)
	topo := d.s.topo
	t.Logf("unplanned failover with %s dark: exit %d in %s, %d requests held unanswered", topo.Primary.Name, d.res.code, d.took.Round(time.Second), d.hung)

	// Still failing-over after the run: the run never waited for available.
	if d.during.globalStatus == "available" || d.during.writerRegion != topo.DR.Name {
		t.Errorf("after the run, with %s dark: global cluster %s, writer in %s; want not available (AWS keeps it failing-over), writer in %s",
			topo.Primary.Name, d.during.globalStatus, d.during.writerRegion, topo.DR.Name)
	}
	fo := d.res.eventsOf(dr("db_failover"), journal.StepSucceeded)
	if len(fo) != 1 {
		t.Fatalf("db_failover: %+v", d.res.eventsOf(dr("db_failover"), ""))
	}
	ev, _ := fo[0].Outputs["done_evidence"].(map[string]any)
	if ev["read_in_region"] != topo.DR.Name || ev["target_is_writer"] != true || ev["target_cluster_status"] != "available" ||
		ev["writer_instance_status"] != "available" || ev["global_status"] == "available" {
		t.Errorf("db_failover's done_evidence %v: want read in %s, the DR cluster the writer, available with an available writer instance, the global cluster not available", ev, topo.DR.Name)
	}
	fin, _ := d.res.finished()
	if s, _ := fin.Outputs["database_writable_evidence"].(string); s == "" || s != ev["summary"] {
		t.Errorf("output database_writable_evidence %q, want the failover's evidence %q", s, ev["summary"])
	}
	// The report says what ended each wait.
	assertEvidenceInReport(t, d.report, dr("db_failover"), dr("target_serving"))

	// Serving, not just running, before traffic moved.
	serving := d.res.eventsOf(dr("target_serving"), journal.StepSucceeded)
	if len(serving) != 1 || !strings.Contains(serving[0].Outputs["evidence"].(string), "2 of 2 healthy") {
		t.Fatalf("target_serving: %+v", d.res.eventsOf(dr("target_serving"), ""))
	}
	if tr := d.res.eventsOf(dr("traffic"), journal.StepStarted); len(tr) != 1 || tr[0].Time.Before(serving[0].Time) {
		t.Errorf("traffic started %v, before the DR services were healthy behind the load balancer (%s)", tr, serving[0].Time)
	}
	// Each of these on the critical path, in this order.
	path := criticalPathLine(t, d.report)
	at := -1
	for _, step := range []string{dr("db_failover"), dr("start_target"), dr("target_serving")} {
		i := strings.Index(path, "`"+step+"`")
		if i <= at {
			t.Errorf("%s is not on the critical path after the steps before it: %s", step, path)
		}
		at = i
	}
	if !strings.Contains(path[max(at, 0):], "`"+dr("dns_server")+"`") && !strings.Contains(path[max(at, 0):], "`"+dr("dns_iot")+"`") {
		t.Errorf("no traffic step on the critical path after target_serving: %s", path)
	}

	// The failback, once the region is back: it waited for the resync.
	if !d.resyncing {
		t.Errorf("the old primary was not resynchronising when the failback started: the scenario proves nothing")
	}
	if d.back.code != 0 {
		t.Fatalf("failback: exit %d\n%s", d.back.code, d.back.stderr)
	}
	if n := len(d.back.eventsOf(dr("wait_resync"), journal.UntilUnmet)); n == 0 {
		t.Errorf("wait_resync: the failback did not wait for the resync: %+v", d.back.eventsOf(dr("wait_resync"), ""))
	}
	if w := d.back.eventsOf(dr("wait_resync"), journal.StepSucceeded); len(w) != 1 || w[0].Outputs["resync_pending"] != false {
		t.Errorf("wait_resync did not end on resync_pending false: %+v", w)
	} else if sw := d.back.eventsOf(dr("db_switchover"), journal.StepStarted); len(sw) != 1 || sw[0].Time.Before(w[0].Time) {
		t.Errorf("db_switchover started before the resync ended")
	}
	if f := d.back.eventsOf(dr("db_switchover"), journal.AttemptFailed); len(f) != 0 {
		t.Errorf("the switchover was refused and retried (%d failed attempts): %+v", len(f), f[0].Error)
	}
	switchovers := 0
	for _, e := range d.backLog {
		if e.Forwarded && e.Operation == "SwitchoverGlobalCluster" {
			switchovers++
		}
	}
	if switchovers != 1 {
		t.Errorf("SwitchoverGlobalCluster reached the emulator %d times in the failback, want 1", switchovers)
	}
	assertEvidenceInReport(t, d.backReport, dr("s3_drain"), dr("db_switchover"), dr("target_serving"))
	d.s.assertActiveIn(d.backAfter, topo.Primary, topo.DR)
}

// assertEvidenceInReport: the report's "What ended each wait" has a row for
// each of steps.
func assertEvidenceInReport(t *testing.T, report string, steps ...string) {
	t.Helper()
	_, section, ok := strings.Cut(report, "## What ended each wait\n")
	section, _, _ = strings.Cut(section, "\n## ")
	for _, step := range steps {
		if !ok || !strings.Contains(section, "| "+step+" |") && !strings.Contains(section, "| `"+step+"` |") {
			t.Errorf("the report's \"What ended each wait\" has no row for %s:\n%s", step, section)
		}
	}
}

// criticalPathLine returns the line of a Markdown report that lists the
// critical path's steps.
func criticalPathLine(t *testing.T, report string) string {
	t.Helper()
	_, after, ok := strings.Cut(report, "## Critical path\n\n")
	if !ok {
		t.Fatalf("the report has no critical path:\n%s", report)
	}
	line, _, _ := strings.Cut(after, "\n")
	return line
}

// Issue: fence before data loss. Before FailoverGlobalCluster an unplanned
// failover reads the old writer in its region and tries, bounded, to set the
// old region's services to 0, and says what happened in the approval prompt:
//   - the old writer healthy: refused before any change (a planned
//     switchover is possible);
//   - the old region answering (its database down): its services stopped
//     before the failover;
//   - the old region dark: tolerated within the bound (darkFailover's run).
func TestFencingBeforeUnplannedFailover(t *testing.T) {
	t.Run("dark: tolerated within the bound", func(t *testing.T) {
		t.Parallel()
		d := darkFailover(t)
		f := d.res.eventsOf(dr("fence"), journal.StepSucceeded)
		if len(f) != 1 {
			t.Fatalf("fence: %+v", d.res.eventsOf(dr("fence"), ""))
		}
		if f[0].Outputs["outcome"] != "unreachable" || f[0].Outputs["fenced"] != false {
			t.Errorf("fence outputs %v: want unreachable, not fenced", f[0].Outputs)
		}
		if took := time.Duration(f[0].Duration); took < fenceBound || took > fenceBound+timeoutSlack {
			t.Errorf("the fence took %s; want its bound %s (no more than %s over)", took, fenceBound, timeoutSlack)
		}
		assertFenceBeforeFailover(t, d.res, f[0].Outputs["summary"].(string))
		if up := d.res.eventsOf(dr("db_failover"), journal.StepSucceeded); len(up) != 1 {
			t.Errorf("the failover did not go on after the fence was tolerated")
		}
	})

	t.Run("answering", func(t *testing.T) {
		t.Parallel()
		s := newSim(t)
		before := s.state()

		// Both regions healthy: an unplanned failover is refused before any
		// change, naming the way without data loss.
		res := s.runbook(s.ctx(), nil, s.failoverArgs("--var", "mode=unplanned")...)
		noPanic(t, "run", res)
		fin, ok := res.finished()
		if res.code != 1 || !ok || fin.Status != journal.StatusFailed || fin.RolledBack {
			t.Fatalf("healthy writer: exit %d, run_finished %+v; want failed, nothing to roll back\n%s", res.code, fin, res.stderr)
		}
		if f := res.eventsOf(dr("check_old_writer"), journal.StepFailed); len(f) != 1 || f[0].Error == nil ||
			!strings.Contains(f[0].Error.Message, "still answers as healthy") || !strings.Contains(f[0].Error.Message, "mode: planned") ||
			!strings.Contains(f[0].Error.Message, "allow_unplanned_with_healthy_writer") {
			t.Errorf("check_old_writer: want a refusal naming the planned switchover and the override, got %+v", res.eventsOf(dr("check_old_writer"), ""))
		} else {
			t.Logf("refused: %s", f[0].Error.Message)
		}
		for _, step := range []string{dr("fence"), dr("approve_db"), dr("db_failover")} {
			if len(res.eventsOf(step, journal.StepStarted)) > 0 {
				t.Errorf("%s started although the old writer is healthy", step)
			}
		}
		s.assertNoMutation(t)
		if d := diffState(before, s.state()); d != "" {
			t.Errorf("the refused run changed %s", d)
		}

		// The primary's database does not answer, its ECS API does: the
		// services there are stopped before the failover is called.
		s.proxy.ResetLog()
		mustRule(t, s, faultproxy.Rule{Region: s.topo.Primary.Name, Service: "rds", Blackhole: faultproxy.Hang})
		var promptAt time.Time
		res = s.runbook(s.ctx(), func(e journal.Record, _ *exec.Cmd) {
			if e.Type == journal.ApprovalGranted && e.Step == dr("approve_db") {
				promptAt = e.Time
			}
		}, s.failoverArgs("--var", "mode=unplanned")...)
		noPanic(t, "run", res)
		if res.code != 0 {
			t.Fatalf("unplanned failover with the primary's database down: exit %d\n%s", res.code, res.stderr)
		}
		f := res.eventsOf(dr("fence"), journal.StepSucceeded)
		if len(f) != 1 || f[0].Outputs["outcome"] != "fenced" || f[0].Outputs["fenced"] != true {
			t.Fatalf("fence: %+v", res.eventsOf(dr("fence"), ""))
		}
		summary := f[0].Outputs["summary"].(string)
		assertFenceBeforeFailover(t, res, summary)
		var stopped, failovers []time.Time
		for _, e := range s.proxy.Log() {
			switch {
			case e.Forwarded && e.Region == s.topo.Primary.Name && e.Operation == "UpdateService":
				stopped = append(stopped, e.Time)
			case e.Forwarded && e.Operation == "FailoverGlobalCluster":
				failovers = append(failovers, e.Time)
			}
		}
		if len(stopped) != len(s.topo.Primary.DesiredCounts) || len(failovers) != 1 || !stopped[len(stopped)-1].Before(failovers[0]) || promptAt.IsZero() {
			t.Errorf("UpdateService in %s at %v, FailoverGlobalCluster at %v: want every service stopped (once) before the failover",
				s.topo.Primary.Name, stopped, failovers)
		}
		if sk := res.eventsOf(dr("stop_source_unplanned"), journal.StepSkipped); len(sk) != 1 {
			t.Errorf("stop_source_unplanned ran although the fence stopped every service: %+v", res.eventsOf(dr("stop_source_unplanned"), ""))
		}
		fin, _ = res.finished()
		if besidesConfigEdits(t, fin.Outputs["left_to_do"], "failover") != "nothing" || fin.Outputs["fence"] != summary {
			t.Errorf("outputs left_to_do %q, fence %q; want nothing, and the fence's summary", fin.Outputs["left_to_do"], fin.Outputs["fence"])
		}
		st := s.state()
		for name, n := range st.primaryCounts {
			if n != 0 {
				t.Errorf("%s: service %s desired %d after the fence, want 0", s.topo.Primary.Name, name, n)
			}
		}
		if st.writerRegion != s.topo.DR.Name {
			t.Errorf("writer in %s, want %s", st.writerRegion, s.topo.DR.Name)
		}
	})
}

// assertFenceBeforeFailover: the fence ended before the approval of the
// database step was asked and the failover started, and the prompt shows
// its outcome, what was read of the old writer and the data-loss figure
// with its metric and the age of its datapoint.
func assertFenceBeforeFailover(t *testing.T, res result, summary string) {
	t.Helper()
	fence := res.eventsOf(dr("fence"), journal.StepSucceeded)
	asked := res.eventsOf(dr("approve_db"), journal.ApprovalRequested)
	failover := res.eventsOf(dr("db_failover"), journal.StepStarted)
	if len(fence) != 1 || len(asked) != 1 || len(failover) != 1 || asked[0].Time.Before(fence[0].Time) || failover[0].Time.Before(fence[0].Time) {
		t.Fatalf("fence %v, approval %v, failover %v: want the fence first", fence, asked, failover)
	}
	msg := asked[0].Message
	for _, want := range []string{summary, "Old writer: read in ", "Writes a failover now loses: ", "AuroraGlobalDBRPOLag", " old)"} {
		if !strings.Contains(msg, want) {
			t.Errorf("the approval prompt does not say %q:\n%s", want, msg)
		}
	}
	if slices.Contains([]string{"", "<nil>"}, summary) {
		t.Errorf("empty fence summary")
	}
}
