package acceptance_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"unicode/utf16"

	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/journal"
)

// adversarialDir is testdata/adversarial, the adversarial corpus.
func adversarialDir() string { return filepath.Join(filepath.Dir(badCorpusDir()), "adversarial") }

// advForms adds to secForms the encodings a plugin may print a value in:
// JSON and Go quoting that escape every character outside ASCII (\u00eb),
// percent-encoding in lower case, hex in both cases.
func advForms(s string) map[string]string {
	forms := secForms(s)
	var lower, upper strings.Builder
	for _, r := range s {
		switch {
		case r < 0x80:
			lower.WriteRune(r)
			upper.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			fmt.Fprintf(&lower, `\u%04x\u%04x`, r1, r2)
			fmt.Fprintf(&upper, `\u%04X\u%04X`, r1, r2)
		default:
			fmt.Fprintf(&lower, `\u%04x`, r)
			fmt.Fprintf(&upper, `\u%04X`, r)
		}
	}
	if lower.String() != s {
		forms["json-ascii"] = lower.String()
		forms["json-ascii-upper"] = upper.String()
	}
	q := strconv.QuoteToASCII(s)
	forms["go-ascii"] = q[1 : len(q)-1]
	pct := []byte(url.QueryEscape(s))
	for i := 0; i+2 < len(pct); i++ {
		if pct[i] == '%' {
			pct[i+1], pct[i+2] = strings.ToLower(string(pct[i+1]))[0], strings.ToLower(string(pct[i+2]))[0]
		}
	}
	forms["percent-lower"] = string(pct)
	forms["hex"] = hex.EncodeToString([]byte(s))
	forms["HEX"] = strings.ToUpper(forms["hex"])
	for k, v := range forms {
		if len(v) < 6 && v != s {
			delete(forms, k) // short encodings are not redacted (sdk/redact)
		}
	}
	return forms
}

// advScalars are the secret scalars of the vars file that are searched
// for in text (strings and numbers of at least 4 characters).
func advScalars(t *testing.T, vars map[string]any) map[string]string {
	out := map[string]string{}
	var walk func(name string, v any)
	walk = func(name string, v any) {
		switch x := v.(type) {
		case string:
			if len(x) >= 4 {
				out[name] = x
			}
		case int:
			out[name] = strconv.Itoa(x)
		case float64:
			out[name] = strconv.FormatFloat(x, 'f', -1, 64)
		case []any:
			for i, e := range x {
				walk(fmt.Sprintf("%s[%d]", name, i), e)
			}
		case map[string]any:
			for k, e := range x {
				walk(name+"."+k, e)
			}
		}
	}
	for k, v := range vars {
		walk(k, v)
	}
	if len(out) < 7 {
		t.Fatalf("only %d secret scalars: %v", len(out), out)
	}
	return out
}

// TestSecretsOfEveryTypeAndEncoding runs testdata/adversarial/secrets at
// every log level, with JSON events, and reports it; then searches every
// byte written for every secret scalar in every form, and for pieces of
// the key, its base64 and its hex (printed cut over lines).
func TestSecretsOfEveryTypeAndEncoding(t *testing.T) {
	t.Parallel()
	w := newWorkspace(t)
	src := filepath.Join(adversarialDir(), "secrets")
	for _, f := range []string{"every-type.yaml", "every-type.vars.yaml"} {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			t.Fatal(err)
		}
		w.write(f, string(b))
	}
	var vars map[string]any
	b, _ := os.ReadFile(filepath.Join(src, "every-type.vars.yaml"))
	if err := yaml.Unmarshal(b, &vars); err != nil {
		t.Fatal(err)
	}
	scalars := advScalars(t, vars)
	state := filepath.Join(w.dir, "state")
	base := []string{"run", "every-type.yaml", "--var-file", "every-type.vars.yaml", "--state", state}

	var scan secLeakScan
	outputs := 0
	var runIDs []string
	for _, level := range []string{"trace", "debug", "info", "warn", "error"} {
		r := secRun(t, w, nil, append(base, "--log-level", level)...)
		scan.add("run --log-level "+level+" stdout", []byte(r.stdout))
		scan.add("run --log-level "+level+" stderr", []byte(r.stderr))
		outputs += 2
		if r.code != 0 {
			t.Fatalf("run at %s: exit %d\nstdout:\n%s\nstderr:\n%s", level, r.code, r.stdout, r.stderr)
		}
		if level == "trace" && !strings.Contains(r.stderr, "key: ***") {
			t.Errorf("the split key's line is missing (expected masked, not absent):\n%.3000s", r.stderr)
		}
	}
	r := secRun(t, w, nil, append(base, "-o", "json", "--log-level", "trace")...)
	scan.add("run -o json stdout", []byte(r.stdout))
	scan.add("run -o json stderr", []byte(r.stderr))
	outputs += 2
	evs := secEvents(t, r.stdout)
	for _, e := range evs {
		if e.RunID != "" {
			runIDs = append(runIDs, e.RunID)
			break
		}
	}
	advExpectMasked(t, evs)

	reports := filepath.Join(w.dir, "reports")
	_ = os.MkdirAll(reports, 0o755)
	for _, args := range [][]string{
		{"report", runIDs[0], "--state", state},
		{"report", runIDs[0], "--state", state, "-o", filepath.Join(reports, "run.html")},
		{"runs", "--state", state},
	} {
		r := secRun(t, w, nil, args...)
		scan.add(strings.Join(args[:2], " ")+" stdout", []byte(r.stdout))
		scan.add(strings.Join(args[:2], " ")+" stderr", []byte(r.stderr))
		outputs += 2
		if r.code != 0 {
			t.Errorf("%v: exit %d\n%s", args, r.code, r.stderr)
		}
	}
	journals := scan.addDir(t, "state", state)
	htmls := scan.addDir(t, "reports", reports)

	// Every form of every scalar; pieces of the wrapped encodings.
	found, checks := 0, 0
	for name, blob := range scan.blobs {
		for input, s := range scalars {
			for form, v := range advForms(s) {
				checks++
				if c := strings.Count(string(blob), v); c > 0 {
					found += c
					t.Errorf("secret %s (%s form) appears %d time(s) in %s", input, form, c, name)
				}
			}
		}
		key := scalars["key"]
		for _, enc := range []string{key, base64.StdEncoding.EncodeToString([]byte(key)), hex.EncodeToString([]byte(key)), strings.ToUpper(hex.EncodeToString([]byte(key)))} {
			for i := 0; i+16 <= len(enc); i += 4 {
				checks++
				if strings.Contains(string(blob), enc[i:i+16]) {
					found++
					t.Errorf("a piece of the key's encoding (%s) appears in %s", enc[i:i+16], name)
				}
			}
		}
	}
	t.Logf("searched %d bytes: %d command outputs (5 log levels, JSON events, report, runs), %d journal files, %d HTML reports, for %d secret scalars: %d checks, %d found",
		scan.scanned, outputs, journals, htmls, len(scalars), checks, found)
}

// advExpectMasked checks the values did flow, masked whole where they
// stand as values: the short secret and numbers in the echo step's
// outputs, the boolean where runbook knows it is secret (the input, an
// output reading it).
func advExpectMasked(t *testing.T, evs []journal.Record) {
	t.Helper()
	var echo, start, fin *journal.Record
	for i, e := range evs {
		switch {
		case e.Type == journal.StepSucceeded && e.Step == "echo":
			echo = &evs[i]
		case e.Type == journal.RunStarted:
			start = &evs[i]
		case e.Type == journal.RunFinished:
			fin = &evs[i]
		}
	}
	if echo == nil || start == nil || fin == nil {
		t.Fatalf("events missing: echo %v, run_started %v, run_finished %v", echo != nil, start != nil, fin != nil)
	}
	for _, k := range []string{"pin", "short"} {
		if echo.Outputs[k] != "***" {
			t.Errorf("echo output %s = %v, want ***", k, echo.Outputs[k])
		}
	}
	if fmt.Sprint(echo.Outputs["keys"]) != "[*** ***]" || fmt.Sprint(echo.Outputs["creds"]) != "map[nested:map[n:*** token:***] user:***]" {
		t.Errorf("echo outputs keys %v, creds %v: want every scalar masked", echo.Outputs["keys"], echo.Outputs["creds"])
	}
	for _, in := range start.Run.Inputs {
		if in.Value != "***" {
			t.Errorf("run_started input %s = %v", in.Name, in.Value)
		}
	}
	if fin.Outputs["flag_out"] != "***" || fin.Outputs["pin_out"] != "***" {
		t.Errorf("run outputs %v", fin.Outputs)
	}
}
