package report

import (
	"bytes"
	"errors"
	"flag"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files in testdata/")

func render(t *testing.T, name string, r *Run) (md, page string) {
	t.Helper()
	var m, h bytes.Buffer
	if err := Markdown(&m, r); err != nil {
		t.Fatalf("%s: Markdown: %v", name, err)
	}
	if err := HTML(&h, r); err != nil {
		t.Fatalf("%s: HTML: %v", name, err)
	}
	return m.String(), h.String()
}

func golden(t *testing.T, file, got string) {
	t.Helper()
	path := filepath.Join("testdata", file)
	if *update {
		if err := os.MkdirAll("testdata", 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(got), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (run go test -update to create it)", err)
	}
	if diff := cmp.Diff(string(want), got); diff != "" {
		t.Errorf("%s differs from the golden file (-want +got; go test -update to accept):\n%s", path, diff)
	}
}

func TestGolden(t *testing.T) {
	names := make([]string, 0, len(fixtures))
	for n := range fixtures {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, name := range names {
		t.Run(name, func(t *testing.T) {
			md, page := render(t, name, fixtures[name]())
			golden(t, name+".md", md)
			golden(t, name+".html", page)
		})
	}
}

// Rendering twice gives the same bytes: map iteration or time zones must
// not leak into the output.
func TestDeterministic(t *testing.T) {
	for name, f := range fixtures {
		md1, h1 := render(t, name, f())
		md2, h2 := render(t, name, f())
		if md1 != md2 || h1 != h2 {
			t.Errorf("%s: two renderings differ", name)
		}
	}
	// Times in another zone render as the same UTC times.
	r := plannedFailover()
	paris := time.FixedZone("CET", 3600)
	r.Started, r.Finished = r.Started.In(paris), r.Finished.In(paris)
	md, _ := render(t, "zone", r)
	if !strings.Contains(md, "| Started | 2025-03-04 03:12:07 UTC |") {
		t.Errorf("start time not rendered in UTC:\n%s", md[:400])
	}
}

func TestSecretsNeverPrinted(t *testing.T) {
	for name, f := range fixtures {
		md, page := render(t, name, f())
		for _, out := range []string{md, page} {
			for _, secret := range []string{slackWebhook, apiKey, "zq9XkY2mN4pL7wR1"} {
				if strings.Contains(out, secret) {
					t.Errorf("%s: report contains the secret %q", name, secret)
				}
			}
		}
	}
	md, page := render(t, "planned", plannedFailover())
	if !strings.Contains(md, "| `slack_webhook` (secret) | `***` |") {
		t.Errorf("secret input not shown as *** in Markdown")
	}
	if !strings.Contains(page, `<span class="secret">*** (secret)</span>`) {
		t.Errorf("secret input not shown as *** in HTML")
	}
	// The leaked webhook in a progress message is scrubbed, the rest kept.
	if !strings.Contains(md, "posted notice to \\*\\*\\*") {
		t.Errorf("leaked secret not replaced in the journal appendix")
	}
	// Secret outputs too.
	r := plannedFailover()
	r.Outputs = append(r.Outputs, Output{Name: "session_token", Value: "tok-abcdefgh", Secret: true})
	md, page = render(t, "secret output", r)
	if strings.Contains(md+page, "tok-abcdefgh") {
		t.Errorf("secret output printed")
	}
}

func TestHTMLIsSelfContainedAndEscaped(t *testing.T) {
	for name, f := range fixtures {
		_, page := render(t, name, f())
		for _, bad := range []*regexp.Regexp{
			regexp.MustCompile(`(?i)<script`),
			regexp.MustCompile(`(?i)<(link|img|iframe|object|embed)\b`),
			regexp.MustCompile(`(?i)\s(src|href)\s*=`),
			regexp.MustCompile(`(?i)url\((?:[^#)]|#[^a-z])`), // only url(#pattern) references
			regexp.MustCompile(`(?i)@import|https?://(?:[^"\s]*)\.(js|css|woff2?|ttf)`),
		} {
			if m := bad.FindString(page); m != "" {
				t.Errorf("%s: HTML is not self-contained or not escaped: found %q", name, m)
			}
		}
		if !strings.Contains(page, `http-equiv="Content-Security-Policy" content="default-src 'none';`) {
			t.Errorf("%s: no CSP forbidding external loads", name)
		}
	}
	_, page := render(t, "paused", pausedNested())
	for _, want := range []string{"&lt;script&gt;alert(1)&lt;/script&gt;", "Check &lt;both&gt; regions &amp; &#34;buckets&#34; | pipes"} {
		if !strings.Contains(page, want) {
			t.Errorf("escaped text %q not found", want)
		}
	}
}

func TestMarkdownEscapes(t *testing.T) {
	md, _ := render(t, "paused", pausedNested())
	for _, want := range []string{
		"# Run drill-\\<3\\>: drill \\& \\`checks\\`",
		"`checks` Check \\<both\\> regions \\& \"buckets\" \\| pipes",
		"| `note` | `` a \\| b <i>c</i> `d` `` |",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q:\n%s", want, md)
		}
	}
	// Every table row has the same number of cells as its header: an
	// unescaped pipe would add one.
	lines := strings.Split(md, "\n")
	cols := 0
	for _, l := range lines {
		if !strings.HasPrefix(l, "|") {
			cols = 0
			continue
		}
		n := len(regexp.MustCompile(`(^|[^\\])\|`).FindAllString(l, -1)) - 1
		if cols == 0 {
			cols = n
		} else if n != cols {
			t.Errorf("table row has %d cells, header %d: %s", n, cols, l)
		}
	}
}

// The chart has one bar per step that ran or was skipped, the critical
// ones marked, attempts and rollbacks drawn as their own segments.
func TestGanttStructure(t *testing.T) {
	_, page := render(t, "failed", failedRollback())
	bars := regexp.MustCompile(`<rect class="bar ([^"]*)" data-step="([^"]+)"`).FindAllStringSubmatch(page, -1)
	got := map[string]string{}
	for _, b := range bars {
		if _, dup := got[b[2]]; dup {
			t.Errorf("two bars for %s", b[2])
		}
		got[b[2]] = b[1]
	}
	want := map[string]string{
		"aurora_status": "step-succeeded critical",
		"freeze":        "step-succeeded critical",
		"db":            "step-succeeded critical",
		"services_dr":   "step-failed critical",
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("bars (-want +got):\n%s", diff)
	}
	if n := strings.Count(page, `class="attempt attempt-failed"`); n != 3+1 { // 3 failed attempts + the legend swatch
		t.Errorf("failed attempt segments: %d, want 4", n)
	}
	for _, want := range []string{`class="rollback rollback-failed critical" data-step="db"`, `class="rollback rollback-ok critical" data-step="freeze"`} {
		if !strings.Contains(page, want) {
			t.Errorf("missing %s", want)
		}
	}

	_, page = render(t, "planned", plannedFailover())
	for _, want := range []string{
		`<rect class="bar step-succeeded" data-step="dns_server"`,
		`<rect class="bar step-succeeded critical" data-step="workers"`,
		`<rect class="bar step-skipped" data-step="db_failover"`,
		`<rect class="bar group critical" data-step="switch"`,
		`<rect class="wait"`,
		`database writable +1m48s</text>`,
	} {
		if !strings.Contains(page, want) {
			t.Errorf("planned failover chart lacks %s", want)
		}
	}
}

func TestRecoveryTime(t *testing.T) {
	md, _ := render(t, "planned", plannedFailover())
	for _, want := range []string{
		"| database writable | 1m48s | 03:13:54 | `db` |",
		"| traffic switched | 5m29s | 03:17:36 | `dns_server` |",
		"| **Total (run succeeded)** | **8m41s** | 03:20:48 | |",
		"Waiting for approval: 36.7s (1 approval). Retries: 1.",
	} {
		if !strings.Contains(md, want) {
			t.Errorf("Markdown lacks %q", want)
		}
	}
	md, _ = render(t, "failed", failedRollback())
	if !strings.Contains(md, "| **Total (run rollback_failed: not recovered)** | **5m14s** |") {
		t.Errorf("a failed run is reported as recovered:\n%s", md)
	}
	md, _ = render(t, "paused", pausedNested())
	for _, want := range []string{"| **So far (run not finished)** | **6.8s** |", "| Finished | not recorded (last record 2025-03-04 03:12:13 UTC) |"} {
		if !strings.Contains(md, want) {
			t.Errorf("paused run: Markdown lacks %q", want)
		}
	}
}

func TestInvalidRuns(t *testing.T) {
	cases := map[string]struct {
		steps []Step
		want  string
	}{
		"no id":        {[]Step{{Uses: "a.b"}}, "step 1 has no id"},
		"duplicate":    {[]Step{{ID: "a", Uses: "a.b"}, {ID: "a", Uses: "a.b"}}, `duplicate step id "a"`},
		"unknown":      {[]Step{{ID: "a", Uses: "a.b", Group: "g"}}, `group "g" is not a step`},
		"action group": {[]Step{{ID: "g", Uses: "x.y"}, {ID: "a", Uses: "a.b", Group: "g"}}, "is an action"},
		"cycle":        {[]Step{{ID: "g", Group: "h"}, {ID: "h", Group: "g"}}, "contain each other"},
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			r := &Run{ID: "x", Started: t0, Steps: c.steps}
			err := r.Check()
			if !errors.Is(err, ErrInvalidRun) || !strings.Contains(err.Error(), c.want) {
				t.Fatalf("Check() = %v, want ErrInvalidRun with %q", err, c.want)
			}
			if err := Markdown(&bytes.Buffer{}, r); !errors.Is(err, ErrInvalidRun) {
				t.Errorf("Markdown rendered an invalid run: %v", err)
			}
			if err := HTML(&bytes.Buffer{}, r); !errors.Is(err, ErrInvalidRun) {
				t.Errorf("HTML rendered an invalid run: %v", err)
			}
		})
	}
}

// An empty run (journal with only run_started) still renders.
func TestEmptyRun(t *testing.T) {
	r := &Run{ID: "r1", Runbook: "rb", Status: RunRunning, Started: t0}
	md, page := render(t, "empty", r)
	if !strings.Contains(md, "No step took any time.") || !strings.Contains(page, "No step took any time.") {
		t.Errorf("empty run not rendered sensibly:\n%s", md)
	}
}

func TestFmtDur(t *testing.T) {
	for d, want := range map[time.Duration]string{
		0:                        "0s",
		400 * time.Microsecond:   "<1ms",
		450 * time.Millisecond:   "450ms",
		2449 * time.Millisecond:  "2.4s",
		58 * time.Second:         "58s",
		59960 * time.Millisecond: "1m00s",
		161 * time.Second:        "2m41s",
		3723 * time.Second:       "1h02m03s",
		-2 * time.Second:         "-2s",
	} {
		if got := fmtDur(d); got != want {
			t.Errorf("fmtDur(%v) = %q, want %q", d, got, want)
		}
	}
	for d, want := range map[time.Duration]string{0: "0", 30 * time.Second: "30s", time.Minute: "1m",
		90 * time.Second: "1m30s", 2 * time.Hour: "2h", 90 * time.Minute: "1h30m", 1500 * time.Millisecond: "1.5s"} {
		if got := fmtTick(d); got != want {
			t.Errorf("fmtTick(%v) = %q, want %q", d, got, want)
		}
	}
}

func TestApprovalAnswers(t *testing.T) {
	r := &Run{ID: "r", Runbook: "rb", Status: RunFailed, Started: t0, Finished: at(30),
		Steps:     []Step{{ID: "go", Uses: "core.approve", Status: StepFailed, Started: at(1), Finished: at(20), Error: "approval denied by carol"}},
		Approvals: []Approval{{Step: "go", RequestedAt: at(1), GrantedAt: at(20), Denied: true, By: "carol"}}}
	md, page := render(t, "denied", r)
	if !strings.Contains(md, "| `go` | 03:12:08 (+1s) | ✗ denied 03:12:27 (+20s) | 19s | carol |") {
		t.Errorf("denied approval not reported:\n%s", md)
	}
	if !strings.Contains(page, "denied by carol") {
		t.Errorf("chart does not say who denied")
	}
}
