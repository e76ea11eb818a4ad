package acceptance_test

import (
	"bufio"
	"bytes"
	"fmt"
	"math/rand"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// advMaxRSS is the most memory (peak resident set) any command of the
// adversarial corpus may use: each of its inputs would take gigabytes, or
// crash the process, unbounded.
const advMaxRSS = 512 << 20

// advCase is one case of testdata/adversarial/expressions or validation
// (format in testdata/adversarial/README.md).
type advCase struct {
	group, name, desc string
	commands          [][]string
	exit              int
	at, message       string
	effects           []string
}

func advLoad(t *testing.T, group string) []advCase {
	t.Helper()
	dir := filepath.Join(adversarialDir(), group)
	paths, err := filepath.Glob(filepath.Join(dir, "*.expect"))
	if err != nil || len(paths) == 0 {
		t.Fatalf("no cases in %s: %v", dir, err)
	}
	var cases []advCase
	for _, p := range paths {
		name := strings.TrimSuffix(filepath.Base(p), ".expect")
		c := advCase{group: group, name: name, exit: 2}
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var args []string
		sc := bufio.NewScanner(bytes.NewReader(b))
		for sc.Scan() {
			line := sc.Text()
			if d, ok := strings.CutPrefix(line, "#"); ok {
				c.desc = strings.TrimSpace(d)
				continue
			}
			k, v, ok := strings.Cut(line, ": ")
			if !ok {
				continue
			}
			switch k {
			case "args":
				args = strings.Fields(v)
			case "exit":
				c.exit, _ = strconv.Atoi(v)
			case "at":
				c.at = v
			case "message":
				c.message = v
			case "effects":
				c.effects = strings.Split(v, ",")
			default:
				t.Fatalf("%s: unknown key %q", p, k)
			}
		}
		if c.message == "" {
			t.Fatalf("%s: needs message:", p)
		}
		if args != nil {
			c.commands = [][]string{args}
		} else {
			c.commands = [][]string{{"validate", name + ".yaml"}, {"run", name + ".yaml", "--auto-approve"}}
		}
		cases = append(cases, c)
	}
	sort.Slice(cases, func(i, j int) bool { return cases[i].name < cases[j].name })
	return cases
}

// advRun runs bin/runbook as secRun does, and fails on a Go crash or more
// than advMaxRSS of memory.
func advRun(t *testing.T, w *workspace, args ...string) secResult {
	t.Helper()
	r := secRun(t, w, nil, args...)
	for _, crash := range []string{"fatal error:", "goroutine "} {
		if strings.Contains(r.stderr, crash) {
			t.Errorf("%v crashed (%s):\n%.4000s", args, crash, r.stderr)
		}
	}
	if r.maxRSS > advMaxRSS {
		t.Errorf("%v used %d MiB of memory, more than %d", args, r.maxRSS>>20, advMaxRSS>>20)
	}
	return r
}

// TestAdversarialCorpus runs every case of testdata/adversarial/expressions
// and validation through the binary: each ends with its exit code and its
// message (at its position when it has one), within advMaxRSS of memory,
// without a crash, having run only what it says (effects) and, when
// refused, journaled nothing.
func TestAdversarialCorpus(t *testing.T) {
	t.Parallel()
	var total, passed atomic.Int64
	var peak atomic.Int64
	for _, group := range []string{"expressions", "validation"} {
		cases := advLoad(t, group)
		t.Run(group, func(t *testing.T) {
			for _, c := range cases {
				total.Add(1)
				t.Run(c.name, func(t *testing.T) {
					t.Parallel()
					if advCheck(t, c, &peak) {
						passed.Add(1)
					}
				})
			}
		})
	}
	t.Cleanup(func() {
		t.Logf("adversarial corpus: %d cases, %d as expected; peak memory of any command %d MiB", total.Load(), passed.Load(), peak.Load()>>20)
	})
}

func advCheck(t *testing.T, c advCase, peak *atomic.Int64) bool {
	w := newWorkspace(t)
	src := filepath.Join(adversarialDir(), c.group)
	entries, _ := os.ReadDir(src)
	for _, e := range entries {
		if strings.HasPrefix(e.Name(), c.name+".") && !strings.HasSuffix(e.Name(), ".expect") {
			b, err := os.ReadFile(filepath.Join(src, e.Name()))
			if err != nil {
				t.Fatal(err)
			}
			w.write(e.Name(), string(b))
		}
	}
	state := filepath.Join(w.dir, "state")
	ok := true
	for _, args := range c.commands {
		if args[0] == "run" {
			args = append(append([]string{}, args...), "--state", state)
		}
		r := advRun(t, w, args...)
		for {
			p := peak.Load()
			if r.maxRSS <= p || peak.CompareAndSwap(p, r.maxRSS) {
				break
			}
		}
		var problems []string
		if r.code != c.exit {
			problems = append(problems, fmt.Sprintf("exit %d, want %d", r.code, c.exit))
		}
		if c.at != "" {
			if !badPositioned(r.stderr, badCase{at: c.at, message: c.message}) {
				problems = append(problems, fmt.Sprintf("no diagnostic %q at %s", c.message, c.at))
			}
		} else if !strings.Contains(r.stdout+r.stderr, c.message) {
			problems = append(problems, fmt.Sprintf("no %q in the output", c.message))
		}
		if got := w.effects(); strings.Join(got, ",") != strings.Join(c.effects, ",") {
			problems = append(problems, fmt.Sprintf("effects %q, want %q", got, c.effects))
		}
		if runs, _ := os.ReadDir(filepath.Join(state, "runs")); c.exit == 2 && len(runs) > 0 {
			problems = append(problems, "a journal was written")
		}
		if len(problems) > 0 {
			ok = false
			t.Errorf("%s (%s), %v: %s\nstdout:\n%.3000s\nstderr:\n%.3000s", c.name, c.desc, args, strings.Join(problems, "; "), r.stdout, r.stderr)
		}
	}
	return ok
}

// advGenerated are files too large to keep in testdata: each is made here
// and validated, and must be refused with its message (the first line of
// output that names it), within advMaxRSS and without a crash. full: only
// with RUNBOOK_FULL_RELIABILITY=1 (make reliability).
var advGenerated = []struct {
	name, message string
	full          bool
	gen           func() string
}{
	{"4 MB of unknown step references close to 10,000 step ids (the suggester)", "unknown step", false, func() string {
		var b strings.Builder
		b.WriteString("version: 1\nsteps:\n")
		prefix := strings.Repeat("a", 50)
		for i := 0; i < 9999 && b.Len() < 4<<20-400; i++ {
			fmt.Fprintf(&b, "  - {id: s%s%010d, uses: core.log, with: {message: \"${{ steps.s%s%010dx.status }}\"}}\n", prefix, i, prefix, i)
		}
		return b.String()
	}},
	{"300,000 nested parentheses in an if", "brackets nested more than 100 deep", false, func() string {
		return "version: 1\nsteps:\n  - id: a\n    uses: core.log\n    if: " + strings.Repeat("(", 300000) + "true" + strings.Repeat(")", 300000) + "\n    with: { message: hi }\n"
	}},
	{"1.9 million nested parentheses (a Go stack overflow before)", "brackets nested more than 100 deep", true, func() string {
		return "version: 1\nsteps:\n  - id: a\n    uses: core.log\n    if: " + strings.Repeat("(", 1900000) + "true" + strings.Repeat(")", 1900000) + "\n    with: { message: hi }\n"
	}},
	{"a million nested YAML lists", "exceeded max depth", false, func() string {
		return "version: 1\nsteps: " + strings.Repeat("[", 1000000) + strings.Repeat("]", 1000000) + "\n"
	}},
	{"60,000 inputs and 2,000 references to unknown ones", "unknown input", true, func() string {
		var b strings.Builder
		b.WriteString("version: 1\ninputs:\n")
		for i := 0; i < 60000; i++ {
			fmt.Fprintf(&b, "  in_%s_%d: {type: string}\n", strings.Repeat("b", 20), i)
		}
		b.WriteString("steps:\n")
		for i := 0; i < 2000; i++ {
			fmt.Fprintf(&b, "  - {id: s%d, uses: core.log, with: {message: \"${{ inputs.in_%s_%dx }}\"}}\n", i, strings.Repeat("b", 20), i)
		}
		return b.String()
	}},
	{"a 4 MB key (YAML allows 1,024 characters for a key without ?)", "YAML syntax error", false, func() string {
		return "version: 1\nsteps:\n  - id: a\n    uses: core.log\n    with: {message: hi}\n    " + strings.Repeat("k", 4<<20-200) + ": 1\n"
	}},
	{"2,000 expressions of 900 random terms", "must be a string", true, func() string {
		rng := rand.New(rand.NewSource(1))
		var b strings.Builder
		b.WriteString("version: 1\nsteps:\n")
		for i := 0; b.Len() < 4<<20-4000; i++ {
			terms := make([]string, 900)
			for j := range terms {
				terms[j] = strconv.Itoa(1 + rng.Intn(9))
			}
			fmt.Fprintf(&b, "  - {id: s%d, uses: core.log, with: {message: \"${{ %s }}\"}}\n", i, strings.Join(terms, "+"))
		}
		return b.String()
	}},
}

// TestAdversarialGeneratedFiles validates advGenerated.
func TestAdversarialGeneratedFiles(t *testing.T) {
	t.Parallel()
	full := os.Getenv("RUNBOOK_FULL_RELIABILITY") == "1"
	for _, g := range advGenerated {
		t.Run(g.name, func(t *testing.T) {
			if g.full && !full {
				t.Skip("RUNBOOK_FULL_RELIABILITY=1 (make reliability) runs it")
			}
			w := newWorkspace(t)
			w.write("big.yaml", g.gen())
			r := advRun(t, w, "validate", "big.yaml")
			first, _, _ := strings.Cut(r.stderr, "\n")
			if r.code != 2 || !strings.HasPrefix(first, "big.yaml:") || !strings.Contains(r.stderr, g.message) {
				t.Errorf("exit %d, first diagnostic %.300q; want 2, positioned, with %q", r.code, first, g.message)
			}
			t.Logf("%d MiB peak", r.maxRSS>>20)
		})
	}
}

// TestInterruptDuringValidation: the first Ctrl-C during a long
// validation (here, expressions it evaluates) ends it: exit 130, nothing
// run.
func TestInterruptDuringValidation(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	var b strings.Builder
	b.WriteString("version: 1\nname: slow\nplugins:\n  test: { command: runbook-plugin-test }\nsteps:\n  - id: first\n    uses: test.record\n    with: { file: \"@record\", line: first }\n")
	for i := 0; i < 20; i++ {
		fmt.Fprintf(&b, "  - {id: s%d, uses: core.log, if: 'let s = repeat(\"a\", 1000000); all(1..900000, indexOf(s, \"b%d\") < 0)', with: {message: hi}}\n", i, i)
	}
	w.write("slow.yaml", b.String())
	cmd := exec.Command(filepath.Join(binDir, "runbook"), "run", "slow.yaml", "--auto-approve", "--state", filepath.Join(w.dir, "state"))
	cmd.Dir = w.dir
	cmd.Env = append(os.Environ(), w.marker, "RUNBOOK_PLUGIN_PATH="+binDir)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	time.Sleep(500 * time.Millisecond) // validation is evaluating the first expression
	_ = cmd.Process.Signal(syscall.SIGINT)
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(time.Minute): // a hang guard, not a speed check
		_ = cmd.Process.Kill()
		t.Fatal("runbook did not stop after Ctrl-C during validation")
	}
	if code := cmd.ProcessState.ExitCode(); code != 130 || !strings.Contains(stderr.String(), "validation interrupted; nothing was run") {
		t.Errorf("exit %d, want 130 saying so:\n%s", code, stderr.String())
	}
	if effects := w.effects(); len(effects) > 0 {
		t.Errorf("something ran: %v", effects)
	}
}
