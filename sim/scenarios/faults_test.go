package scenarios_test

import (
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// API faults injected by the fault proxy during a planned failover: a share
// of every call throttled or failed (seeded), latency on every call, and one
// operation failing every time. The figures (requests seen, faults injected)
// come from the proxy's log.

type faultCase struct {
	name string
	ci   bool
	// setup adds the faults; it may return an onEvent hook.
	setup func(t *testing.T, s *sim) func(journal.Record, *exec.Cmd)
	// timing, if set, replaces the emulator's timing for this case.
	timing emulator.Timing
	// extra run flags.
	args []string
	// check asserts the outcome.
	check func(t *testing.T, s *sim, before state, res result)
}

var faultCases = []faultCase{
	{name: "20% of all calls throttled or 5xx", ci: true,
		setup: func(t *testing.T, s *sim) func(journal.Record, *exec.Cmd) {
			s.proxy.Seed(20260611)
			mustRule(t, s, faultproxy.Rule{ErrorRate: 0.10, Error: faultproxy.Throttle})
			mustRule(t, s, faultproxy.Rule{ErrorRate: 0.10 / 0.90, Error: faultproxy.ServerError}) // 10% of all: drawn on the 90% not throttled
			return nil
		},
		check: assertCompletesInDR},
	{name: "20% of all calls throttled",
		setup: func(t *testing.T, s *sim) func(journal.Record, *exec.Cmd) {
			s.proxy.Seed(7)
			mustRule(t, s, faultproxy.Rule{ErrorRate: 0.20, Error: faultproxy.Throttle})
			return nil
		},
		check: assertCompletesInDR},
	{name: "20% of all calls 503",
		setup: func(t *testing.T, s *sim) func(journal.Record, *exec.Cmd) {
			s.proxy.Seed(11)
			mustRule(t, s, faultproxy.Rule{ErrorRate: 0.20, Error: faultproxy.Unavailable})
			return nil
		},
		check: assertCompletesInDR},
	// Every call waits 2 s. The emulator's transitions are instant and the
	// runbook polls every 250 ms, so the run's length is its number of
	// sequential calls times 2 s.
	{name: "2 s latency on every call",
		timing: emulator.Timing{emulator.AuroraSwitchover: 0, emulator.AuroraFailover: 0, emulator.ECSStabilize: 0, emulator.Route53InSync: 0,
			emulator.ASGInstanceRefresh: 0, emulator.ASGInstanceWarmup: 0, emulator.CloudFrontDeploy: 0, emulator.S3BatchJob: 0},
		setup: func(t *testing.T, s *sim) func(journal.Record, *exec.Cmd) {
			mustRule(t, s, faultproxy.Rule{Latency: faultproxy.Duration(2 * time.Second)})
			return nil
		},
		check: assertCompletesInDR},
	// The ECS API of the DR region refuses every UpdateService: nothing was
	// started, the switchover is rolled back, the cause is named.
	{name: "ECS UpdateService 5xx forever", ci: true,
		setup: func(t *testing.T, s *sim) func(journal.Record, *exec.Cmd) {
			mustRule(t, s, faultproxy.Rule{Region: s.topo.DR.Name, Service: "ecs", Operation: "UpdateService", ErrorRate: 1, Error: faultproxy.ServerError})
			return nil
		},
		check: func(t *testing.T, s *sim, before state, res result) {
			assertRolledBack(t, s, res, dr("start_target"), "InternalFailure", "setting the desired count of service")
			if n := s.proxy.Count("ecs", "UpdateService"); n != 0 {
				t.Errorf("%d UpdateService calls took effect", n)
			}
		}},
	// The same API fails from its second call on, so start_dr fails with one
	// service started; the outage ends when the rollback begins. The
	// rollback registered before start_dr stops that service too.
	{name: "ECS UpdateService 5xx after the first service started",
		setup: func(t *testing.T, s *sim) func(journal.Record, *exec.Cmd) {
			var once sync.Once
			return func(e journal.Record, _ *exec.Cmd) {
				if e.Type == journal.Progress && e.Step == dr("start_target") && strings.HasPrefix(e.Message, "desired count set") {
					once.Do(func() {
						mustRule(t, s, faultproxy.Rule{Region: s.topo.DR.Name, Service: "ecs", Operation: "UpdateService", ErrorRate: 1, Error: faultproxy.ServerError})
					})
				}
				if e.Type == journal.RollbackStarted {
					s.proxy.Clear()
				}
			}
		},
		check: func(t *testing.T, s *sim, before state, res result) {
			assertRolledBack(t, s, res, dr("start_target"), "InternalFailure", "setting the desired count of service")
		}},
}

func mustRule(t *testing.T, s *sim, r faultproxy.Rule) {
	t.Helper()
	if _, err := s.proxy.AddRule(r); err != nil {
		t.Fatal(err)
	}
}

func TestAPIFaults(t *testing.T) {
	for _, c := range faultCases {
		t.Run(c.name, func(t *testing.T) {
			if !c.ci && !fullReliability() {
				t.Skipf("in the full set only (%s=1)", fullEnv)
			}
			t.Parallel()
			s := newSim(t)
			if c.timing != nil {
				if err := s.emu.SetTiming(s.ctx(), c.timing); err != nil {
					t.Fatal(err)
				}
			}
			before := s.state()
			hook := c.setup(t, s)
			start := time.Now()
			res := s.runbook(s.ctx(), hook, s.failoverArgs(c.args...)...)
			took := time.Since(start)
			s.proxy.Clear()
			s.assertNoProcesses("after the run")
			noPanic(t, "run", res)
			all := s.proxy.CountWhere(faultproxy.Filter{})
			faulted := 0
			for _, e := range s.proxy.Log() {
				if e.Faulted && e.Fault != "latency" {
					faulted++
				}
			}
			t.Logf("%s: exit %d in %s; the proxy saw %d AWS requests, %d answered with an injected error, %d delayed",
				c.name, res.code, took.Round(time.Second), all.Total, faulted, all.Faulted-faulted)
			for _, e := range res.events {
				if (e.Type == journal.AttemptFailed || e.Type == journal.StepFailed || e.Type == journal.RollbackFailed) && e.Error != nil {
					t.Logf("  %s %s (attempt %d): %s", e.Type, e.Step, e.Attempt, e.Error.Message)
				}
			}
			c.check(t, s, before, res)
		})
	}
}

// assertCompletesInDR: the failover succeeded and the installation is active
// in the DR region, each mutating call taking effect once.
func assertCompletesInDR(t *testing.T, s *sim, before state, res result) {
	t.Helper()
	fin, ok := res.finished()
	if res.code != 0 || !ok || fin.Status != journal.StatusSucceeded {
		t.Fatalf("exit %d, run_finished %+v\n%s", res.code, fin, res.stderr)
	}
	if left := besidesConfigEdits(t, fin.Outputs["left_to_do"], "failover"); left != "nothing" {
		t.Errorf("left_to_do = %v", left)
	}
	s.assertActiveIn(s.state(), s.topo.DR, s.topo.Primary)
	s.waitWorkersReplaced(before.drWorkers)
	s.assertMutationsOnce(t, false)
}

// assertRolledBack: the run failed at step, naming the cause, and was rolled
// back to the primary region.
func assertRolledBack(t *testing.T, s *sim, res result, step string, causes ...string) {
	t.Helper()
	fin, ok := res.finished()
	if res.code != 1 || !ok || fin.Status != journal.StatusFailed || !fin.RolledBack {
		t.Fatalf("exit %d, run_finished %+v; want failed and rolled back\n%s", res.code, fin, res.stderr)
	}
	f := res.eventsOf(step, journal.StepFailed)
	if len(f) != 1 || f[0].Error == nil {
		t.Fatalf("%s: step_failed %+v", step, f)
	}
	for _, c := range causes {
		if !strings.Contains(f[0].Error.Message, c) {
			t.Errorf("%s failed with %q, which does not say %q", step, f[0].Error.Message, c)
		}
	}
	if fin.Error == nil || !strings.Contains(fin.Error.Message, causes[0]) {
		t.Errorf("run_finished error %+v does not name the cause %q", fin.Error, causes[0])
	}
	s.assertActiveIn(s.state(), s.topo.Primary, s.topo.DR)
}
