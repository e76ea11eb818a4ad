package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// event is the part of a `runbook -o json` record the measurements read.
type event struct {
	Seq    int64     `json:"seq"`
	Type   string    `json:"type"`
	Time   time.Time `json:"time"`
	Step   string    `json:"step"`
	Group  string    `json:"group"`
	Status string    `json:"status"`
}

// runResult is one run of a command.
type runResult struct {
	start, end time.Time
	wall       time.Duration
	events     []event
	stdout     []byte
	stderr     string
	// peak resident set sizes (VmHWM, KiB): the command itself and, by
	// executable name, the largest of its children.
	peakSelf     int64
	peakChildren map[string]int64
	// the largest private (anonymous) resident memory seen, KiB: what is
	// not file-backed pages of the executable shared with the page cache.
	anonSelf     int64
	anonChildren map[string]int64
	err          error
}

// run executes name args in dir with env added to the environment, samples
// the memory of the process and its children while it runs, and parses
// stdout as JSON events when it looks like them.
func run(ctx context.Context, dir string, env []string, name string, args ...string) runResult {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	r := runResult{peakChildren: map[string]int64{}, anonChildren: map[string]int64{}}
	r.start = time.Now()
	if err := cmd.Start(); err != nil {
		r.err = err
		return r
	}
	stop := make(chan struct{})
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		sampleMemory(cmd.Process.Pid, &r, stop)
	}()
	r.err = cmd.Wait()
	r.end = time.Now()
	close(stop)
	wg.Wait()
	r.wall = r.end.Sub(r.start)
	r.stdout, r.stderr = out.Bytes(), errb.String()
	sc := bufio.NewScanner(bytes.NewReader(r.stdout))
	sc.Buffer(make([]byte, 1<<20), 64<<20)
	for sc.Scan() {
		line := sc.Bytes()
		if len(line) == 0 || line[0] != '{' {
			continue
		}
		var ev event
		if json.Unmarshal(line, &ev) == nil && ev.Type != "" {
			r.events = append(r.events, ev)
		}
	}
	if r.err != nil {
		r.err = fmt.Errorf("%s %s: %v\n%s", name, strings.Join(args, " "), r.err, tail(r.stderr, 2000))
	}
	return r
}

func tail(s string, n int) string {
	if len(s) > n {
		return "..." + s[len(s)-n:]
	}
	return s
}

// sampleMemory reads VmHWM (the peak RSS so far) of pid and of its
// children every 10 ms until stop; the last sample before a process exits
// holds its peak up to then.
func sampleMemory(pid int, r *runResult, stop <-chan struct{}) {
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	self := exeName(pid)
	for {
		hwm, anon := memStatus(pid)
		r.peakSelf = max(r.peakSelf, hwm)
		r.anonSelf = max(r.anonSelf, anon)
		for _, c := range children(pid) {
			name := exeName(c)
			if name == self || name == "?" {
				// Forked, not yet exec'd (still the parent's image), or
				// already gone.
				continue
			}
			hwm, anon := memStatus(c)
			r.peakChildren[name] = max(r.peakChildren[name], hwm)
			r.anonChildren[name] = max(r.anonChildren[name], anon)
		}
		select {
		case <-stop:
			return
		case <-t.C:
		}
	}
}

// memStatus reads VmHWM (peak RSS so far) and RssAnon of pid, in KiB.
func memStatus(pid int) (hwm, anon int64) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/status")
	if err != nil {
		return 0, 0
	}
	for _, line := range strings.Split(string(b), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(v)
		if len(f) == 0 {
			continue
		}
		n, _ := strconv.ParseInt(f[0], 10, 64)
		switch k {
		case "VmHWM":
			hwm = n
		case "RssAnon":
			anon = n
		}
	}
	return hwm, anon
}

// children lists the direct children of pid (every thread's).
func children(pid int) []int {
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, t := range tasks {
		b, err := os.ReadFile(t)
		if err != nil {
			continue
		}
		for _, f := range strings.Fields(string(b)) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
	}
	return out
}

// exeName is the base name of pid's executable (/proc/<pid>/comm is cut
// to 15 bytes, which every runbook-plugin-* shares).
func exeName(pid int) string {
	p, err := os.Readlink("/proc/" + strconv.Itoa(pid) + "/exe")
	if err != nil {
		return "?"
	}
	return filepath.Base(strings.TrimSuffix(p, " (deleted)"))
}

// median of durations (0 for none).
func median(d []time.Duration) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func percentile(d []time.Duration, p float64) time.Duration {
	if len(d) == 0 {
		return 0
	}
	s := append([]time.Duration(nil), d...)
	sort.Slice(s, func(i, j int) bool { return s[i] < s[j] })
	i := int(p * float64(len(s)-1))
	return s[i]
}

func medianF(v []float64) float64 {
	if len(v) == 0 {
		return 0
	}
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

// slope is the least-squares slope of y over x (seconds per unit).
func slope(x []float64, y []float64) float64 {
	n := float64(len(x))
	var sx, sy, sxx, sxy float64
	for i := range x {
		sx += x[i]
		sy += y[i]
		sxx += x[i] * x[i]
		sxy += x[i] * y[i]
	}
	d := n*sxx - sx*sx
	if d == 0 {
		return 0
	}
	return (n*sxy - sx*sy) / d
}

// stepTimes returns, per step id, when it started and when it ended
// (succeeded, failed or skipped).
func stepTimes(evs []event) map[string][2]time.Time {
	m := map[string][2]time.Time{}
	for _, e := range evs {
		if e.Step == "" {
			continue
		}
		v := m[e.Step]
		switch e.Type {
		case "step_started":
			v[0] = e.Time
		case "step_succeeded", "step_failed", "step_skipped":
			v[1] = e.Time
		}
		m[e.Step] = v
	}
	return m
}

func firstEvent(evs []event, typ string) (event, bool) {
	for _, e := range evs {
		if e.Type == typ {
			return e, true
		}
	}
	return event{}, false
}

func ms(d time.Duration) string {
	switch {
	case d < time.Millisecond:
		return fmt.Sprintf("%.3f ms", float64(d)/1e6)
	case d < 10*time.Millisecond:
		return fmt.Sprintf("%.2f ms", float64(d)/1e6)
	case d < time.Second:
		return fmt.Sprintf("%.0f ms", float64(d)/1e6)
	}
	return fmt.Sprintf("%.2f s", d.Seconds())
}

func mib(kib int64) string { return fmt.Sprintf("%.1f MiB", float64(kib)/1024) }
