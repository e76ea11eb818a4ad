package scenarios_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/sim/faultproxy"
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
