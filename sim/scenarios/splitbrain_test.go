package scenarios_test

import (
	"context"
	"os/exec"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// Split brain: two operators (or an operator and the console) acting on the
// same global cluster. The other operator's calls go to the emulator
// directly, not through the fault proxy, so the proxy's log holds only what
// the runbook sent.

// switchover issues a switchover of the global cluster to the writer in
// region to, as another operator would, without waiting.
func (s *sim) switchover(t *testing.T, toDR bool) {
	t.Helper()
	from, target := s.topo.Primary, s.topo.DR.DBClusterARN
	if !toDR {
		from, target = s.topo.DR, s.topo.Primary.DBClusterARN
	}
	_, err := rds.NewFromConfig(s.emu.Config(from.Name)).SwitchoverGlobalCluster(context.Background(), &rds.SwitchoverGlobalClusterInput{
		GlobalClusterIdentifier: aws.String(s.topo.GlobalClusterID), TargetDbClusterIdentifier: aws.String(target),
	})
	if err != nil {
		t.Fatalf("the other operator's switchover: %v", err)
	}
}

// waitGlobal waits until the global cluster is available with its writer in
// region.
func (s *sim) waitGlobal(t *testing.T, region string) {
	t.Helper()
	deadline := time.Now().Add(time.Minute) // a hang guard
	for {
		st := s.state()
		if st.globalStatus == "available" && st.writerRegion == region {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("global cluster %s with its writer in %s, still not available in %s", st.globalStatus, st.writerRegion, region)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertNoMutation fails for any mutating call the runbook sent.
func (s *sim) assertNoMutation(t *testing.T) {
	t.Helper()
	for _, e := range s.proxy.Log() {
		if e.Forwarded && isMutating(e.Operation) {
			t.Errorf("mutating call %s %s %s reached the emulator", e.Region, e.Service, e.Operation)
		}
	}
}

// A failover started while another switchover of the same global cluster is
// under way is refused before it changes anything, in either mode, naming the
// operation.
func TestFailoverDuringAnotherSwitchover(t *testing.T) {
	for _, mode := range []string{"planned", "unplanned"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := newSim(t)
			slow := emulator.Timing{}
			for k, v := range fastTiming {
				slow[k] = v
			}
			slow[emulator.AuroraSwitchover] = 30 // long enough to still be under way when the run reads it
			if err := s.emu.SetTiming(s.ctx(), slow); err != nil {
				t.Fatal(err)
			}
			before := s.state()
			s.switchover(t, true)
			res := s.runbook(s.ctx(), nil, append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs("--var", "mode="+mode)...)...)
			noPanic(t, "run", res)
			s.assertNoProcesses("after the run")
			fin, ok := res.finished()
			if res.code != 1 || !ok || fin.Status != journal.StatusFailed {
				t.Fatalf("exit %d, run_finished %+v; want failed\n%s", res.code, fin, res.stderr)
			}
			if fin.Error == nil || !strings.Contains(fin.Error.Message, "switching-over") && !strings.Contains(fin.Error.Message, "switchover") {
				t.Errorf("run_finished error %+v does not name the switchover under way", fin.Error)
			} else {
				t.Logf("%s failover refused: %s", mode, fin.Error.Message)
			}
			for _, step := range []string{dr("db_switchover"), dr("db_failover"), dr("start_target"), dr("traffic"), dr("finish")} {
				if st := res.eventsOf(step, journal.AttemptStarted); len(st) > 0 {
					t.Errorf("%s started although another switchover was under way", step)
				}
			}
			s.assertNoMutation(t)
			after := s.state()
			if after.globalStatus != "switching-over" {
				t.Errorf("global cluster %s after the run; the other operator's switchover should still be under way", after.globalStatus)
			}
			after.globalStatus, after.writerRegion = before.globalStatus, before.writerRegion
			if d := diffState(before, after); d != "" {
				t.Errorf("the refused run changed %s", d)
			}
		})
	}
}

// The writer moves back to the primary region (another operator's failback)
// after the failover's switchover and before its services start: the guard
// of start_dr reads the writer just before it sets any count, refuses, and
// the run rolls back, with no service started in either region's wrong
// place. The runbook's process group is stopped (SIGSTOP) while the other
// operator acts, so the interleaving is the same every time.
func TestServicesRefusedWhereTheWriterIsNot(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	// start_dr's first call (reading the DR services) is held 2 s: the
	// plugin is then certainly before its guard when the group is stopped.
	// The first DescribeServices in the DR region is pre-flight's read of
	// its services (target_services), held too; the second is start_dr's.
	mustRule(t, s, faultproxy.Rule{Region: s.topo.DR.Name, Service: "ecs", Operation: "DescribeServices", Latency: faultproxy.Duration(2 * time.Second), Limit: 2})
	before := s.state()
	var once sync.Once
	hook := func(e journal.Record, cmd *exec.Cmd) {
		if e.Type != journal.AttemptStarted || e.Step != dr("start_target") || e.Rollback {
			return
		}
		once.Do(func() {
			pgid := cmd.Process.Pid
			if err := syscall.Kill(-pgid, syscall.SIGSTOP); err != nil {
				t.Errorf("stopping the run: %v", err)
				return
			}
			defer func() { _ = syscall.Kill(-pgid, syscall.SIGCONT) }()
			if st := s.state(); st.writerRegion != s.topo.DR.Name {
				t.Errorf("writer in %s when start_dr began", st.writerRegion)
			}
			s.switchover(t, false)
			s.waitGlobal(t, s.topo.Primary.Name)
		})
	}
	res := s.runbook(s.ctx(), hook, s.failoverArgs()...)
	noPanic(t, "run", res)
	s.assertNoProcesses("after the run")
	fin, ok := res.finished()
	if res.code != 1 || !ok || fin.Status != journal.StatusFailed || !fin.RolledBack {
		t.Fatalf("exit %d, run_finished %+v; want failed and rolled back\n%s", res.code, fin, res.stderr)
	}
	f := res.eventsOf(dr("start_target"), journal.StepFailed)
	if len(f) != 1 || f[0].Error == nil || f[0].Error.Code != "SplitBrainGuard" {
		t.Fatalf("start_dr: want one step_failed with SplitBrainGuard, got %+v", f)
	}
	for _, want := range []string{"refusing to start services in " + s.topo.DR.Name, "in " + s.topo.Primary.Name} {
		if !strings.Contains(f[0].Error.Message, want) {
			t.Errorf("start_dr failed with %q, which does not say %q", f[0].Error.Message, want)
		}
	}
	t.Logf("start_dr refused: %s", f[0].Error.Message)
	if n := s.proxy.Count("ecs", "UpdateService"); n != 0 {
		t.Errorf("%d UpdateService calls reached the emulator", n)
	}
	after := s.state()
	if d := diffState(before, after); d != "" {
		t.Errorf("after the refused start and the rollback, changed: %s", d)
	}
	s.assertActiveIn(after, s.topo.Primary, s.topo.DR)
}
