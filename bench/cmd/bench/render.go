package main

import (
	"fmt"
	"math"
	"sort"
	"strings"
	"time"
)

type machineInfo struct {
	CPU, Go, Kernel, Memory, Date string
	Cores                         int
}

// report is everything one run measured.
type report struct {
	Machine  machineInfo
	Quick    bool
	Problems []string

	Steps              []stepsFigure
	StepSlope          time.Duration
	StepsCmd, FsyncCmd string
	Fsync100           int
	Fsync1000          int

	Ansible           []ansibleFigure
	AnsibleVersion    string
	AnsibleSlope      time.Duration
	RunbookSlopeSmall time.Duration
	AnsibleCmd        string

	Startup    *startupFigure
	StartupCmd string

	Validation    *validationFigure
	ValidationCmd string

	Parallel    []parallelFigure
	ParallelCmd string

	Failover    *failoverFigure
	FailoverCmd string

	Go    []goBench
	GoCmd string
}

func (r *report) goBench(pkg, name string) *goBench {
	for i := range r.Go {
		if r.Go[i].Pkg == pkg && r.Go[i].Name == name {
			return &r.Go[i]
		}
	}
	return nil
}

func (r *report) step(n int) *stepsFigure {
	for i := range r.Steps {
		if r.Steps[i].N == n {
			return &r.Steps[i]
		}
	}
	return nil
}

type target struct {
	what, goal, figure string
	holds              *bool
}

func yes(b bool) *bool { return &b }

func verdict(t target) string {
	switch {
	case t.holds == nil:
		return "not measured"
	case *t.holds:
		return "**holds**"
	}
	return "**does not hold**"
}

func (r *report) targets() []target {
	var ts []target
	if f := r.step(1000); f != nil {
		ts = append(ts, target{"Per-step overhead without fsync cost (CLI, N=1,000, state on tmpfs)", "≤ 0.5 ms median",
			"median " + ms(f.IntervalTmpfs), yes(f.IntervalTmpfs > 0 && f.IntervalTmpfs <= 500*time.Microsecond)})
	}
	if b := r.goBench("sdk/pluginhost", "BenchmarkRunNoopSteps/N=1000/journal=nosync"); b != nil {
		v := time.Duration(b.Median["ns/step"])
		ts = append(ts, target{"Per-step overhead without fsync (Go: engine + host + plugin process, N=1,000)", "≤ 0.5 ms",
			"mean " + ms(v), yes(v <= 500*time.Microsecond)})
	}
	if r.Fsync1000 > 0 && r.Fsync100 > 0 {
		per := float64(r.Fsync1000-r.Fsync100) / 900
		ts = append(ts, target{"fsyncs per step (journal on disk)", "≤ 1", fmt.Sprintf("%.2f (%d for 100 steps, %d for 1,000)", per, r.Fsync100, r.Fsync1000), yes(per <= 1.0)})
	}
	if len(r.Steps) == 0 {
		// nothing below needs the step sizes
	} else if small, big := r.step(100), r.step(r.Steps[len(r.Steps)-1].N); small != nil && big != nil && big.N > small.N {
		ratio := float64(big.Interval) / float64(small.Interval)
		ts = append(ts, target{fmt.Sprintf("Linear growth: median step interval at N=%d over N=%d", big.N, small.N), "≈ 1 (≤ 1.5)",
			fmt.Sprintf("%.2f (%s vs %s)", ratio, ms(big.Interval), ms(small.Interval)), yes(ratio <= 1.5)})
	}
	if r.AnsibleSlope > 0 && r.RunbookSlopeSmall > 0 {
		ratio := float64(r.AnsibleSlope) / float64(r.RunbookSlopeSmall)
		ts = append(ts, target{"Per-step overhead against Ansible (ansible.builtin.ping, connection: local)", "≥ 100× less",
			fmt.Sprintf("%.0f× (%s vs %s per step)", ratio, ms(r.AnsibleSlope), ms(r.RunbookSlopeSmall)), yes(ratio >= 100)})
	}
	if s := r.Startup; s != nil {
		ts = append(ts, target{"Start-up: `runbook run` to the first action, five plugins", "≤ 150 ms", ms(s.ToFirstAction), yes(s.ToFirstAction <= 150*time.Millisecond)})
	}
	if v := r.Validation; v != nil {
		ts = append(ts, target{"`runbook validate` of 1,000 steps with expressions", "≤ 100 ms", ms(v.Wall1000), yes(v.Wall1000 <= 100*time.Millisecond)})
	}
	if f := r.step(1000); f != nil {
		ts = append(ts, target{"Peak RSS of the interpreter over the 1,000-step run", "≤ 40 MiB",
			fmt.Sprintf("%s (private: %s)", mib(f.PeakRSS), mib(f.PeakAnon)), yes(f.PeakRSS <= 40*1024)})
	}
	var worst, worstAnon int64
	worstName := ""
	consider := func(name string, kib, anon int64) {
		if kib > worst {
			worst, worstName, worstAnon = kib, name, anon
		}
	}
	if f := r.step(1000); f != nil {
		consider("runbook-plugin-test (1,000 steps)", f.PluginRSS, f.PluginAnon)
	}
	if s := r.Startup; s != nil {
		for k, v := range s.PluginRSS {
			consider(k+" (start-up)", v, s.PluginAnon[k])
		}
	}
	if f := r.Failover; f != nil {
		for k, v := range f.PluginRSS {
			consider(k+" (failover)", v, f.PluginAnon[k])
		}
	}
	if worst > 0 {
		ts = append(ts, target{"Peak RSS of each plugin", "≤ 40 MiB each", fmt.Sprintf("largest: %s, %s (private: %s)", worstName, mib(worst), mib(worstAnon)), yes(worst <= 40*1024)})
	}
	if f := r.Failover; f != nil && f.CriticalPath > 0 {
		ts = append(ts, target{"Failover wall time against the critical path (realistic timing)", "≤ critical path + 5%",
			fmt.Sprintf("%s vs %s (+%.1f%%)", ms(f.Wall), ms(f.CriticalPath), 100*(f.Wall.Seconds()/f.CriticalPath.Seconds()-1)), yes(f.Wall.Seconds() <= 1.05*f.CriticalPath.Seconds())})
		ts = append(ts, target{"Failover wall time against all waits one at a time", "≤ 60%",
			fmt.Sprintf("%.0f%% (%s of %s)", 100*f.Wall.Seconds()/f.SumOfWait.Seconds(), ms(f.Wall), ms(f.SumOfWait)), yes(f.Wall.Seconds() <= 0.6*f.SumOfWait.Seconds())})
		okDelay, okRate := true, true
		worstDelay, worstRate := "", 0.0
		for _, w := range f.Waits {
			delay := w.Measured - w.Model
			if delay > max(2*time.Second, w.Model/10) {
				okDelay = false
			}
			if worstDelay == "" || delay > parseDelay(worstDelay) {
				worstDelay = fmt.Sprintf("%s (%s)", ms(delay), w.Step)
			}
			rate := w.PollRate()
			worstRate = math.Max(worstRate, rate)
			if rate > 0.5 {
				okRate = false
			}
		}
		ts = append(ts, target{"Readiness noticed after the emulated resource is ready", "within max(2 s, 10% of the wait)", "worst " + worstDelay, yes(okDelay)})
		ts = append(ts, target{"Polling calls per resource", "≤ 1 per 2 s on average", fmt.Sprintf("worst %.2f calls/s", worstRate), yes(okRate)})
	}
	for _, p := range r.Parallel {
		ts = append(ts, target{fmt.Sprintf("100 parallel children, %s", maxParallelName(p.MaxParallel)), "group ≈ ideal (waves × slowest child)",
			fmt.Sprintf("%s vs ideal %s (slowest child %s)", ms(p.Group), ms(p.Ideal), ms(p.Slowest)), yes(p.Group.Seconds() <= 1.1*p.Ideal.Seconds()+0.05)})
	}
	return ts
}

func parseDelay(s string) time.Duration {
	f := strings.Fields(s)
	if len(f) < 2 {
		return 0
	}
	d, _ := time.ParseDuration(f[0] + strings.TrimSuffix(f[1], ")"))
	return d
}

func maxParallelName(mp int) string {
	if mp == 0 {
		return "no max_parallel"
	}
	return fmt.Sprintf("max_parallel: %d", mp)
}

func render(r *report) string {
	var b strings.Builder
	p := func(format string, args ...any) { fmt.Fprintf(&b, format+"\n", args...) }
	p("# Benchmarks")
	p("")
	p("<!-- Generated by `make bench` (bench/run.sh -> go run ./bench/cmd/bench): do not edit the figures by hand. -->")
	p("")
	p("How fast runbook is where it matters, measured side by side with the alternative where one exists, in one run on one")
	p("machine. `make bench` reruns everything and rewrites this file; the command behind each figure is given with it. The")
	p("targets are what we hold ourselves to; they are compared here, never asserted in tests.")
	p("")
	m := r.Machine
	p("| machine | |")
	p("| --- | --- |")
	p("| CPU | %s, %d cores |", m.CPU, m.Cores)
	p("| memory | %s |", m.Memory)
	p("| OS | %s |", m.Kernel)
	p("| Go | %s |", m.Go)
	p("| date | %s |", m.Date)
	if r.Quick {
		p("| run | `-quick`: fewer sizes and repetitions |")
	}
	p("")
	p("## Targets")
	p("")
	p("| what | target | figure | |")
	p("| --- | --- | --- | --- |")
	for _, t := range r.targets() {
		p("| %s | %s | %s | %s |", t.what, t.goal, t.figure, verdict(t))
	}
	p("")
	renderSteps(r, p)
	renderAnsible(r, p)
	renderStartup(r, p)
	renderValidation(r, p)
	renderFailover(r, p)
	renderMemory(r, p)
	renderParallel(r, p)
	renderGo(r, p)
	p("## Notes")
	p("")
	p("%s", notes)
	if len(r.Problems) > 0 {
		p("## Not measured in this run")
		p("")
		for _, pr := range r.Problems {
			p("- %s", strings.ReplaceAll(strings.TrimSpace(pr), "\n", " "))
		}
		p("")
	}
	return b.String()
}

type printer func(string, ...any)

func renderSteps(r *report, p printer) {
	if len(r.Steps) == 0 {
		return
	}
	p("## 1. Per-step overhead")
	p("")
	p("N no-op steps through a real plugin process over gRPC (AutoMTLS), journal on disk with its fsyncs, and the same with")
	p("the state directory on tmpfs (`/dev/shm`), where an fsync costs nothing. The step interval is the time from one")
	p("step's `step_started` to the next's, read from the JSON events: everything the interpreter, the journal, the host")
	p("and the plugin do for one step.")
	p("")
	p("Command: `%s`", r.StepsCmd)
	p("")
	p("| N | runs | wall (median) | wall / N | step interval median | p90 | on tmpfs: wall | on tmpfs: interval median |")
	p("| ---: | ---: | ---: | ---: | ---: | ---: | ---: | ---: |")
	for _, f := range r.Steps {
		p("| %d | %d | %s | %s | %s | %s | %s | %s |", f.N, f.Runs, ms(f.Wall), ms(f.Wall/time.Duration(f.N)), ms(f.Interval), ms(f.IntervalP90), ms(f.WallTmpfs), ms(f.IntervalTmpfs))
	}
	p("")
	p("Least-squares slope of wall time over N: **%s per step** (the intercept is start-up).", ms(r.StepSlope))
	p("")
	if r.Fsync1000 > 0 {
		p("fsyncs (`%s`): %d for 100 steps, %d for 1,000 steps, so **%.2f per step**: the journal syncs at records",
			r.FsyncCmd, r.Fsync100, r.Fsync1000, float64(r.Fsync1000-r.Fsync100)/900)
		p("after which the engine acts (`attempt_started`, approvals, the run's end); the others ride along (docs/execution.md).")
		p("")
	}
}

func renderAnsible(r *report, p printer) {
	if len(r.Ansible) == 0 {
		return
	}
	p("## 2. Against Ansible")
	p("")
	p("The same N no-op steps as a playbook: `connection: local`, `gather_facts: false`, one `ansible.builtin.ping` task per")
	p("step (a module runs out of process, as our actions do). %s, installed by bench/run.sh into bench/.venv-ansible.", r.AnsibleVersion)
	p("")
	p("Command: `%s`", r.AnsibleCmd)
	p("")
	p("| N | runs | Ansible wall (median) | runbook wall (median, journal on disk) |")
	p("| ---: | ---: | ---: | ---: |")
	for _, a := range r.Ansible {
		rb := "—"
		if f := r.step(a.N); f != nil {
			rb = ms(f.Wall)
		}
		p("| %d | %d | %s | %s |", a.N, a.Runs, ms(a.Wall), rb)
	}
	p("")
	if r.RunbookSlopeSmall > 0 {
		p("Per step (slope over N): Ansible **%s**, runbook **%s**: **%.0f×**.", ms(r.AnsibleSlope), ms(r.RunbookSlopeSmall), float64(r.AnsibleSlope)/float64(r.RunbookSlopeSmall))
		p("")
	}
}

func renderStartup(r *report, p printer) {
	s := r.Startup
	if s == nil {
		return
	}
	p("## 3. Start-up")
	p("")
	p("Command: `%s`", r.StartupCmd)
	p("")
	p("| runs | to `run_started` (validated, locked, five plugins started) | to the first `attempt_started` | `runbook validate` of the same file |")
	p("| ---: | ---: | ---: | ---: |")
	p("| %d | %s | %s | %s |", s.Runs, ms(s.ToRunStarted), ms(s.ToFirstAction), ms(s.Validate))
	p("")
	if b := r.goBench("sdk/pluginhost", "BenchmarkStartFivePlugins"); b != nil {
		p("`BenchmarkStartFivePlugins` (five copies of the 19 MB test plugin: hash, launch, AutoMTLS handshake, Describe, then Close): %s.", ms(time.Duration(b.Median["ns/op"])))
		p("")
	}
}

func renderValidation(r *report, p printer) {
	v := r.Validation
	if v == nil {
		return
	}
	p("## 4. Validation")
	p("")
	p("Command: `%s`", r.ValidationCmd)
	p("")
	p("| runbook | size | runs | wall (median) |")
	p("| --- | ---: | ---: | ---: |")
	p("| 1 step (fixed cost: start, hash and describe the AWS plugin) | | %d | %s |", v.Runs, ms(v.Wall1))
	p("| 1,000 steps | %d KB | %d | %s |", v.Bytes/1000, v.Runs, ms(v.Wall1000))
	p("")
	if b := r.goBench("sdk/runbook", "BenchmarkValidate1000Steps"); b != nil {
		p("In process, `BenchmarkValidate1000Steps` (decode, catalog look-ups, schema checks, every expression compiled; the")
		p("compile caches are warm after the first iteration): %s, %.0f allocations.", ms(time.Duration(b.Median["ns/op"])), b.Median["allocs/op"])
		if c := r.goBench("sdk/runbook", "BenchmarkValidate1000StepsCold"); c != nil {
			p("With every expression new to the process, as in one `runbook validate` (`BenchmarkValidate1000StepsCold`): %s.", ms(time.Duration(c.Median["ns/op"])))
		}
		p("")
	}
}

func renderMemory(r *report, p printer) {
	p("## 7. Memory")
	p("")
	p("Peak resident set size (VmHWM from /proc, sampled every 10 ms while the command runs) and the largest private")
	p("(anonymous) resident memory seen. The difference is file-backed pages of the executable itself (code, read-only")
	p("data, the runtime's tables), shared with the page cache and with every other process running the same binary.")
	p("")
	p("| process | during | peak RSS | private |")
	p("| --- | --- | ---: | ---: |")
	for _, f := range r.Steps {
		p("| runbook | %d no-op steps | %s | %s |", f.N, mib(f.PeakRSS), mib(f.PeakAnon))
	}
	if f := r.step(1000); f != nil {
		p("| runbook-plugin-test | 1000 no-op steps | %s | %s |", mib(f.PluginRSS), mib(f.PluginAnon))
	}
	if s := r.Startup; s != nil {
		for _, k := range sortedKeys(s.PluginRSS) {
			p("| %s | start-up runbook | %s | %s |", k, mib(s.PluginRSS[k]), mib(s.PluginAnon[k]))
		}
	}
	if f := r.Failover; f != nil {
		p("| runbook | simulated failover | %s | %s |", mib(f.InterpreterRSS), mib(f.InterpreterAnon))
		for _, k := range sortedKeys(f.PluginRSS) {
			p("| %s | simulated failover | %s | %s |", k, mib(f.PluginRSS[k]), mib(f.PluginAnon[k]))
		}
	}
	p("")
}

func sortedKeys(m map[string]int64) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

func renderFailover(r *report, p printer) {
	f := r.Failover
	if f == nil {
		return
	}
	p("## 5–6. Failover time and polling cost")
	p("")
	p("Command: `%s`. Run status: %s.", r.FailoverCmd, f.Status)
	p("")
	p("The timing model (`%s` preset, seconds): %s.", f.Preset, timingString(f.Timing))
	p("")
	p("| | time |")
	p("| --- | ---: |")
	p("| wall time of `runbook run` (process start to exit) | %s |", ms(f.Wall))
	p("| the run (`run_started` to `run_finished`) | %s |", ms(f.Run))
	p("| critical path of the model: S3 backlog drained → db → services stable → healthy behind the load balancer → traffic (DNS side by side) → workers and stopping the old region side by side | %s |", ms(f.CriticalPath))
	p("| every wait one at a time | %s |", ms(f.SumOfWait))
	p("")
	p("Each wait: the model's duration, the step's measured duration, the delay past readiness (measured − model: an upper")
	p("bound, since it includes the action's own calls before the wait), the polling reads the fault proxy logged after the")
	p("operation was started (its first mutating call), and every call to that service during the step.")
	p("")
	p("| step | transition | model | measured | noticed after | polls | polls per second per resource | all calls of the service in the step |")
	p("| --- | --- | ---: | ---: | ---: | ---: | ---: | --- |")
	for _, w := range f.Waits {
		res := ""
		if w.Resources > 1 {
			res = fmt.Sprintf(" (%d resources side by side)", w.Resources)
		}
		p("| %s | %s | %s | %s | %s | %d %s over %s%s | %.2f | %s |", w.Step, w.Transition, ms(w.Model), ms(w.Measured), ms(w.Measured-w.Model), w.Polls, w.PollOp, ms(w.PollSpan), res, w.PollRate(), w.Ops)
	}
	p("")
}

func timingString(t map[string]float64) string {
	var ks []string
	for k := range t {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	var parts []string
	for _, k := range ks {
		parts = append(parts, fmt.Sprintf("%s %g", k, t[k]))
	}
	return strings.Join(parts, ", ")
}

func renderParallel(r *report, p printer) {
	if len(r.Parallel) == 0 {
		return
	}
	p("## 8. Parallel groups")
	p("")
	p("Command: `%s`", r.ParallelCmd)
	p("")
	p("| concurrency | runs | group wall (median) | slowest child | ideal (waves × child) | overhead over ideal |")
	p("| --- | ---: | ---: | ---: | ---: | ---: |")
	for _, f := range r.Parallel {
		p("| %s | %d | %s | %s | %s | %s |", maxParallelName(f.MaxParallel), f.Runs, ms(f.Group), ms(f.Slowest), ms(f.Ideal), ms(f.Group-f.Ideal))
	}
	p("")
}

func renderGo(r *report, p printer) {
	if len(r.Go) == 0 {
		return
	}
	p("## Go benchmarks")
	p("")
	p("Command: `%s`.", r.GoCmd)
	p("")
	p("| package | benchmark | time/op | per step | allocs/op |")
	p("| --- | --- | ---: | ---: | ---: |")
	for _, b := range r.Go {
		op := fmt.Sprintf("%s [%s–%s]", ms(time.Duration(b.Median["ns/op"])), ms(time.Duration(b.Min["ns/op"])), ms(time.Duration(b.Max["ns/op"])))
		step := ""
		if v, ok := b.Median["ns/step"]; ok {
			step = ms(time.Duration(v))
		}
		allocs := ""
		if v, ok := b.Median["allocs/op"]; ok {
			allocs = fmt.Sprintf("%.0f", v)
		}
		p("| %s | %s | %s | %s | %s |", b.Pkg, b.Name, op, step, allocs)
	}
	p("")
}
