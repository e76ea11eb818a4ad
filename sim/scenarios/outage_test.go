package scenarios_test

import (
	"context"
	"maps"
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

// Regional outages: one region dark (sim/outage: every request to it hangs
// unanswered, and the emulator keeps AWS's side of the outage: the global
// cluster stays failing-over after a failover away from it) during a
// failover or a failback. The runbook does what can be done, never waits
// past a step's timeout (checked on the journal: every attempt ends within
// its step's timeout), and says exactly what is left.

type outageCase struct {
	name string
	ci   bool
	// failbackFirst fails over (planned, no faults) before the outage, so
	// that the run under test is a failback.
	failbackFirst bool
	// down is the dark region: "primary" or "dr".
	down  string
	mode  string
	check func(t *testing.T, r outageRun)
	// shared: the run is darkFailover's (the unplanned failover with the
	// primary dark), which other tests look at too.
	shared bool
}

// outageRun is what a case's check looks at: the run, the state read back
// afterwards, and the proxy's log of the run. s has the topology; its
// emulator may be gone (a shared run's), so checks use st and log.
type outageRun struct {
	s   *sim
	res result
	st  state
	log []faultproxy.Entry
}

var outageCases = []outageCase{
	{name: "unplanned failover, primary down", ci: true, down: "primary", mode: "unplanned", shared: true,
		check: func(t *testing.T, r outageRun) {
			assertDoneExceptStop(t, r, r.s.topo.DR, r.s.topo.Primary, dr("stop_source_unplanned"))
			assertNoPromotionIn(t, r.log, r.s.topo.Primary.Name)
		}},
	{name: "unplanned failback, DR down", failbackFirst: true, down: "dr", mode: "unplanned",
		check: func(t *testing.T, r outageRun) {
			assertDoneExceptStop(t, r, r.s.topo.Primary, r.s.topo.DR, dr("stop_source_unplanned"))
			assertNoPromotionIn(t, r.log, r.s.topo.DR.Name)
		}},
	// A planned failback needs the DR region (the writer is there): it stops
	// at pre-flight, having changed nothing, and says which region did not
	// answer.
	{name: "planned failback, DR down", failbackFirst: true, down: "dr", mode: "planned",
		check: func(t *testing.T, r outageRun) {
			res, s := r.res, r.s
			fin, ok := res.finished()
			if res.code != 1 || !ok || fin.Status != journal.StatusFailed || fin.RolledBack {
				t.Fatalf("exit %d, run_finished %+v; want failed, nothing to roll back\n%s", res.code, fin, res.stderr)
			}
			if fin.Error == nil || !strings.Contains(fin.Error.Message, s.topo.DR.Name) {
				t.Errorf("run_finished error %+v does not name the region %s", fin.Error, s.topo.DR.Name)
			}
			for _, e := range res.eventsOf("", journal.StepStarted) {
				if slices.Contains([]string{dr("db_switchover"), dr("db_failover"), dr("guard_target_services"), dr("start_target"), dr("traffic"), dr("finish")}, e.Step) {
					t.Errorf("%s started although pre-flight failed", e.Step)
				}
			}
			for _, e := range r.log {
				if e.Forwarded && isMutating(e.Operation) {
					t.Errorf("mutating call %s %s %s reached the emulator", e.Region, e.Service, e.Operation)
				}
			}
			s.assertActiveIn(r.st, s.topo.DR, s.topo.Primary)
		}},
}

func TestRegionalOutages(t *testing.T) {
	for _, c := range outageCases {
		t.Run(c.name, func(t *testing.T) {
			if !c.ci && !fullReliability() {
				t.Skipf("in the full set only (%s=1)", fullEnv)
			}
			t.Parallel()
			rb := failover
			if c.failbackFirst {
				rb = failback
			}
			if c.shared {
				d := darkFailover(t)
				t.Logf("%s: the shared run (darkFailover): exit %d in %s; %d requests to %s held unanswered", c.name, d.res.code, d.took.Round(time.Second), d.hung, d.s.topo.Primary.Name)
				assertWithinTimeouts(t, rb, d.res)
				c.check(t, outageRun{s: d.s, res: d.res, st: d.during, log: d.log})
				return
			}
			s := newSim(t)
			if c.failbackFirst {
				if r := s.runbook(s.ctx(), nil, s.failoverArgs()...); r.code != 0 {
					t.Fatalf("the failover before the failback: exit %d\n%s", r.code, r.stderr)
				}
				s.assertActiveIn(s.state(), s.topo.DR, s.topo.Primary)
				s.proxy.ResetLog()
			}
			region := s.topo.Primary.Name
			if c.down == "dr" {
				region = s.topo.DR.Name
			}
			o := s.darken(region)
			start := time.Now()
			// A hang guard, not a timed assertion: a step against the dark
			// region may take its SDK retries and its own three attempts.
			ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
			defer cancel()
			res := s.runbook(ctx, nil, append([]string{"run", rb, "--auto-approve", "-o", "json"}, s.drArgs("--var", "mode="+c.mode)...)...)
			took := time.Since(start)
			s.brighten(o)
			s.assertNoProcesses("after the run")
			noPanic(t, "run", res)
			hung := s.proxy.CountWhere(faultproxy.Filter{Region: region})
			t.Logf("%s: exit %d in %s; %d requests to %s held unanswered", c.name, res.code, took.Round(time.Second), hung.Faulted, region)
			for _, e := range s.proxy.Log() {
				if e.Region == region && e.Faulted {
					t.Logf("  %s %s %s held %s", e.Time.Format("15:04:05.000"), e.Service, e.Operation, e.Duration.Round(time.Millisecond))
				}
			}
			assertWithinTimeouts(t, rb, res)
			c.check(t, outageRun{s: s, res: res, st: s.state(), log: s.proxy.Log()})
		})
	}
}

// assertDoneExceptStop: the run succeeded, the installation serves from
// active, and the only thing left is stopping the services of the region
// that is down, whose stop step failed and was tolerated.
func assertDoneExceptStop(t *testing.T, r outageRun, active, down topology.Region, stopStep string) {
	t.Helper()
	res, st, topo := r.res, r.st, r.s.topo
	fin, ok := res.finished()
	if res.code != 0 || !ok || fin.Status != journal.StatusSucceeded {
		t.Fatalf("exit %d, run_finished %+v\n%s", res.code, fin, res.stderr)
	}
	if f := res.eventsOf(stopStep, journal.StepFailed); len(f) != 1 || !f[0].Continued || f[0].Error == nil {
		t.Errorf("%s: want one step_failed, continued; got %+v", stopStep, res.eventsOf(stopStep, ""))
	} else {
		t.Logf("%s failed (tolerated) after %s: %s", stopStep, time.Duration(f[0].Duration).Round(time.Millisecond), f[0].Error.Message)
	}
	var stops []string
	for _, name := range slices.Sorted(maps.Keys(topo.Primary.DesiredCounts)) {
		stops = append(stops, "aws ecs update-service --region "+down.Name+" --cluster "+down.ECSCluster+" --service "+name+" --desired-count 0 --query service.desiredCount")
	}
	op := "failover"
	if active.Name == topo.Primary.Name {
		op = "failback"
	}
	want := "stop the ECS services of cluster " + down.ECSCluster + " in " + down.Name + " (desired count 0) once the region answers: " + strings.Join(stops, " && ") + "; " + configEdits(op)
	if left := fin.Outputs["left_to_do"]; left != want {
		t.Errorf("left_to_do = %q, want exactly %q", left, want)
	}
	if st.writerRegion != active.Name {
		t.Errorf("writer in %s, want %s", st.writerRegion, active.Name)
	}
	counts := st.drCounts
	if active.Name == topo.Primary.Name {
		counts = st.primaryCounts
	}
	for name, n := range topo.Primary.DesiredCounts {
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
func assertNoPromotionIn(t *testing.T, log []faultproxy.Entry, dark string) {
	t.Helper()
	failovers := 0
	for _, e := range log {
		if e.Region == dark && e.Service == "rds" && isMutating(e.Operation) {
			t.Errorf("%s sent to the dark region %s", e.Operation, dark)
		}
		if e.Forwarded && e.Service == "rds" && e.Operation == "FailoverGlobalCluster" {
			failovers++
		}
	}
	if failovers != 1 {
		t.Errorf("FailoverGlobalCluster reached the emulator %d times, want 1", failovers)
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
// The steps of a runbook it calls (uses: ./file.yaml) are read from that
// file, with its defaults, by their paths (switch.start_target); the
// finally steps too (switch.now_db).
func stepTimeouts(t *testing.T, rbPath string) map[string]time.Duration {
	t.Helper()
	out := map[string]time.Duration{}
	readTimeouts(t, filepath.Join(repoRoot, rbPath), "", out)
	return out
}

func readTimeouts(t *testing.T, file, prefix string, out map[string]time.Duration) {
	t.Helper()
	b, err := os.ReadFile(file)
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
		Steps   []step `yaml:"steps"`
		Finally []step `yaml:"finally"`
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
	var walk func([]step)
	walk = func(steps []step) {
		for _, s := range steps {
			walk(s.Parallel)
			switch {
			case strings.HasPrefix(s.Uses, "./") || strings.HasPrefix(s.Uses, "../"):
				readTimeouts(t, filepath.Join(filepath.Dir(file), s.Uses), prefix+s.ID+".", out)
			case s.Uses == "core.approve":
				out[prefix+s.ID] = 0
			case s.Timeout != "":
				out[prefix+s.ID] = parse(s.Timeout)
			default:
				out[prefix+s.ID] = def
			}
		}
	}
	walk(doc.Steps)
	walk(doc.Finally)
}
