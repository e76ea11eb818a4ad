package scenarios_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// Regional outages: one region black-holed (every request to it hangs
// unanswered) during a failover or a failback. The runbook does what can be
// done, never waits past a step's timeout (checked on the journal: every
// attempt ends within its step's timeout), and says exactly what is left.

type outageCase struct {
	name string
	ci   bool
	// failbackFirst fails over (planned, no faults) before the outage, so
	// that the run under test is a failback.
	failbackFirst bool
	// down is the black-holed region: "primary" or "dr".
	down  string
	mode  string
	check func(t *testing.T, s *sim, res result)
}

var outageCases = []outageCase{
	{name: "unplanned failover, primary down", ci: true, down: "primary", mode: "unplanned",
		check: func(t *testing.T, s *sim, res result) {
			assertDoneExceptStop(t, s, res, s.topo.DR, s.topo.Primary, "stop_primary_unplanned")
			assertNoPromotionIn(t, s, s.topo.Primary.Name)
		}},
	{name: "unplanned failback, DR down", failbackFirst: true, down: "dr", mode: "unplanned",
		check: func(t *testing.T, s *sim, res result) {
			assertDoneExceptStop(t, s, res, s.topo.Primary, s.topo.DR, "stop_dr_unplanned")
			assertNoPromotionIn(t, s, s.topo.DR.Name)
		}},
	// A planned failback needs the DR region (the writer is there): it stops
	// at pre-flight, having changed nothing, and says which region did not
	// answer.
	{name: "planned failback, DR down", failbackFirst: true, down: "dr", mode: "planned",
		check: func(t *testing.T, s *sim, res result) {
			fin, ok := res.finished()
			if res.code != 1 || !ok || fin.Status != journal.StatusFailed || fin.RolledBack {
				t.Fatalf("exit %d, run_finished %+v; want failed, nothing to roll back\n%s", res.code, fin, res.stderr)
			}
			if fin.Error == nil || !strings.Contains(fin.Error.Message, s.topo.DR.Name) {
				t.Errorf("run_finished error %+v does not name the region %s", fin.Error, s.topo.DR.Name)
			}
			for _, e := range res.eventsOf("", journal.StepStarted) {
				if slices.Contains([]string{"db_switchover", "db_failover", "guard_primary_services", "start_primary", "traffic", "finish"}, e.Step) {
					t.Errorf("%s started although pre-flight failed", e.Step)
				}
			}
			for _, e := range s.proxy.Log() {
				if e.Forwarded && isMutating(e.Operation) {
					t.Errorf("mutating call %s %s %s reached the emulator", e.Region, e.Service, e.Operation)
				}
			}
			s.assertActiveIn(s.state(), s.topo.DR, s.topo.Primary)
		}},
}

func TestRegionalOutages(t *testing.T) {
	for _, c := range outageCases {
		t.Run(c.name, func(t *testing.T) {
			if !c.ci && !fullReliability() {
				t.Skipf("in the full set only (%s=1)", fullEnv)
			}
			t.Parallel()
			s := newSim(t)
			rb := failover
			if c.failbackFirst {
				if r := s.runbook(s.ctx(), nil, s.failoverArgs()...); r.code != 0 {
					t.Fatalf("the failover before the failback: exit %d\n%s", r.code, r.stderr)
				}
				s.assertActiveIn(s.state(), s.topo.DR, s.topo.Primary)
				rb = failback
				s.proxy.ResetLog()
			}
			region := s.topo.Primary.Name
			if c.down == "dr" {
				region = s.topo.DR.Name
			}
			if _, err := s.proxy.BlackholeRegion(region, faultproxy.Hang); err != nil {
				t.Fatal(err)
			}
			start := time.Now()
			// A hang guard, not a timed assertion: a step against the dark
			// region may take its SDK retries and its own three attempts.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			res := s.runbook(ctx, nil, append([]string{"run", rb, "--auto-approve", "-o", "json"}, s.drArgs("--var", "mode="+c.mode)...)...)
			took := time.Since(start)
			s.proxy.Clear()
			s.assertNoProcesses("after the run")
			noPanic(t, "run", res)
			hung := s.proxy.CountWhere(faultproxy.Filter{Region: region})
			t.Logf("%s: exit %d in %s; %d requests to %s held unanswered", c.name, res.code, took.Round(time.Second), hung.Faulted, region)
			for _, e := range s.proxy.Log() {
				if e.Region == region {
					t.Logf("  %s %s %s held %s", e.Time.Format("15:04:05.000"), e.Service, e.Operation, e.Duration.Round(time.Millisecond))
				}
			}
			assertWithinTimeouts(t, rb, res)
			c.check(t, s, res)
		})
	}
}

// assertDoneExceptStop: the run succeeded, the installation serves from
// active, and the only thing left is stopping the services of the region
// that is down, whose stop step failed and was tolerated.
func assertDoneExceptStop(t *testing.T, s *sim, res result, active, down topology.Region, stopStep string) {
	t.Helper()
	fin, ok := res.finished()
	if res.code != 0 || !ok || fin.Status != journal.StatusSucceeded {
		t.Fatalf("exit %d, run_finished %+v\n%s", res.code, fin, res.stderr)
	}
	if f := res.eventsOf(stopStep, journal.StepFailed); len(f) != 1 || !f[0].Continued || f[0].Error == nil {
		t.Errorf("%s: want one step_failed, continued; got %+v", stopStep, res.eventsOf(stopStep, ""))
	} else {
		t.Logf("%s failed (tolerated) after %s: %s", stopStep, time.Duration(f[0].Duration).Round(time.Millisecond), f[0].Error.Message)
	}
	want := "stop the ECS services of cluster " + down.ECSCluster + " in " + down.Name + " (desired count 0) once the region answers"
	if left := fin.Outputs["left_to_do"]; left != want {
		t.Errorf("left_to_do = %q, want exactly %q", left, want)
	}
	st := s.state()
	if st.writerRegion != active.Name {
		t.Errorf("writer in %s, want %s", st.writerRegion, active.Name)
	}
	counts := st.drCounts
	if active.Name == s.topo.Primary.Name {
		counts = st.primaryCounts
	}
	for name, n := range s.topo.Primary.DesiredCounts {
		if counts[name] != n {
			t.Errorf("%s: service %s desired %d, want %d", active.Name, name, counts[name], n)
		}
	}
	if st.iotCNAME != active.IoTEndpoint || !strings.EqualFold(st.serverAlias, active.LoadBalancerDNS) {
		t.Errorf("records: server %s, IoT %s; want %s's", st.serverAlias, st.iotCNAME, active.Name)
	}
}

// assertNoPromotionIn: the failover was issued in the surviving region, and
// nothing but reads (the pre-flight's member status, bounded by its
// member_timeout) was sent to the dark one's database.
func assertNoPromotionIn(t *testing.T, s *sim, dark string) {
	t.Helper()
	for _, e := range s.proxy.Log() {
		if e.Region == dark && e.Service == "rds" && isMutating(e.Operation) {
			t.Errorf("%s sent to the dark region %s", e.Operation, dark)
		}
	}
	if n := s.proxy.Count("rds", "FailoverGlobalCluster"); n != 1 {
		t.Errorf("FailoverGlobalCluster reached the emulator %d times, want 1", n)
	}
}

// timeoutSlack covers what happens around an attempt besides the action: the
// host noticing the cancellation, the journal write.
const timeoutSlack = 5 * time.Second

// assertWithinTimeouts checks on the run's events that no attempt lasted
// longer than its step's timeout (plus slack): the plugins stop when the
// attempt's deadline passes, whatever the network does.
func assertWithinTimeouts(t *testing.T, rbPath string, res result) {
	t.Helper()
	timeouts := stepTimeouts(t, rbPath)
	started := map[string]time.Time{}
	checked := 0
	for _, e := range res.events {
		if e.Rollback || e.Step == "" {
			continue
		}
		switch e.Type {
		case journal.AttemptStarted:
			started[e.Step] = e.Time
		case journal.AttemptFailed, journal.StepSucceeded, journal.StepFailed, journal.UntilUnmet:
			st, ok := started[e.Step]
			if !ok {
				continue
			}
			delete(started, e.Step)
			limit, ok := timeouts[e.Step]
			if !ok {
				t.Errorf("no timeout known for step %s", e.Step)
				continue
			}
			checked++
			if took := e.Time.Sub(st); limit > 0 && took > limit+timeoutSlack {
				t.Errorf("step %s: an attempt lasted %s, past its timeout %s", e.Step, took.Round(time.Millisecond), limit)
			}
		}
	}
	if checked == 0 {
		t.Errorf("no attempt to check")
	}
}

// stepTimeouts reads each step's attempt timeout from the runbook: its own
// `timeout`, else the defaults'; 0 for approvals (a human is not bounded).
func stepTimeouts(t *testing.T, rbPath string) map[string]time.Duration {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, rbPath))
	if err != nil {
		t.Fatal(err)
	}
	type step struct {
		ID       string `yaml:"id"`
		Uses     string `yaml:"uses"`
		Timeout  string `yaml:"timeout"`
		Parallel []step `yaml:"parallel"`
	}
	var doc struct {
		Defaults struct {
			Timeout string `yaml:"timeout"`
		} `yaml:"defaults"`
		Steps []step `yaml:"steps"`
	}
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatal(err)
	}
	parse := func(s string) time.Duration {
		if s == "" {
			return 0
		}
		d, err := time.ParseDuration(s)
		if err != nil {
			t.Fatalf("timeout %q: %v", s, err)
		}
		return d
	}
	def := parse(doc.Defaults.Timeout)
	out := map[string]time.Duration{}
	var walk func([]step)
	walk = func(steps []step) {
		for _, s := range steps {
			walk(s.Parallel)
			switch {
			case s.Uses == "core.approve":
				out[s.ID] = 0
			case s.Timeout != "":
				out[s.ID] = parse(s.Timeout)
			default:
				out[s.ID] = def
			}
		}
	}
	walk(doc.Steps)
	return out
}
