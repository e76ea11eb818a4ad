package scenarios_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

const (
	failover = "runbooks/failover.yaml"
	failback = "runbooks/failback.yaml"
)

func TestValidateDRRunbooks(t *testing.T) {
	s := &sim{t: t, dir: t.TempDir()}
	res := s.runbook(s.ctx(), nil, "validate", failover, failback)
	if res.code != 0 {
		t.Fatalf("validate exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
}

// (a) planned failover, then (b) failback: each ends fully active in its
// target region, with every wait exercised and the workers replaced.
func TestPlannedFailoverThenFailback(t *testing.T) {
	s := newSim(t)
	before := s.state()
	s.assertActiveIn(before, s.topo.Primary, s.topo.DR)

	res := s.runbook(s.ctx(), nil, append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...)...)
	if res.code != 0 {
		t.Fatalf("failover exit %d\nstderr:\n%s", res.code, res.stderr)
	}
	after := s.state()
	s.assertActiveIn(after, s.topo.DR, s.topo.Primary)
	if len(after.drWorkers) == 0 || slices.ContainsFunc(after.drWorkers, func(id string) bool { return slices.Contains(before.drWorkers, id) }) {
		t.Errorf("DR workers %v still include instances from before %v", after.drWorkers, before.drWorkers)
	}
	// The planned path switched over (no failover) and waited for the writer flip.
	if n := s.proxy.Count("rds", "SwitchoverGlobalCluster"); n != 1 {
		t.Errorf("SwitchoverGlobalCluster reached the emulator %d times, want 1", n)
	}
	if n := s.proxy.Count("rds", "FailoverGlobalCluster"); n != 0 {
		t.Errorf("FailoverGlobalCluster called %d times in a planned failover", n)
	}
	fin := res.eventsOf("", journal.RunFinished)
	if len(fin) != 1 || fin[0].Status != journal.StatusSucceeded {
		t.Fatalf("run_finished = %+v", fin)
	}
	for _, o := range []string{"time_to_database_writable", "time_to_traffic_switched", "writer_cluster_arn"} {
		if v, ok := fin[0].Outputs[o]; !ok || v == "" {
			t.Errorf("output %s = %v", o, v)
		}
	}
	if fin[0].Outputs["writer_cluster_arn"] != s.topo.DR.DBClusterARN {
		t.Errorf("writer_cluster_arn output %v, want %s", fin[0].Outputs["writer_cluster_arn"], s.topo.DR.DBClusterARN)
	}
	// Each approval names who gave it: the caller identity of the run's
	// AWS credentials (STS, answered by the emulator), the OS user, the host.
	for _, step := range []string{dr("approve_db"), dr("approve_traffic")} {
		g := res.eventsOf(step, journal.ApprovalGranted)
		if len(g) != 1 || g[0].Approver == nil || g[0].Approver.AWS == nil || g[0].Approver.AWS.Account != s.topo.AccountID ||
			!strings.HasPrefix(g[0].Approver.AWS.ARN, "arn:aws:") || g[0].Approver.OSUser == "" || g[0].Approver.Host == "" {
			t.Errorf("%s granted: %+v", step, g)
		}
	}

	res = s.runbook(s.ctx(), nil, append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs()...)...)
	if res.code != 0 {
		t.Fatalf("failback exit %d\nstderr:\n%s", res.code, res.stderr)
	}
	s.assertActiveIn(s.state(), s.topo.Primary, s.topo.DR)
}

// (c) unplanned failover with the primary region dark: the DR side
// completes; stopping the old region is recorded as failed and tolerated.
// The run is darkFailover's, shared with the outage and fencing tests.
func TestUnplannedFailoverWithPrimaryDown(t *testing.T) {
	d := darkFailover(t)
	res, st, topo := d.res, d.during, d.s.topo
	if res.code != 0 {
		t.Fatalf("unplanned failover exit %d\nstderr:\n%s", res.code, res.stderr)
	}
	if st.writerRegion != topo.DR.Name {
		t.Errorf("writer in %s, want %s", st.writerRegion, topo.DR.Name)
	}
	for name, n := range topo.Primary.DesiredCounts {
		if st.drCounts[name] != n {
			t.Errorf("DR service %s desired %d, want %d", name, st.drCounts[name], n)
		}
	}
	if st.iotCNAME != topo.DR.IoTEndpoint || !strings.EqualFold(st.serverAlias, topo.DR.LoadBalancerDNS) {
		t.Errorf("records: server %s, iot %s; want the DR region's", st.serverAlias, st.iotCNAME)
	}
	// The old region was never asked to fail over, and its stop was tolerated.
	for _, e := range d.log {
		if e.Forwarded && e.Region == topo.Primary.Name && e.Service == "rds" {
			t.Errorf("RDS call %s reached the dark primary region", e.Operation)
		}
	}
	failed := res.eventsOf(dr("stop_source_unplanned"), journal.StepFailed)
	if len(failed) != 1 || !failed[0].Continued {
		t.Errorf("stop_primary_unplanned: want one step_failed with continued, got %+v", failed)
	}
	if got := res.eventsOf(dr("db_failover"), journal.StepSucceeded); len(got) != 1 {
		t.Errorf("db_failover did not succeed: %+v", res.eventsOf(dr("db_failover"), ""))
	}
}

// (d) an injected failure at the DNS step: the server record's change fails
// every time while the IoT record's succeeds; the rollbacks restore the IoT
// record, the desired counts and the writer.
func TestDNSFailureRollsBack(t *testing.T) {
	s := newSim(t)
	before := s.state()
	if _, err := s.proxy.AddRule(faultproxy.Rule{Service: "route53", Operation: "ChangeResourceRecordSets", BodyContains: "<Type>A</Type>", ErrorRate: 1, Error: faultproxy.ServerError}); err != nil {
		t.Fatal(err)
	}
	res := s.runbook(s.ctx(), func(e journal.Record, _ *exec.Cmd) {
		// The outage of the record's API ends when the rollback begins.
		if e.Type == journal.RollbackStarted && e.Step == dr("dns_iot") {
			s.proxy.Clear()
		}
	}, append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...)...)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1 (failed and rolled back)\nstderr:\n%s", res.code, res.stderr)
	}
	fin := res.eventsOf("", journal.RunFinished)
	if len(fin) != 1 || fin[0].Status != journal.StatusFailed || !fin[0].RolledBack {
		t.Fatalf("run_finished = %+v", fin)
	}
	if f := res.eventsOf(dr("dns_server"), journal.StepFailed); len(f) != 1 || f[0].Error == nil || !strings.Contains(f[0].Error.Message, "InternalFailure") {
		t.Errorf("dns_server failure not named: %+v", f)
	}
	// Rolled back most recent first, the failed server record's step too
	// (when: attempted; its record never changed, so nothing is sent).
	var order []string
	for _, e := range res.eventsOf("", journal.RollbackSucceeded) {
		order = append(order, e.Step)
	}
	if want := []string{dr("dns_server"), dr("dns_iot"), dr("guard_target_services"), dr("db_switchover")}; !siblingsFirst(order, want) {
		t.Errorf("rollbacks %v, want %v (the first two in either order)", order, want)
	}
	s.assertActiveIn(s.state(), s.topo.Primary, s.topo.DR)
	_ = before
}

// plan against the seeded simulation lists each intended change and changes
// nothing.
func TestPlanChangesNothing(t *testing.T) {
	s := newSim(t)
	before := s.state()
	s.proxy.ResetLog()
	res := s.runbook(s.ctx(), nil, append([]string{"plan", failover}, s.drArgs()...)...)
	if res.code != 0 {
		t.Fatalf("plan exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	for _, want := range []string{
		s.topo.Primary.Name, s.topo.DR.Name, // writer region old -> new
		"desired count",
		s.topo.ServerRecordName, s.topo.IoTRecordName,
		s.topo.DR.LoadBalancerDNS,
	} {
		if !strings.Contains(strings.ToLower(res.stdout), strings.ToLower(want)) {
			t.Errorf("plan does not mention %q:\n%s", want, res.stdout)
		}
	}
	// The split-brain guard of start_target fails now (the writer is in the
	// primary) and passes once the switchover has run: a condition of that
	// step, not a warning.
	if !strings.Contains(res.stdout, "◇ will be checked after "+dr("db_switchover")+": split-brain guard") || strings.Contains(res.stdout, "warning: split-brain") {
		t.Errorf("the split-brain guard is not shown as a condition of db_switchover:\n%s", res.stdout)
	}
	after := s.state()
	if diff := diffState(before, after); diff != "" {
		t.Errorf("plan changed the world: %s", diff)
	}
	for _, e := range s.proxy.Log() {
		if isMutating(e.Operation) {
			t.Errorf("plan sent a mutating call: %s %s", e.Service, e.Operation)
		}
	}
}

func diffState(a, b state) string {
	var d []string
	if a.writerRegion != b.writerRegion {
		d = append(d, "writer "+a.writerRegion+" -> "+b.writerRegion)
	}
	for k, v := range a.primaryCounts {
		if b.primaryCounts[k] != v {
			d = append(d, "primary "+k)
		}
	}
	for k, v := range a.drCounts {
		if b.drCounts[k] != v {
			d = append(d, "dr "+k)
		}
	}
	if a.serverAlias != b.serverAlias || a.iotCNAME != b.iotCNAME {
		d = append(d, "records")
	}
	if !slices.Equal(a.drWorkers, b.drWorkers) {
		d = append(d, "workers")
	}
	return strings.Join(d, ", ")
}

func isMutating(op string) bool {
	for _, p := range []string{"Describe", "List", "Get", "Head"} {
		if strings.HasPrefix(op, p) {
			return false
		}
	}
	return !strings.HasPrefix(op, "GET ") && !strings.HasPrefix(op, "HEAD ")
}
