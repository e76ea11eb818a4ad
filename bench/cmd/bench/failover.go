package main

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// waitStep is a step of runbooks/failover.yaml that waits on a timed
// transition of the simulation, with how its polling shows in the fault
// proxy's log.
type waitStep struct {
	Step       string
	Transition string // timing model key
	Service    string // as the fault proxy logs it
	Region     string // "primary" or "dr"
	Stage      int    // position on the critical path; same stage = side by side
	// Resources polled in this window by steps side by side (the two DNS
	// records each poll their own change).
	Resources int
	PollOp    string // the read the wait repeats
}

// The planned failover with Route 53 and an auto-scaling group of workers
// (the simulation's defaults): the S3 backlog drained (a marker object per
// bucket, five side by side) -> db -> services stable -> their targets
// healthy behind the load balancer (a target turns healthy that long after
// its task started: the last starts as the services become stable) ->
// traffic (two DNS records side by side) -> workers and stopping the old
// region side by side. The steps are runbooks/region-switch.yaml's, named
// by their paths in a run of failover.yaml (which calls it as its step
// switch).
var waitSteps = []waitStep{
	{"switch.s3_drain", "s3_replication", "s3", "", 1, 5, "HeadObject"},
	{"switch.db_switchover", "aurora_switchover", "rds", "", 2, 1, "DescribeGlobalClusters"},
	{"switch.start_target", "ecs_stabilize", "ecs", "dr", 3, 1, "DescribeServices"},
	{"switch.target_serving", "elb_target_healthy", "elasticloadbalancing", "dr", 4, 1, "DescribeTargetHealth"},
	{"switch.dns_server", "route53_insync", "route53", "", 5, 2, "GetChange"},
	{"switch.dns_iot", "route53_insync", "route53", "", 5, 2, "GetChange"},
	{"switch.workers", "asg_instance_refresh", "autoscaling", "dr", 6, 1, "DescribeInstanceRefreshes"},
	{"switch.stop_source", "ecs_stabilize", "ecs", "primary", 6, 1, "DescribeServices"},
}

type waitFigure struct {
	waitStep
	Model, Measured time.Duration
	Calls           int
	Ops             string
	// Polls are the PollOp reads after the operation was started (its
	// first mutating call), over PollSpan: the wait's own polling.
	Polls    int
	PollSpan time.Duration
}

// PollRate is the wait's reads per second per polled resource.
func (w waitFigure) PollRate() float64 {
	if w.PollSpan <= 0 {
		return 0
	}
	return float64(w.Polls) / w.PollSpan.Seconds() / float64(max(1, w.Resources))
}

func isRead(op string) bool {
	return strings.HasPrefix(op, "Describe") || strings.HasPrefix(op, "Get") || strings.HasPrefix(op, "List")
}

type failoverFigure struct {
	Preset                  string
	Timing                  map[string]float64
	Wall, Run               time.Duration
	CriticalPath, SumOfWait time.Duration
	Waits                   []waitFigure
	Status                  string
	InterpreterRSS          int64
	PluginRSS               map[string]int64
	InterpreterAnon         int64
	PluginAnon              map[string]int64
}

func measureFailover(ctx context.Context, c *config, rep *report) error {
	if c.skipSim {
		return fmt.Errorf("-skip-sim given: failover not measured")
	}
	dir := filepath.Join(c.work, "sim")
	simctl := filepath.Join(c.bin, "simctl")
	up := run(ctx, c.root, nil, simctl, "up", "--dir", dir, "--timing", "realistic", "--port", "0")
	defer run(context.WithoutCancel(ctx), c.root, nil, simctl, "down", "--dir", dir)
	if up.err != nil {
		return up.err
	}
	env, err := readEnvFile(filepath.Join(dir, "env"))
	if err != nil {
		return err
	}
	env = append(env, "RUNBOOK_PLUGIN_PATH="+c.bin, "PATH="+c.bin+":"+os.Getenv("PATH"))
	get := func(k string) string {
		for _, kv := range env {
			if v, ok := strings.CutPrefix(kv, k+"="); ok {
				return v
			}
		}
		return ""
	}
	em, err := emulator.Connect(ctx, get("RUNBOOK_SIM_EMULATOR_URL"))
	if err != nil {
		return err
	}
	timing, err := em.Timing(ctx)
	if err != nil {
		return err
	}
	regions := map[string]string{"primary": get("RUNBOOK_SIM_PRIMARY_REGION"), "dr": get("RUNBOOK_SIM_DR_REGION")}
	r := run(ctx, c.root, env, c.runbookBin(), "run", "runbooks/failover.yaml", "--auto-approve",
		"--var", "primary=@"+filepath.Join(dir, "config.json"), "--var", "dr=@"+filepath.Join(dir, "config.dr.json"),
		"--var-file", filepath.Join(dir, "inputs.json"), "--state", filepath.Join(dir, "state"), "-o", "json")
	if r.err != nil {
		return r.err
	}
	f := &failoverFigure{Preset: "realistic", Timing: timing, Wall: r.wall, InterpreterRSS: r.peakSelf, PluginRSS: r.peakChildren,
		InterpreterAnon: r.anonSelf, PluginAnon: r.anonChildren}
	if fin, ok := firstEvent(r.events, "run_finished"); ok {
		f.Status = fin.Status
		if s, ok := firstEvent(r.events, "run_started"); ok {
			f.Run = fin.Time.Sub(s.Time)
		}
	}
	log, err := faultproxy.NewClient(get("RUNBOOK_SIM_PROXY_URL")).Log(ctx, faultproxy.Filter{})
	if err != nil {
		return err
	}
	st := stepTimes(r.events)
	stageMax := map[int]time.Duration{}
	for _, w := range waitSteps {
		t, ok := st[w.Step]
		if !ok || t[0].IsZero() || t[1].IsZero() {
			continue
		}
		if skipped(r.events, w.Step) {
			continue
		}
		model := time.Duration(timing[w.Transition] * float64(time.Second))
		wf := waitFigure{waitStep: w, Model: model, Measured: t[1].Sub(t[0])}
		ops := map[string]int{}
		var started time.Time
		for _, e := range log {
			if e.Time.Before(t[0]) || e.Time.After(t[1]) || !strings.EqualFold(e.Service, w.Service) {
				continue
			}
			if w.Region != "" && e.Region != regions[w.Region] {
				continue
			}
			wf.Calls++
			ops[e.Operation]++
			if !isRead(e.Operation) && started.IsZero() {
				started = e.Time
			}
			if e.Operation == w.PollOp && !started.IsZero() {
				wf.Polls++
			}
		}
		if !started.IsZero() {
			wf.PollSpan = t[1].Sub(started)
		}
		wf.Ops = opsString(ops)
		f.Waits = append(f.Waits, wf)
		f.SumOfWait += model
		stageMax[w.Stage] = max(stageMax[w.Stage], model)
	}
	for _, d := range stageMax {
		f.CriticalPath += d
	}
	rep.Failover = f
	rep.FailoverCmd = "simctl up --timing realistic; runbook run runbooks/failover.yaml --auto-approve --var primary=@config.json --var dr=@config.dr.json --var-file inputs.json -o json (default poll_interval 2s)"
	logf("  failover wall %s, run %s, critical path %s, sum of waits %s", ms(f.Wall), ms(f.Run), ms(f.CriticalPath), ms(f.SumOfWait))
	return nil
}

func skipped(evs []event, step string) bool {
	for _, e := range evs {
		if e.Step == step && e.Type == "step_skipped" {
			return true
		}
	}
	return false
}

func opsString(ops map[string]int) string {
	var keys []string
	for k := range ops {
		keys = append(keys, k)
	}
	sort.Slice(keys, func(i, j int) bool {
		return ops[keys[i]] > ops[keys[j]] || ops[keys[i]] == ops[keys[j]] && keys[i] < keys[j]
	})
	var parts []string
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s ×%d", k, ops[k]))
	}
	return strings.Join(parts, ", ")
}

// readEnvFile reads simctl's env file: `export K=V` lines.
func readEnvFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var env []string
	for _, line := range strings.Split(string(b), "\n") {
		if kv, ok := strings.CutPrefix(strings.TrimSpace(line), "export "); ok && strings.Contains(kv, "=") {
			env = append(env, kv)
		}
	}
	return env, nil
}
