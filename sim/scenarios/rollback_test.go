package scenarios_test

import (
	"encoding/json"
	"os/exec"
	"slices"
	"sort"
	"strings"
	"syscall"
	"testing"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// Every change a planned failover makes can be undone, to the state
// pre-flight read, also after the traffic moved: a crash at each point of
// the steps after traffic (finish: the workers' restart and the old region's
// stop, side by side), then `runbook resume RUN --rollback`, ends with the
// primary region serving (its services at the counts pre-flight read), the
// DR region at 0, traffic and the writer on the primary; and at no moment of
// either run were both regions stopped, not even partly.

var finishPoints = []crashPoint{
	{name: "after guard_source_services succeeded", match: on(journal.StepSucceeded, dr("guard_source_services"))},
	{name: "after finish started", match: on(journal.StepStarted, dr("finish"))},
	{name: "after workers attempt started", match: on(journal.AttemptStarted, dr("workers"))},
	{name: "mid instance refresh", match: onProgress(dr("workers"), "instance refresh InProgress")},
	{name: "after stop_source attempt started", match: on(journal.AttemptStarted, dr("stop_source"))},
	{name: "mid old-region stop: desired count set", match: onProgress(dr("stop_source"), "desired count set")},
	{name: "mid old-region stop: draining", ci: true, match: onProgress(dr("stop_source"), "running 1/0")},
	{name: "after stop_source succeeded", match: on(journal.StepSucceeded, dr("stop_source"))},
	{name: "after workers succeeded", match: on(journal.StepSucceeded, dr("workers"))},
	{name: "after finish succeeded", ci: true, match: on(journal.StepSucceeded, dr("finish")), slowNotice: true},
}

func TestRollbackAfterFinish(t *testing.T) {
	points := finishPoints
	if !fullReliability() {
		points = slices.DeleteFunc(slices.Clone(finishPoints), func(p crashPoint) bool { return !p.ci })
	}
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			rollbackAfterFinish(t, p)
		})
	}
}

func rollbackAfterFinish(t *testing.T, p crashPoint) {
	s := newSim(t)
	ctx := s.ctx()
	before := s.state()
	s.assertActiveIn(before, s.topo.Primary, s.topo.DR)
	var extra []string
	if p.slowNotice {
		extra = slowNoticeArgs(t)
	}
	var at journal.Record
	res := s.runbook(ctx, func(e journal.Record, cmd *exec.Cmd) {
		if at.Type == "" && p.match(e) {
			at = e
			_ = cmd.Process.Signal(syscall.SIGKILL)
		}
	}, s.failoverArgs(extra...)...)
	if at.Type == "" || res.code != -int(syscall.SIGKILL) {
		t.Fatalf("not killed at the point (exit %d)\n%s", res.code, res.stderr)
	}
	s.assertNoProcesses("after the kill")
	state := "--state=" + s.dir + "/state"
	if u := s.runbook(ctx, nil, "unlock", state); u.code != 0 {
		t.Fatalf("unlock: exit %d\n%s", u.code, u.stderr)
	}
	r := s.runbook(ctx, nil, append([]string{"resume", res.runID(), "--rollback", "--auto-approve", "-o", "json", state}, extra...)...)
	s.assertNoProcesses("after resume --rollback")
	noPanic(t, "resume --rollback", r)
	fin, ok := r.finished()
	if r.code != 1 || !ok || fin.Status != journal.StatusFailed || !fin.RolledBack {
		t.Fatalf("resume --rollback: exit %d, run_finished %+v; want rolled back\n%s", r.code, fin, r.stderr)
	}
	if f := r.eventsOf("", journal.RollbackFailed); len(f) > 0 {
		t.Errorf("rollbacks failed: %+v", f)
	}
	// The old region's services came back, stable, before anything else moved back.
	g := r.eventsOf(dr("guard_source_services"), journal.RollbackSucceeded)
	if len(g) != 1 || g[0].Outputs["stable"] != true {
		t.Fatalf("guard_source_services' rollback: %+v", r.eventsOf(dr("guard_source_services"), ""))
	}
	for _, later := range []string{dr("dns_server"), dr("dns_iot"), dr("guard_target_services"), dr("db_switchover")} {
		if st := r.eventsOf(later, journal.RollbackStarted); len(st) != 1 || st[0].Seq < g[0].Seq {
			t.Errorf("%s's rollback %+v: want it once, after the old region's services were restored", later, st)
		}
	}
	s.assertActiveIn(s.state(), s.topo.Primary, s.topo.DR)
	assertNeverBothStopped(t, s.topo, s.proxy.Exchanges())
}

// assertNeverBothStopped replays the desired counts of both regions through
// every UpdateService the emulator answered, in order, from the seeded state
// (the primary running, the DR region at 0), and fails at the first moment
// neither region had every service running.
func assertNeverBothStopped(t *testing.T, topo *topology.Topology, xs []faultproxy.Exchange) {
	t.Helper()
	counts := map[string]map[string]int32{topo.Primary.Name: {}, topo.DR.Name: {}}
	for name, n := range topo.Primary.DesiredCounts {
		counts[topo.Primary.Name][name], counts[topo.DR.Name][name] = n, 0
	}
	running := func(region string) bool {
		for _, n := range counts[region] {
			if n == 0 {
				return false
			}
		}
		return true
	}
	sort.SliceStable(xs, func(i, j int) bool { return xs[i].Time.Before(xs[j].Time) })
	updates := 0
	for _, x := range xs {
		if x.Operation != "UpdateService" || !x.Answered || x.Status != 200 {
			continue
		}
		var body struct {
			Service      string `json:"service"`
			DesiredCount *int32 `json:"desiredCount"`
		}
		if err := json.Unmarshal(x.RequestBody, &body); err != nil || body.DesiredCount == nil {
			t.Fatalf("UpdateService %s: request %s (%v)", x.Region, x.RequestBody, err)
		}
		name := body.Service[strings.LastIndex(body.Service, "/")+1:]
		if _, ok := counts[x.Region][name]; !ok {
			t.Fatalf("UpdateService of unknown service %s in %s", body.Service, x.Region)
		}
		counts[x.Region][name] = *body.DesiredCount
		updates++
		if !running(topo.Primary.Name) && !running(topo.DR.Name) {
			t.Fatalf("after UpdateService %s %s -> %d (%s), neither region runs every service: %v", x.Region, name, *body.DesiredCount, x.Time.Format("15:04:05.000"), counts)
		}
	}
	if updates == 0 {
		t.Fatalf("no UpdateService recorded: nothing was checked")
	}
	t.Logf("%d desired-count changes replayed; at every point one region ran every service", updates)
}
