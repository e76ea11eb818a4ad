package report

import (
	"bytes"
	"context"
	"flag"
	"html"
	"image"
	"image/png"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// These tests open the HTML report in headless Chromium (Debian package
// `chromium`), so that "the chart is drawn" is checked by a browser and not
// by reading our own markup back. They are skipped when no Chromium is
// installed, unless CI_REQUIRE_CHROMIUM is set, in which case they fail.

var docsImage = flag.Bool("docs-image", false, "write docs/img/report-example.png from the planned-failover fixture")

func findChromium(t *testing.T) string {
	t.Helper()
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome-stable", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	if os.Getenv("CI_REQUIRE_CHROMIUM") != "" {
		t.Fatal("CI_REQUIRE_CHROMIUM is set but no chromium is installed (apt-get install -y chromium)")
	}
	t.Skip("chromium is not installed (apt-get install -y chromium); set CI_REQUIRE_CHROMIUM to make this a failure")
	return ""
}

// runChromium runs one headless Chromium command on a file:// URL and
// returns its standard output. The browser gets its own profile and home
// in a temporary directory, every network-using feature turned off, and
// its own process group, killed afterwards so that no helper survives.
func runChromium(t *testing.T, bin string, file string, args ...string) []byte {
	t.Helper()
	tmp := t.TempDir()
	// A generous bound so a wedged browser fails the test instead of
	// hanging it; it is not a performance assertion.
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	full := append([]string{
		"--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
		"--disable-background-networking", "--disable-component-update", "--disable-sync",
		"--disable-default-apps", "--disable-extensions", "--no-default-browser-check", "--disable-breakpad", "--disable-crash-reporter",
		"--disable-dev-shm-usage", "--hide-scrollbars", "--force-device-scale-factor=1",
		"--user-data-dir=" + filepath.Join(tmp, "profile"),
	}, args...)
	full = append(full, "file://"+file)
	cmd := exec.CommandContext(ctx, bin, full...)
	cmd.Env = append(os.Environ(), "HOME="+tmp, "XDG_CONFIG_HOME="+tmp, "XDG_CACHE_HOME="+tmp)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error { return syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) }
	cmd.WaitDelay = 5 * time.Second
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if cmd.Process != nil {
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL) // helpers left in the group, if any
	}
	if err != nil {
		t.Fatalf("chromium %s: %v\nstderr (tail):\n%s", strings.Join(args, " "), err, tail(stderr.String(), 2000))
	}
	return stdout.Bytes()
}

func tail(s string, n int) string {
	if len(s) > n {
		return s[len(s)-n:]
	}
	return s
}

func writeReport(t *testing.T, dir, name string, r *Run) string {
	t.Helper()
	var b bytes.Buffer
	if err := HTML(&b, r); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// probe is appended to a copy of the report (whose CSP is removed so it may
// run): it records, as attributes the DOM dump shows, what the browser
// actually laid out and which styles it applied.
const probe = `<script>
for (const el of document.querySelectorAll('svg.gantt rect.bar, svg.gantt rect.rollback, svg.gantt rect.attempt')) {
  const r = el.getBoundingClientRect();
  el.setAttribute('data-rendered', r.width.toFixed(2) + 'x' + r.height.toFixed(2));
}
for (const el of document.querySelectorAll('svg.gantt .outline.critical, svg.gantt .attempt-ok, svg.gantt .attempt-failed')) {
  const s = getComputedStyle(el);
  el.setAttribute('data-style', s.fill + ';' + s.stroke + ';' + s.strokeWidth);
}
</script>
`

var (
	reRect = regexp.MustCompile(`<rect [^>]*>`)
	reAttr = regexp.MustCompile(`([a-z-]+)="([^"]*)"`)
)

func attrs(tag string) map[string]string {
	m := map[string]string{}
	for _, a := range reAttr.FindAllStringSubmatch(tag, -1) {
		m[a[1]] = html.UnescapeString(a[2])
	}
	return m
}

func hasClass(a map[string]string, c string) bool {
	for _, f := range strings.Fields(a["class"]) {
		if f == c {
			return true
		}
	}
	return false
}

func TestChromiumDrawsTheChart(t *testing.T) {
	t.Parallel()
	bin := findChromium(t)
	// Between them these two have every kind of bar: succeeded, failed,
	// retried, skipped, pending, open, nested groups, approval waits and
	// rollbacks (one failed). Each browser start costs seconds, so no more.
	for name, f := range map[string]func() *Run{"failed_rollback": failedRollback, "paused_nested": pausedNested} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			run := f()
			dir := t.TempDir()
			var b bytes.Buffer
			if err := HTML(&b, run); err != nil {
				t.Fatal(err)
			}
			page := b.String()
			csp := regexp.MustCompile(`<meta http-equiv="Content-Security-Policy"[^>]*>\n`)
			if !csp.MatchString(page) {
				t.Fatal("report has no CSP meta to remove for the probe")
			}
			probed := strings.Replace(csp.ReplaceAllString(page, ""), "</body>", probe+"</body>", 1)
			file := filepath.Join(dir, "probed.html")
			if err := os.WriteFile(file, []byte(probed), 0o644); err != nil {
				t.Fatal(err)
			}
			dom := string(runChromium(t, bin, file, "--dump-dom"))
			if !strings.Contains(dom, `<svg xmlns="http://www.w3.org/2000/svg" class="gantt"`) {
				t.Fatalf("the dumped DOM has no chart:\n%s", tail(dom, 3000))
			}

			path, err := CriticalPath(run)
			if err != nil {
				t.Fatal(err)
			}
			tr, _ := buildTree(run)
			bars := map[string]int{}
			var critical []string
			for _, tag := range reRect.FindAllString(dom, -1) {
				a := attrs(tag)
				id := a["data-step"]
				if id == "" {
					continue // legend swatches, stripes
				}
				w, h, ok := parseSize(a["data-rendered"])
				if !ok {
					if hasClass(a, "bar") || hasClass(a, "rollback") {
						t.Errorf("%s: no rendered size recorded for %s", id, tag)
					}
					continue
				}
				if w <= 0 || h <= 0 {
					t.Errorf("%s: drawn %gx%g: %s", id, w, h, tag)
				}
				if hasClass(a, "bar") {
					bars[id]++
					if hasClass(a, "critical") {
						critical = append(critical, id)
					}
				}
			}
			for _, n := range tr.rows {
				want := 0
				if n.ran {
					want = 1
				}
				if bars[n.step.ID] != want {
					t.Errorf("step %s: %d bars drawn, want %d", n.step.ID, bars[n.step.ID], want)
				}
			}
			want := append([]string(nil), path.Steps...)
			sort.Strings(want)
			sort.Strings(critical)
			if diff := cmp.Diff(want, critical); diff != "" {
				t.Errorf("bars with class critical differ from the critical path (-want +got):\n%s", diff)
			}
			// The chart's own style sheet applied: critical outlines heavy
			// and black, attempts filled with colour or pattern.
			for _, tag := range reRect.FindAllString(dom, -1) {
				a := attrs(tag)
				st := a["data-style"]
				switch {
				case st == "":
				case hasClass(a, "outline"):
					if st != "none;rgb(0, 0, 0);2.2px" {
						t.Errorf("critical outline style %q", st)
					}
				case hasClass(a, "attempt-ok"):
					if !strings.HasPrefix(st, "rgb(0, 114, 178);") {
						t.Errorf("succeeded attempt style %q", st)
					}
				case hasClass(a, "attempt-failed"):
					if !strings.HasPrefix(st, `url("#p-failed")`) {
						t.Errorf("failed attempt style %q", st)
					}
				}
			}
		})
	}
}

func parseSize(s string) (w, h float64, ok bool) {
	a, b, found := strings.Cut(s, "x")
	if !found {
		return 0, 0, false
	}
	w, err1 := strconv.ParseFloat(a, 64)
	h, err2 := strconv.ParseFloat(b, 64)
	return w, h, err1 == nil && err2 == nil
}

// The unmodified report, CSP and all, renders to a picture with the
// chart's colours in it.
func TestChromiumScreenshot(t *testing.T) {
	t.Parallel()
	bin := findChromium(t)
	for name, c := range map[string]struct {
		run    *Run
		colors map[string][3]uint8
	}{
		"planned_failover": {plannedFailover(), map[string][3]uint8{"succeeded attempt": {0, 114, 178}, "approval wait": {230, 159, 0}, "critical outline": {0, 0, 0}}},
		"failed_rollback":  {failedRollback(), map[string][3]uint8{"failed attempt": {213, 94, 0}, "rollback": {204, 121, 167}}},
	} {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			file := writeReport(t, dir, "report.html", c.run)
			shot := filepath.Join(dir, "shot.png")
			runChromium(t, bin, file, "--window-size=1280,1100", "--screenshot="+shot)
			img := decodePNG(t, shot)
			stats := pixelStats(img)
			if stats.distinct < 64 {
				t.Errorf("screenshot has %d distinct colours: blank or nearly", stats.distinct)
			}
			if stats.nonWhite < 0.05 {
				t.Errorf("only %.1f%% of the screenshot is not white", 100*stats.nonWhite)
			}
			for what, rgb := range c.colors {
				if n := countNear(img, rgb, 12); n < 40 {
					t.Errorf("%s colour %v: %d pixels, want the chart to show it", what, rgb, n)
				}
			}
			if *docsImage && name == "planned_failover" {
				data, err := os.ReadFile(shot)
				if err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(filepath.Join("..", "..", "docs", "img", "report-example.png"), data, 0o644); err != nil {
					t.Fatal(err)
				}
			}
		})
	}
}

func decodePNG(t *testing.T, path string) image.Image {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatalf("no screenshot: %v", err)
	}
	defer f.Close()
	img, err := png.Decode(f)
	if err != nil {
		t.Fatalf("screenshot is not a PNG: %v", err)
	}
	if b := img.Bounds(); b.Dx() < 640 || b.Dy() < 480 {
		t.Fatalf("screenshot is %dx%d", b.Dx(), b.Dy())
	}
	return img
}

type stats struct {
	distinct int
	nonWhite float64
}

func pixelStats(img image.Image) stats {
	b := img.Bounds()
	seen := map[[3]uint8]bool{}
	nonWhite := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := rgb8(img, x, y)
			seen[c] = true
			if c[0] < 245 || c[1] < 245 || c[2] < 245 {
				nonWhite++
			}
		}
	}
	return stats{distinct: len(seen), nonWhite: float64(nonWhite) / float64(b.Dx()*b.Dy())}
}

func countNear(img image.Image, want [3]uint8, tol int) int {
	b := img.Bounds()
	n := 0
	for y := b.Min.Y; y < b.Max.Y; y++ {
		for x := b.Min.X; x < b.Max.X; x++ {
			c := rgb8(img, x, y)
			if abs(int(c[0])-int(want[0])) <= tol && abs(int(c[1])-int(want[1])) <= tol && abs(int(c[2])-int(want[2])) <= tol {
				n++
			}
		}
	}
	return n
}

func rgb8(img image.Image, x, y int) [3]uint8 {
	r, g, b, _ := img.At(x, y).RGBA()
	return [3]uint8{uint8(r >> 8), uint8(g >> 8), uint8(b >> 8)}
}

func abs(x int) int {
	if x < 0 {
		return -x
	}
	return x
}
