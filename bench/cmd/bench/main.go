// Command bench measures runbook against its performance targets and, where a
// peer exists, against the alternative (Ansible), and rewrites the figures of
// docs/benchmarks.md. `make bench` runs it through bench/run.sh, which
// builds the binaries and installs Ansible first.
//
//	go run ./bench/cmd/bench [-bin bin] [-out docs/benchmarks.md] [-ansible PATH]
//	                         [-quick] [-skip-sim] [-skip-go] [-count 5]
//
// Every figure is measured on this machine in one run; the document says
// which command produced it. Nothing here asserts on speed: the targets are
// compared and reported, never enforced.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strings"
	"time"
)

type config struct {
	root, bin, out, ansible string
	quick, skipSim, skipGo  bool
	only                    string
	count                   int
	work                    string
	testPlugin              string
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin", "directory of the built runbook and plugin binaries")
	flag.StringVar(&c.out, "out", "docs/benchmarks.md", "the document to rewrite")
	flag.StringVar(&c.ansible, "ansible", "", "ansible-playbook to compare against (empty: skip)")
	flag.BoolVar(&c.quick, "quick", false, "fewer sizes and repetitions (a smoke run, not for the document)")
	flag.BoolVar(&c.skipSim, "skip-sim", false, "skip the failover simulation")
	flag.BoolVar(&c.skipGo, "skip-go", false, "skip the Go benchmarks")
	flag.IntVar(&c.count, "count", 5, "repetitions of each Go benchmark and CLI measurement")
	flag.StringVar(&c.only, "only", "", "comma-separated measurements to run (steps, ansible, startup, validation, parallel, failover, go); for trying changes, not for the document")
	flag.Parse()
	if err := mainErr(&c); err != nil {
		fmt.Fprintln(os.Stderr, "bench:", err)
		os.Exit(1)
	}
}

func logf(format string, args ...any) {
	fmt.Fprintf(os.Stderr, "bench: "+format+"\n", args...)
}

func mainErr(c *config) error {
	ctx := context.Background()
	root, err := os.Getwd()
	if err != nil {
		return err
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return fmt.Errorf("run from the repository root (no go.mod in %s)", root)
	}
	c.root = root
	if c.bin, err = filepath.Abs(c.bin); err != nil {
		return err
	}
	if strings.Contains(c.ansible, "/") {
		if c.ansible, err = filepath.Abs(c.ansible); err != nil {
			return err
		}
	}
	for _, b := range []string{"runbook", "runbook-plugin-aws", "runbook-plugin-dns", "runbook-plugin-k8sworkers", "runbook-plugin-notify", "runbook-plugin-spacelift", "simctl"} {
		if _, err := os.Stat(filepath.Join(c.bin, b)); err != nil {
			return fmt.Errorf("%s: build first (make build)", filepath.Join(c.bin, b))
		}
	}
	c.work, err = os.MkdirTemp("", "runbook-bench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(c.work)
	// The test plugin's noop and sleep actions (sdk/pluginhost/internal/testplugin).
	c.testPlugin = filepath.Join(c.work, "bin", "runbook-plugin-test")
	if out, err := exec.Command("go", "build", "-o", c.testPlugin, "./sdk/pluginhost/internal/testplugin").CombinedOutput(); err != nil {
		return fmt.Errorf("building the test plugin: %v\n%s", err, out)
	}

	rep := &report{Machine: machine(), Quick: c.quick}
	steps := []struct {
		name string
		fn   func(context.Context, *config, *report) error
	}{
		{"steps", measureSteps},
		{"ansible", measureAnsible},
		{"startup", measureStartup},
		{"validation", measureValidation},
		{"parallel", measureParallel},
		{"failover", measureFailover},
		{"go", measureGo},
	}
	for _, s := range steps {
		if c.only != "" && !slices.Contains(strings.Split(c.only, ","), s.name) {
			continue
		}
		logf("measuring %s", s.name)
		t := time.Now()
		if err := s.fn(ctx, c, rep); err != nil {
			rep.Problems = append(rep.Problems, fmt.Sprintf("%s: %v", s.name, err))
			logf("%s failed: %v", s.name, err)
		}
		logf("%s done in %s", s.name, time.Since(t).Round(time.Second))
	}
	doc := render(rep)
	out := c.out
	if !filepath.IsAbs(out) {
		out = filepath.Join(root, out)
	}
	if err := os.WriteFile(out, []byte(doc), 0o644); err != nil {
		return err
	}
	logf("wrote %s", c.out)
	if len(rep.Problems) > 0 {
		return fmt.Errorf("%d measurement(s) failed (see the document's last section)", len(rep.Problems))
	}
	return nil
}

// machine describes where the figures were taken.
func machine() machineInfo {
	m := machineInfo{Cores: runtime.NumCPU(), Date: time.Now().UTC().Format("2006-01-02 15:04 UTC")}
	if b, err := os.ReadFile("/proc/cpuinfo"); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "model name"); ok {
				m.CPU = strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(v), ":"))
				break
			}
		}
	}
	if out, err := exec.Command("go", "env", "GOVERSION").Output(); err == nil {
		m.Go = strings.TrimSpace(string(out))
	}
	if out, err := exec.Command("uname", "-sr").Output(); err == nil {
		m.Kernel = strings.TrimSpace(string(out))
	}
	if b, err := os.ReadFile("/proc/meminfo"); err == nil {
		var kb int64
		fmt.Sscanf(strings.SplitN(string(b), "\n", 2)[0], "MemTotal: %d kB", &kb)
		m.Memory = fmt.Sprintf("%.0f GiB", float64(kb)/(1<<20))
	}
	return m
}
