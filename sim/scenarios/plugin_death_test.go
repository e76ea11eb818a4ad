package scenarios_test

import (
	"fmt"
	"os/exec"
	"slices"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// Plugin deaths: a plugin process is killed with SIGKILL in the middle of one
// of its actions during a planned failover (found as the child of the
// runbook process running runbook-plugin-<name>, once a progress event says
// the action is under way). The attempt fails naming the plugin and the
// action; an idempotent action is retried with a restarted plugin and the
// failover completes; a non-idempotent one (asg_cycle) fails its step, which
// the runbook tolerates and names in left_to_do; a plugin that dies on every
// attempt fails the step and the rollbacks run, restarting it again. No
// process is left behind and nothing panics.

type deathPoint struct {
	name   string
	ci     bool
	plugin string // aws or dns
	step   string // the step whose action is cut off
	action string // its action
	match  func(journal.Record) bool
	// slow widens the window in which the action is mid-call.
	slow *faultproxy.Rule
	// every kills the plugin in each attempt of the step, not once: the
	// step fails after its retries and the run is rolled back.
	every bool
	// slowAfter is added after the first kill, so that later attempts are
	// mid-call when killed (an action that finds its work done returns at
	// once).
	slowAfter *faultproxy.Rule
	// compensated: the failed step itself is rolled back (its rollback
	// says when: attempted).
	compensated bool
}

var deathPoints = []deathPoint{
	{name: "aws: aurora_global_status", plugin: "aws", step: dr("db_status"), action: "aurora_global_status",
		match: onProgress(dr("db_status"), "global cluster read"), slow: &faultproxy.Rule{Service: "rds", Operation: "DescribeDBClusters", Latency: faultproxy.Duration(3 * time.Second)}},
	{name: "aws: s3_replication_check", plugin: "aws", step: dr("replication"), action: "s3_replication_check",
		match: on(journal.AttemptStarted, dr("replication")), slow: &faultproxy.Rule{Service: "s3", Operation: "GetBucketReplication", Latency: faultproxy.Duration(3 * time.Second)}},
	{name: "aws: iot_endpoint", plugin: "aws", step: dr("target_iot"), action: "iot_endpoint",
		match: on(journal.AttemptStarted, dr("target_iot")), slow: &faultproxy.Rule{Region: "eu-west-3", Service: "iot", Latency: faultproxy.Duration(3 * time.Second)}},
	{name: "aws: aurora_global_switchover", ci: true, plugin: "aws", step: dr("db_switchover"), action: "aurora_global_switchover",
		match: onProgress(dr("db_switchover"), "switching-over")},
	{name: "aws: ecs_services (start)", plugin: "aws", step: dr("start_target"), action: "ecs_services",
		match: onProgress(dr("start_target"), "running 1/2")},
	{name: "aws: asg_cycle", ci: true, plugin: "aws", step: dr("workers"), action: "asg_cycle",
		match: onProgress(dr("workers"), "instance refresh InProgress")},
	{name: "aws: ecs_services (stop old region)", plugin: "aws", step: dr("stop_source"), action: "ecs_services",
		match: onProgress(dr("stop_source"), "running 1/0")},
	{name: "dns: route53_record (server)", ci: true, plugin: "dns", step: dr("dns_server"), action: "route53_record",
		match: onProgress(dr("dns_server"), "change submitted")},
	{name: "dns: route53_record (IoT)", plugin: "dns", step: dr("dns_iot"), action: "route53_record",
		match: onProgress(dr("dns_iot"), "change submitted")},
	{name: "aws dies at every attempt: ecs_services (start)", ci: true, plugin: "aws", step: dr("start_target"), action: "ecs_services", every: true,
		match: func(e journal.Record) bool {
			return e.Type == journal.Progress && e.Step == dr("start_target") && !e.Rollback
		}},
	{name: "dns dies at every attempt: route53_record (server)", plugin: "dns", step: dr("dns_server"), action: "route53_record", every: true,
		match: func(e journal.Record) bool {
			if e.Step != dr("dns_server") || e.Rollback {
				return false
			}
			if e.Attempt == 1 {
				return e.Type == journal.Progress && strings.HasPrefix(e.Message, "change submitted")
			}
			return e.Type == journal.AttemptStarted
		},
		// The first attempt's change took effect: the step's rollback (when:
		// attempted) points the record back although the step failed.
		slowAfter:   &faultproxy.Rule{Service: "route53", Latency: faultproxy.Duration(2 * time.Second)},
		compensated: true},
}

func TestPluginDeaths(t *testing.T) {
	points := deathPoints
	if !fullReliability() {
		points = slices.DeleteFunc(slices.Clone(deathPoints), func(p deathPoint) bool { return !p.ci })
	}
	var mu sync.Mutex
	ran, ok, kills := 0, 0, 0
	t.Cleanup(func() {
		t.Logf("plugin deaths: %d/%d points as expected, %d plugin processes killed (%d points defined; full set: %s=1)", ok, ran, kills, len(deathPoints), fullEnv)
	})
	for _, p := range points {
		t.Run(p.name, func(t *testing.T) {
			t.Parallel()
			n := 0
			defer func() {
				mu.Lock()
				defer mu.Unlock()
				ran++
				kills += n
				if !t.Failed() && !t.Skipped() {
					ok++
				}
			}()
			pluginDeath(t, p, &n)
		})
	}
}

// pluginDeath runs one point, counting in *kills the plugin processes it
// killed.
func pluginDeath(t *testing.T, p deathPoint, kills *int) {
	s := newSim(t)
	before := s.state()
	if p.slow != nil {
		if _, err := s.proxy.AddRule(*p.slow); err != nil {
			t.Fatal(err)
		}
	}
	var (
		mu      sync.Mutex
		killed  []int
		wg      sync.WaitGroup
		problem []string
	)
	kill := func(ppid, attempt int) {
		kids := pluginChildren(ppid, p.plugin)
		mu.Lock()
		defer mu.Unlock()
		if len(kids) != 1 {
			problem = append(problem, fmt.Sprintf("attempt %d: %d processes of runbook-plugin-%s under the runbook process, want 1: %v", attempt, len(kids), p.plugin, kids))
		}
		for _, k := range kids {
			if syscall.Kill(k.pid, syscall.SIGKILL) == nil {
				killed = append(killed, k.pid)
			}
		}
	}
	killedAttempts := map[int]bool{}
	res := s.runbook(s.ctx(), func(e journal.Record, cmd *exec.Cmd) {
		if !p.match(e) || killedAttempts[e.Attempt] || (!p.every && len(killedAttempts) > 0) {
			return
		}
		killedAttempts[e.Attempt] = true
		if e.Type == journal.AttemptStarted && e.Attempt > 1 {
			// The host restarts the dead plugin for this attempt's call:
			// kill the new process once it is up and the call under way.
			ppid, n := cmd.Process.Pid, e.Attempt
			wg.Add(1)
			go func() {
				defer wg.Done()
				for deadline := time.Now().Add(10 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
					if len(pluginChildren(ppid, p.plugin)) > 0 {
						time.Sleep(500 * time.Millisecond)
						kill(ppid, n)
						return
					}
				}
			}()
		} else {
			kill(cmd.Process.Pid, e.Attempt)
		}
		if p.slow != nil {
			s.proxy.Clear() // the next attempt runs at full speed
		}
		if p.slowAfter != nil && len(killedAttempts) == 1 {
			if _, err := s.proxy.AddRule(*p.slowAfter); err != nil {
				t.Error(err)
			}
		}
	}, s.failoverArgs()...)
	wg.Wait()
	*kills = len(killed)
	for _, pr := range problem {
		t.Error(pr)
	}
	if p.slowAfter != nil {
		s.proxy.Clear()
	}
	s.assertNoProcesses("after the run")
	noPanic(t, "run", res)
	if len(killed) == 0 {
		t.Fatalf("the point was never reached (exit %d)", res.code)
	}
	if alive := gone(killed, 5*time.Second); len(alive) > 0 {
		t.Errorf("killed plugin processes %v still alive", alive)
	}

	// Every attempt cut off names the plugin and its action; the target step
	// has at least one.
	uses := map[string]string{}
	for _, e := range res.events {
		if e.Uses != "" {
			uses[e.Step] = e.Uses
		}
	}
	sawTarget := false
	for _, e := range res.events {
		if (e.Type != journal.AttemptFailed && e.Type != journal.StepFailed) || e.Error == nil || e.Error.Code != "PluginExited" {
			continue
		}
		_, action, _ := strings.Cut(uses[e.Step], ".")
		if want := "plugin " + p.plugin + " exited during action " + action; !strings.Contains(e.Error.Message, want) {
			t.Errorf("%s %s: %q does not say %q", e.Step, e.Type, e.Error.Message, want)
		}
		sawTarget = sawTarget || e.Step == p.step
	}
	if !sawTarget {
		t.Errorf("no PluginExited failure recorded for %s: %+v", p.step, res.eventsOf(p.step, ""))
	}
	fin, _ := res.finished()
	switch {
	case p.every:
		// The step failed after its retries, naming the plugin and the
		// action; the completed steps were rolled back by a restarted plugin.
		f := res.eventsOf(p.step, journal.StepFailed)
		if len(f) != 1 || f[0].Error == nil || !strings.Contains(f[0].Error.Message, "plugin "+p.plugin+" exited during action "+p.action) {
			t.Errorf("%s: step_failed %+v, want one naming plugin %s and action %s", p.step, f, p.plugin, p.action)
		}
		if res.code != 1 || fin.Status != journal.StatusFailed || !fin.RolledBack {
			t.Fatalf("exit %d, run_finished %+v; want failed and rolled back\n%s", res.code, fin, res.stderr)
		}
		if len(res.eventsOf(dr("db_switchover"), journal.RollbackSucceeded)) != 1 {
			t.Errorf("the switchover was not rolled back")
		}
		if p.compensated && len(res.eventsOf(p.step, journal.RollbackSucceeded)) != 1 {
			t.Errorf("the failed step %s was not compensated: %+v", p.step, res.eventsOf(p.step, ""))
		}
		s.assertActiveIn(s.state(), s.topo.Primary, s.topo.DR)
	case p.action == "asg_cycle":
		// Not idempotent: not retried; the step fails, tolerated, and the
		// summary says what is left.
		f := res.eventsOf(p.step, journal.StepFailed)
		if len(f) != 1 || !f[0].Continued || f[0].Error == nil || !strings.Contains(f[0].Error.Message, "not declared idempotent") {
			t.Errorf("%s: step_failed %+v, want one continued, saying it is not retried", p.step, f)
		}
		if n := len(res.eventsOf(p.step, journal.AttemptStarted)); n != 1 {
			t.Errorf("%s: %d attempts, want 1", p.step, n)
		}
		if res.code != 0 || fin.Status != journal.StatusSucceeded {
			t.Fatalf("exit %d, run_finished %+v", res.code, fin)
		}
		if left, _ := fin.Outputs["left_to_do"].(string); !strings.Contains(left, "restart the workers") {
			t.Errorf("left_to_do = %q, want the workers named", left)
		}
		st := s.state()
		s.assertActiveIn(st, s.topo.DR, s.topo.Primary)
	default:
		// Idempotent: retried with a restarted plugin; the failover completes.
		if len(res.eventsOf(p.step, journal.StepSucceeded)) != 1 {
			t.Errorf("%s did not succeed after the retry: %+v", p.step, res.eventsOf(p.step, ""))
		}
		if res.code != 0 || fin.Status != journal.StatusSucceeded {
			t.Fatalf("exit %d, run_finished %+v\n%s", res.code, fin, res.stderr)
		}
		// The workers step shares the aws process with the old region's
		// stop, which runs beside it: killed with it, it is not retried
		// (not idempotent) and the summary names it.
		workersCut := len(res.eventsOf(dr("workers"), journal.StepFailed)) > 0
		left, _ := fin.Outputs["left_to_do"].(string)
		if workersCut && !strings.HasPrefix(left, "restart the workers") || !workersCut && besidesConfigEdits(t, left, "failover") != "nothing" {
			t.Errorf("left_to_do = %q (workers cut off: %v)", left, workersCut)
		}
		after := s.state()
		s.assertActiveIn(after, s.topo.DR, s.topo.Primary)
		if !workersCut && slices.ContainsFunc(after.drWorkers, func(id string) bool { return slices.Contains(before.drWorkers, id) }) {
			t.Errorf("DR workers not replaced: %v", after.drWorkers)
		}
		if n := s.proxy.Count("rds", "SwitchoverGlobalCluster"); n != 1 {
			t.Errorf("SwitchoverGlobalCluster reached the emulator %d times, want 1", n)
		}
	}
}
