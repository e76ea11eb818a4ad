package acceptance_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"sort"
	"strings"
	"sync/atomic"
	"testing"
)

// badCase is one entry of testdata/bad (see its README).
type badCase struct {
	group, name string
	file        string   // the runbook checked (runbooks/), or installer.yaml
	vars        []string // inputs/: the case's arguments
	env         []string
	at          string
	message     string
	gap         string
	desc        string
}

func badCorpusDir() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", "..", "testdata", "bad"))
}

func badLoad(t *testing.T, group string) []badCase {
	t.Helper()
	dir := filepath.Join(badCorpusDir(), group)
	paths, err := filepath.Glob(filepath.Join(dir, "*.expect"))
	if err != nil {
		t.Fatal(err)
	}
	var cases []badCase
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".expect")
		c := badCase{group: group, name: name, file: name + ".yaml"}
		if group == "inputs" {
			c.file = "installer.yaml"
		}
		var err error
		c.desc, err = readCase(p, func(k, v string) bool {
			switch k {
			case "vars":
				c.vars = strings.Fields(v)
			case "env":
				c.env = strings.Fields(v)
			case "at":
				c.at = v
			case "message":
				c.message = v
			case "gap":
				c.gap = v
			default:
				return false
			}
			return true
		})
		if err != nil {
			t.Fatal(err)
		}
		if c.at == "" || c.message == "" {
			t.Fatalf("%s: needs at: and message:", p)
		}
		if group == "runbooks" {
			if _, err := os.Stat(filepath.Join(dir, c.file)); err != nil {
				t.Fatalf("%s: %v", p, err)
			}
		}
		cases = append(cases, c)
	}
	return cases
}

// readCase reads a corpus case file of "key: value" lines (testdata/bad,
// testdata/hostile): set is called for each and returns false for a key it
// does not know; a "# ..." line is the description.
func readCase(path string, set func(key, value string) bool) (desc string, err error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := sc.Text()
		if d, ok := strings.CutPrefix(line, "#"); ok {
			desc = strings.TrimSpace(d)
			continue
		}
		k, v, ok := strings.Cut(line, ": ")
		switch {
		case !ok && strings.TrimSpace(line) == "":
			continue
		case !ok:
			return "", fmt.Errorf("%s: malformed line %q", path, line)
		case !set(k, v):
			return "", fmt.Errorf("%s: unknown key %q", path, k)
		}
	}
	return desc, sc.Err()
}

// badPositioned reports whether stderr has the expected diagnostic: a line
// starting with at (plus a column when at is FILE:LINE) whose message
// contains the substring.
func badPositioned(stderr string, c badCase) bool {
	prefix := regexp.QuoteMeta(c.at)
	if regexp.MustCompile(`^[^:]+:\d+$`).MatchString(c.at) {
		prefix += `:\d+`
	}
	re := regexp.MustCompile(`^` + prefix + `: (.*)$`)
	for _, line := range strings.Split(stderr, "\n") {
		if m := re.FindStringSubmatch(line); m != nil && strings.Contains(m[1], c.message) {
			return true
		}
	}
	return false
}

// TestBadInputCorpus runs every case of testdata/bad through the binary:
// each must exit 2 with its positioned diagnostic, before any action runs
// or any journal is written.
func TestBadInputCorpus(t *testing.T) {
	t.Parallel()
	var rejected, gaps, total atomic.Int64
	for _, group := range []string{"runbooks", "inputs"} {
		cases := badLoad(t, group)
		if group == "runbooks" && len(cases) < 60 {
			t.Errorf("only %d runbook cases", len(cases))
		}
		sort.Slice(cases, func(i, j int) bool { return cases[i].name < cases[j].name })
		t.Run(group, func(t *testing.T) {
			for _, c := range cases {
				total.Add(1)
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					ok, problems := badRun(t, c)
					switch {
					case c.gap == "" && ok:
						rejected.Add(1)
					case c.gap != "" && ok:
						t.Errorf("%s is refused as expected now: remove its gap: line (and the entry in docs/reliability.md)", c.name)
					case c.gap != "":
						gaps.Add(1)
						t.Skipf("known gap: %s; now: %s", c.gap, strings.Join(problems, "; "))
					}
				})
			}
		})
	}
	t.Cleanup(func() {
		t.Logf("bad inputs: %d cases, %d rejected as expected, %d known gaps", total.Load(), rejected.Load(), gaps.Load())
	})
}

// badRun checks one case in a copy of its directory; it returns whether
// every command refused it as expected, and what went wrong. Problems of a
// case without a gap fail the test here.
func badRun(t *testing.T, c badCase) (bool, []string) {
	w := newWorkspace(t)
	src := filepath.Join(badCorpusDir(), c.group)
	entries, err := os.ReadDir(src)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.IsDir() || strings.HasSuffix(e.Name(), ".expect") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(src, e.Name()))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(w.dir, e.Name()), b, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	state := filepath.Join(w.dir, "state")
	var commands [][]string
	if c.group == "runbooks" {
		commands = [][]string{{"validate", c.file}, {"run", c.file, "--auto-approve", "--state", state}}
	} else {
		base := append([]string{"--var", "primary=@good-config.json"}, c.vars...)
		commands = [][]string{
			append([]string{"run", c.file, "--auto-approve", "--state", state}, base...),
			append([]string{"plan", c.file}, base...),
		}
	}
	var problems []string
	for _, args := range commands {
		effectsBefore := len(w.effects())
		runsBefore, _ := os.ReadDir(filepath.Join(state, "runs"))
		r := secRun(t, w, c.env, args...)
		var p []string
		if r.code != 2 {
			p = append(p, fmt.Sprintf("exit %d, want 2", r.code))
		}
		if !badPositioned(r.stderr, c) {
			p = append(p, fmt.Sprintf("no diagnostic %q at %s", c.message, c.at))
		}
		if strings.Contains(r.stdout, "started") {
			p = append(p, "a step started")
		}
		if effects := w.effects(); len(effects) > effectsBefore {
			p = append(p, fmt.Sprintf("an action ran (effects %v)", effects[effectsBefore:]))
		}
		if runs, _ := os.ReadDir(filepath.Join(state, "runs")); len(runs) > len(runsBefore) {
			p = append(p, fmt.Sprintf("%d journal(s) written", len(runs)-len(runsBefore)))
		}
		for _, s := range p {
			problems = append(problems, fmt.Sprintf("%s: %s", args[0], s))
		}
		if len(p) > 0 && c.gap == "" {
			t.Errorf("%s (%s): %s\nstdout:\n%s\nstderr:\n%s", c.name, c.desc, strings.Join(p, "; "), r.stdout, r.stderr)
		}
	}
	return len(problems) == 0, problems
}
