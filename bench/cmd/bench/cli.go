package main

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// stepsFigure is one size of the no-op step measurement.
type stepsFigure struct {
	N int
	// Wall is the median wall time of `runbook run` (process start to exit).
	Wall, WallTmpfs time.Duration
	// Interval is the median (and 90th percentile) time from one step's
	// start to the next's: the per-step overhead, fsync included. Tmpfs:
	// the same with the state directory in memory, where fsync costs
	// nothing.
	Interval, IntervalP90, IntervalTmpfs time.Duration
	Runs                                 int
	PeakRSS                              int64 // interpreter, KiB
	PluginRSS                            int64 // the test plugin, KiB
	PeakAnon, PluginAnon                 int64 // their private memory, KiB
}

func noopRunbook(n int) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 1\nname: noop-%d\nplugins:\n  test: { command: ./bin/runbook-plugin-test }\nsteps:\n", n)
	for i := range n {
		fmt.Fprintf(&b, "  - id: s%d\n    uses: test.noop\n", i)
	}
	return b.String()
}

func (c *config) runbookBin() string { return filepath.Join(c.bin, "runbook") }

func (c *config) sizes() []int {
	if c.quick {
		return []int{10, 100, 1000}
	}
	return []int{10, 100, 1000, 10000}
}

func measureSteps(ctx context.Context, c *config, rep *report) error {
	shm := ""
	if fi, err := os.Stat("/dev/shm"); err == nil && fi.IsDir() {
		if d, err := os.MkdirTemp("/dev/shm", "runbook-bench-"); err == nil {
			shm = d
			defer os.RemoveAll(d)
		}
	}
	rep.StepsCmd = "runbook run noop-N.yaml --state DIR -o json  (N steps `uses: test.noop`, the test plugin sdk/pluginhost/internal/testplugin)"
	for _, n := range c.sizes() {
		path := filepath.Join(c.work, fmt.Sprintf("noop-%d.yaml", n))
		if err := os.WriteFile(path, []byte(noopRunbook(n)), 0o644); err != nil {
			return err
		}
		reps := c.count
		if n >= 10000 {
			reps = 1
		}
		f := stepsFigure{N: n, Runs: reps}
		var walls, wallsT, ivs, ivsT []time.Duration
		for i := range reps {
			for _, mem := range []bool{false, true} {
				if mem && shm == "" {
					continue
				}
				state := filepath.Join(c.work, "state")
				if mem {
					state = filepath.Join(shm, "state")
				}
				r := run(ctx, c.work, nil, c.runbookBin(), "run", path, "--state", state, "-o", "json")
				if r.err != nil {
					return r.err
				}
				iv := intervals(r.events)
				if mem {
					wallsT = append(wallsT, r.wall)
					ivsT = append(ivsT, iv...)
					continue
				}
				walls = append(walls, r.wall)
				ivs = append(ivs, iv...)
				f.PeakRSS = max(f.PeakRSS, r.peakSelf)
				f.PluginRSS = max(f.PluginRSS, r.peakChildren["runbook-plugin-test"])
				f.PeakAnon = max(f.PeakAnon, r.anonSelf)
				f.PluginAnon = max(f.PluginAnon, r.anonChildren["runbook-plugin-test"])
				_ = i
			}
		}
		f.Wall, f.WallTmpfs = median(walls), median(wallsT)
		f.Interval, f.IntervalP90, f.IntervalTmpfs = median(ivs), percentile(ivs, 0.9), median(ivsT)
		rep.Steps = append(rep.Steps, f)
		logf("  N=%d wall %s, step interval median %s (tmpfs %s)", n, ms(f.Wall), ms(f.Interval), ms(f.IntervalTmpfs))
	}
	var xs, ys []float64
	for _, f := range rep.Steps {
		xs = append(xs, float64(f.N))
		ys = append(ys, f.Wall.Seconds())
	}
	rep.StepSlope = time.Duration(slope(xs, ys) * 1e9)

	// fsyncs, counted by strace for two sizes: the difference is per step.
	if _, err := exec.LookPath("strace"); err != nil {
		return fmt.Errorf("strace not found: fsyncs not counted")
	}
	counts := map[int]int{}
	for _, n := range []int{100, 1000} {
		out := filepath.Join(c.work, fmt.Sprintf("strace-%d.txt", n))
		path := filepath.Join(c.work, fmt.Sprintf("noop-%d.yaml", n))
		r := run(ctx, c.work, nil, "strace", "-f", "-qq", "-c", "-e", "trace=fsync,fdatasync,sync_file_range,sync,syncfs", "-o", out,
			c.runbookBin(), "run", path, "--state", filepath.Join(c.work, "state"), "-o", "json")
		if r.err != nil {
			return r.err
		}
		counts[n] = syncCalls(out)
	}
	rep.Fsync100, rep.Fsync1000 = counts[100], counts[1000]
	rep.FsyncCmd = "strace -f -c -e trace=fsync,fdatasync,sync_file_range,sync,syncfs runbook run noop-N.yaml"
	return nil
}

// intervals are the times between consecutive step starts.
func intervals(evs []event) []time.Duration {
	var out []time.Duration
	var last time.Time
	for _, e := range evs {
		if e.Type != "step_started" {
			continue
		}
		if !last.IsZero() {
			out = append(out, e.Time.Sub(last))
		}
		last = e.Time
	}
	return out
}

// syncCalls sums the calls column of strace -c output.
func syncCalls(path string) int {
	b, err := os.ReadFile(path)
	if err != nil {
		return -1
	}
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Fields(line)
		if len(f) < 5 || f[len(f)-1] == "total" {
			continue
		}
		switch f[len(f)-1] {
		case "fsync", "fdatasync", "sync_file_range", "sync", "syncfs":
			if v, err := strconv.Atoi(f[3]); err == nil {
				n += v
			}
		}
	}
	return n
}

// ansibleFigure is one size of the Ansible comparison.
type ansibleFigure struct {
	N    int
	Wall time.Duration
	Runs int
}

func measureAnsible(ctx context.Context, c *config, rep *report) error {
	if c.ansible == "" {
		return fmt.Errorf("no -ansible given: comparison skipped")
	}
	out, err := exec.Command(c.ansible, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %v", c.ansible, err)
	}
	rep.AnsibleVersion = strings.TrimSpace(strings.SplitN(string(out), "\n", 2)[0])
	py := filepath.Join(filepath.Dir(c.ansible), "python")
	sizes := []int{10, 100, 300}
	if c.quick {
		sizes = []int{10, 100}
	}
	env := []string{"ANSIBLE_LOCALHOST_WARNING=false", "ANSIBLE_INVENTORY_UNPARSED_WARNING=false", "ANSIBLE_NOCOLOR=1",
		"ANSIBLE_RETRY_FILES_ENABLED=false", "ANSIBLE_HOME=" + filepath.Join(c.work, "ansible-home")}
	var xs, ys []float64
	for _, n := range sizes {
		var b strings.Builder
		fmt.Fprintf(&b, "- hosts: localhost\n  connection: local\n  gather_facts: false\n  vars:\n    ansible_python_interpreter: %s\n  tasks:\n", py)
		for i := range n {
			fmt.Fprintf(&b, "    - name: s%d\n      ansible.builtin.ping:\n", i)
		}
		path := filepath.Join(c.work, fmt.Sprintf("ping-%d.yaml", n))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return err
		}
		reps := 3
		if n > 100 || c.quick {
			reps = 1
		}
		var walls []time.Duration
		for range reps {
			r := run(ctx, c.work, env, c.ansible, "-i", "localhost,", "-c", "local", path)
			if r.err != nil {
				return r.err
			}
			walls = append(walls, r.wall)
		}
		f := ansibleFigure{N: n, Wall: median(walls), Runs: reps}
		rep.Ansible = append(rep.Ansible, f)
		xs = append(xs, float64(n))
		ys = append(ys, f.Wall.Seconds())
		logf("  ansible N=%d wall %s", n, ms(f.Wall))
	}
	rep.AnsibleSlope = time.Duration(slope(xs, ys) * 1e9)
	// runbook's slope over the same sizes (interpolating from its figures).
	var rx, ry []float64
	for _, f := range rep.Steps {
		if f.N <= sizes[len(sizes)-1]*10 {
			rx = append(rx, float64(f.N))
			ry = append(ry, f.Wall.Seconds())
		}
	}
	rep.RunbookSlopeSmall = time.Duration(slope(rx, ry) * 1e9)
	rep.AnsibleCmd = "ansible-playbook -i localhost, -c local ping-N.yaml  (N tasks `ansible.builtin.ping`, gather_facts: false)"
	return nil
}

// startupFigure: from `runbook run` to the first action of a runbook using
// the five DR plugins.
type startupFigure struct {
	ToFirstAction, ToRunStarted, Validate time.Duration
	Runs                                  int
	PluginRSS, PluginAnon                 map[string]int64
}

const startupRunbook = `version: 1
name: five-plugins
plugins:
  aws: { command: runbook-plugin-aws }
  dns: { command: runbook-plugin-dns }
  k8sworkers: { command: runbook-plugin-k8sworkers }
  notify: { command: runbook-plugin-notify }
  spacelift: { command: runbook-plugin-spacelift }
steps:
  - id: notice
    uses: notify.cookie_invalidation_notice
    with:
      hostname: spacelift.example.com
      active_region: eu-west-3
      console: true
`

func measureStartup(ctx context.Context, c *config, rep *report) error {
	dir := filepath.Join(c.work, "startup")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	path := filepath.Join(dir, "startup.yaml")
	if err := os.WriteFile(path, []byte(startupRunbook), 0o644); err != nil {
		return err
	}
	env := []string{"RUNBOOK_PLUGIN_PATH=" + c.bin}
	if r := run(ctx, dir, env, c.runbookBin(), "plugins", "lock", path); r.err != nil {
		return r.err
	}
	f := startupFigure{Runs: c.count, PluginRSS: map[string]int64{}, PluginAnon: map[string]int64{}}
	var first, started, val []time.Duration
	for range c.count {
		r := run(ctx, dir, env, c.runbookBin(), "run", path, "--state", filepath.Join(dir, "state"), "-o", "json")
		if r.err != nil {
			return r.err
		}
		a, ok := firstEvent(r.events, "attempt_started")
		s, ok2 := firstEvent(r.events, "run_started")
		if !ok || !ok2 {
			return fmt.Errorf("no attempt_started in the start-up run")
		}
		first = append(first, a.Time.Sub(r.start))
		started = append(started, s.Time.Sub(r.start))
		for k, v := range r.peakChildren {
			f.PluginRSS[k] = max(f.PluginRSS[k], v)
			f.PluginAnon[k] = max(f.PluginAnon[k], r.anonChildren[k])
		}
		v := run(ctx, dir, env, c.runbookBin(), "validate", path)
		if v.err != nil {
			return v.err
		}
		val = append(val, v.wall)
	}
	f.ToFirstAction, f.ToRunStarted, f.Validate = median(first), median(started), median(val)
	rep.Startup = &f
	rep.StartupCmd = "runbook run five-plugins.yaml -o json (aws, dns, k8sworkers, notify, spacelift pinned by runbook.lock; first step notify.cookie_invalidation_notice): process start to the first attempt_started"
	logf("  start-up to first action %s (run_started %s, validate %s)", ms(f.ToFirstAction), ms(f.ToRunStarted), ms(f.Validate))
	return nil
}

// validationRunbook is n steps of the AWS plugin's ecs_services with
// expressions in every step (if, templated with, until), and a parallel
// group of two core.log steps every ten: the shape of
// sdk/runbook's BenchmarkValidate1000Steps, against the real plugin.
func validationRunbook(n int) string {
	var b strings.Builder
	b.WriteString("version: 1\nname: generated\ninputs:\n  region: { type: string, default: eu-west-3 }\n  count: { type: number, default: 2 }\n  enabled: { type: bool, default: true }\nplugins:\n  aws: { command: runbook-plugin-aws }\nsteps:\n")
	for i := 0; i < n; {
		if i%10 == 9 && i+2 < n {
			fmt.Fprintf(&b, "  - id: g%d\n    if: inputs.enabled\n    parallel:\n", i)
			for j := range 2 {
				fmt.Fprintf(&b, "      - id: s%d\n        uses: core.log\n        with: { message: \"step %d in ${{ inputs.region }} after ${{ steps.s%d.outputs.stable }}\" }\n", i+j+1, i+j+1, i-1)
			}
			i += 3
			continue
		}
		fmt.Fprintf(&b, "  - id: s%d\n    uses: aws.ecs_services\n", i)
		if i > 0 {
			prev := i - 1
			if (i-1)%10 == 9 {
				prev = i - 2
			}
			fmt.Fprintf(&b, "    if: inputs.enabled && steps.s%d.status == \"succeeded\"\n", prev)
		}
		fmt.Fprintf(&b, "    with:\n      cluster: \"c-${{ inputs.region }}\"\n      desired_counts: { svc%d: \"${{ inputs.count + %d }}\" }\n      region: ${{ inputs.region }}\n", i, i)
		b.WriteString("    until: outputs.stable == inputs.enabled\n")
		i++
	}
	return b.String()
}

type validationFigure struct {
	Wall1000, Wall1 time.Duration
	Runs            int
	Bytes           int
}

func measureValidation(ctx context.Context, c *config, rep *report) error {
	dir := filepath.Join(c.work, "validate")
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	env := []string{"RUNBOOK_PLUGIN_PATH=" + c.bin}
	f := validationFigure{Runs: c.count + 2}
	for _, n := range []int{1, 1000} {
		src := validationRunbook(n)
		path := filepath.Join(dir, fmt.Sprintf("generated-%d.yaml", n))
		if err := os.WriteFile(path, []byte(src), 0o644); err != nil {
			return err
		}
		var walls []time.Duration
		for range f.Runs {
			r := run(ctx, dir, env, c.runbookBin(), "validate", path)
			if r.err != nil {
				return r.err
			}
			walls = append(walls, r.wall)
		}
		if n == 1 {
			f.Wall1 = median(walls)
		} else {
			f.Wall1000, f.Bytes = median(walls), len(src)
		}
	}
	rep.Validation = &f
	rep.ValidationCmd = "runbook validate generated-1000.yaml (1,000 steps: `if`, three templated `with` values and `until` per aws.ecs_services step; a parallel group of two core.log steps every ten)"
	logf("  validate 1000 steps %s (1 step %s)", ms(f.Wall1000), ms(f.Wall1))
	return nil
}

// parallelFigure: a group of 100 children sleeping d each.
type parallelFigure struct {
	MaxParallel    int
	Child          time.Duration
	Group, Slowest time.Duration
	Ideal          time.Duration
	Runs           int
}

func measureParallel(ctx context.Context, c *config, rep *report) error {
	const children = 100
	child := 200 * time.Millisecond
	for _, mp := range []int{10, 0} {
		var b strings.Builder
		b.WriteString("version: 1\nname: parallel\nplugins:\n  test: { command: ./bin/runbook-plugin-test }\nsteps:\n  - id: group\n")
		if mp > 0 {
			fmt.Fprintf(&b, "    max_parallel: %d\n", mp)
		}
		b.WriteString("    parallel:\n")
		for i := range children {
			fmt.Fprintf(&b, "      - { id: c%d, uses: test.sleep, with: { duration: %s } }\n", i, child)
		}
		path := filepath.Join(c.work, fmt.Sprintf("parallel-%d.yaml", mp))
		if err := os.WriteFile(path, []byte(b.String()), 0o644); err != nil {
			return err
		}
		f := parallelFigure{MaxParallel: mp, Child: child, Runs: 3}
		waves := 1
		if mp > 0 {
			waves = (children + mp - 1) / mp
		}
		f.Ideal = time.Duration(waves) * child
		var groups, slowest []time.Duration
		for range f.Runs {
			r := run(ctx, c.work, nil, c.runbookBin(), "run", path, "--state", filepath.Join(c.work, "state"), "-o", "json")
			if r.err != nil {
				return r.err
			}
			st := stepTimes(r.events)
			g := st["group"]
			groups = append(groups, g[1].Sub(g[0]))
			var sl time.Duration
			for id, t := range st {
				if id != "group" && !t[0].IsZero() && !t[1].IsZero() {
					sl = max(sl, t[1].Sub(t[0]))
				}
			}
			slowest = append(slowest, sl)
		}
		f.Group, f.Slowest = median(groups), median(slowest)
		rep.Parallel = append(rep.Parallel, f)
		logf("  parallel max_parallel=%d group %s slowest child %s ideal %s", mp, ms(f.Group), ms(f.Slowest), ms(f.Ideal))
	}
	rep.ParallelCmd = "runbook run parallel.yaml -o json (one group of 100 `test.sleep` children, duration 200ms): group step_started to step_succeeded"
	return nil
}
