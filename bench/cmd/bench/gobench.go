package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os/exec"
	"regexp"
	"strconv"
	"strings"
)

// goBench is one Go benchmark summarised over -count runs: the median of
// each unit it reports.
type goBench struct {
	Pkg, Name string
	Runs      int
	Median    map[string]float64
	Min, Max  map[string]float64
}

var goBenchmarks = []struct{ pkg, pattern string }{
	{"./sdk/engine", "^BenchmarkNoopStep$"},
	{"./sdk/engine", "^BenchmarkRunSteps$/^N=(10|100|1000)$/"},
	{"./sdk/pluginhost", "^BenchmarkInvokeNoop$"},
	{"./sdk/pluginhost", "^BenchmarkRunNoopSteps$/^N=(10|100|1000)$/"},
	{"./sdk/pluginhost", "^BenchmarkStartFivePlugins$"},
	{"./sdk/runbook", "^BenchmarkValidate1000Steps(Cold)?$"},
}

var benchLine = regexp.MustCompile(`^(Benchmark\S+?)(-\d+)?\s+(\d+)\s+(.*)$`)

func measureGo(ctx context.Context, c *config, rep *report) error {
	if c.skipGo {
		return fmt.Errorf("-skip-go given: Go benchmarks not run")
	}
	for _, gb := range goBenchmarks {
		args := []string{"test", "-run", "^$", "-bench", gb.pattern, "-count", strconv.Itoa(c.count), gb.pkg}
		cmd := exec.CommandContext(ctx, "go", args...)
		cmd.Dir = c.root
		out, err := cmd.CombinedOutput()
		if err != nil {
			return fmt.Errorf("go %s: %v\n%s", strings.Join(args, " "), err, tail(string(out), 2000))
		}
		got := map[string]map[string][]float64{}
		var order []string
		sc := bufio.NewScanner(bytes.NewReader(out))
		for sc.Scan() {
			m := benchLine.FindStringSubmatch(sc.Text())
			if m == nil {
				continue
			}
			name := m[1]
			if got[name] == nil {
				got[name] = map[string][]float64{}
				order = append(order, name)
			}
			f := strings.Fields(m[4])
			for i := 0; i+1 < len(f); i += 2 {
				if v, err := strconv.ParseFloat(f[i], 64); err == nil {
					got[name][f[i+1]] = append(got[name][f[i+1]], v)
				}
			}
		}
		for _, name := range order {
			b := goBench{Pkg: strings.TrimPrefix(gb.pkg, "./"), Name: name, Median: map[string]float64{}, Min: map[string]float64{}, Max: map[string]float64{}}
			for unit, vs := range got[name] {
				b.Runs = len(vs)
				b.Median[unit] = medianF(vs)
				b.Min[unit], b.Max[unit] = vs[0], vs[0]
				for _, v := range vs {
					b.Min[unit] = min(b.Min[unit], v)
					b.Max[unit] = max(b.Max[unit], v)
				}
			}
			rep.Go = append(rep.Go, b)
			logf("  %s %s: %.0f ns/op", b.Pkg, b.Name, b.Median["ns/op"])
		}
	}
	rep.GoCmd = fmt.Sprintf("go test -run '^$' -bench PATTERN -count %d PKG (median of the runs; min–max in brackets)", c.count)
	return nil
}
