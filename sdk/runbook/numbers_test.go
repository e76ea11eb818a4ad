package runbook

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// numberForms: how each way of writing a number is read, wherever it is
// written. want is the value, or the start of what is said about it.
var numberForms = []struct {
	text string
	want any
}{
	{"10", 10.0}, {"+10", 10.0}, {"-10", -10.0}, {"0", 0.0}, {"-0", 0.0}, {"1.5", 1.5}, {"1.", 1.0},
	{".5", 0.5}, {"-.5", -0.5}, {"1e3", 1000.0}, {"1E+3", 1000.0}, {"2.5e-3", 0.0025},
	{"9007199254740992", 9007199254740992.0}, {"1e300", 1e300}, {"2.2250738585072014e-308", 2.2250738585072014e-308},
	{"010", "010 has a leading zero"}, {"00", "00 has a leading zero"},
	{"0x10", "0x10 is written in another base than 10: write 16"},
	{"0o17", "0o17 is written in another base than 10: write 15"},
	{"0b101", "0b101 is written in another base than 10: write 5"},
	{"1_000", "1_000 has digit separators: write 1000"},
	{"1e400", "1e400 is too large for a number"}, {"-1e400", "-1e400 is too large for a number"},
	{"1e-400", "1e-400 is too small to be held as a number"}, {"4.9e-324", "4.9e-324 is too small"},
	{"9007199254740993", "9007199254740993 is an integer too large to be held exactly"},
	{"12345678901234567890123", "12345678901234567890123 is an integer too large"},
	{".inf", ".inf is not a finite number"}, {"-.Inf", "-.Inf is not a finite number"}, {".nan", ".nan is not a finite number"},
}

func TestParseNumber(t *testing.T) {
	for _, tc := range numberForms {
		f, problem := parseNumber(tc.text)
		switch want := tc.want.(type) {
		case float64:
			if problem != "" || f != want {
				t.Errorf("%s: got %v, %q; want %v", tc.text, f, problem, want)
			}
		case string:
			if !strings.HasPrefix(problem, want) {
				t.Errorf("%s: got %v, %q; want refused: %s", tc.text, f, problem, want)
			}
		}
	}
}

// A number is read alike in the runbook, in a YAML var file, in --var, in
// RUNBOOK_VAR_ and inside a map given with --var: the same value, or the
// same refusal.
func TestNumberFormsAreReadAlikeEverywhere(t *testing.T) {
	dir := t.TempDir()
	for i, tc := range numberForms {
		name := fmt.Sprintf("%d-%s", i, tc.text)
		t.Run(name, func(t *testing.T) {
			type outcome struct {
				where string
				value any
				diags []string
			}
			var got []outcome
			rb, ds := parse(t, "version: 1\ninputs:\n  n: { type: number, default: "+tc.text+" }\n  m: { type: map }\nsteps:\n  - { id: a, uses: core.log, with: { message: hi } }\n")
			if rb == nil {
				got = append(got, outcome{"default", nil, messages(ds)})
			} else {
				got = append(got, outcome{"default", rb.Inputs[0].Default, nil})
			}
			rb, ds = parse(t, "version: 1\ninputs:\n  n: { type: number }\n  m: { type: map }\nsteps:\n  - { id: a, uses: core.log, with: { message: hi } }\n")
			if rb == nil {
				t.Fatal(ds)
			}
			vf := filepath.Join(dir, fmt.Sprintf("vars-%d.yaml", i))
			if err := os.WriteFile(vf, []byte("n: "+tc.text+"\nm: { k: "+tc.text+" }\n"), 0o644); err != nil {
				t.Fatal(err)
			}
			for where, src := range map[string]InputSources{
				"--var":       {Vars: []string{"n=" + tc.text, "m={k: " + tc.text + "}"}},
				"var file":    {VarFiles: []string{vf}},
				"RUNBOOK_VAR": {Env: []string{"RUNBOOK_VAR_n=" + tc.text}, Vars: []string{"m={k: " + tc.text + "}"}},
			} {
				vals, ds := ResolveInputs(rb, src)
				if ds.HasErrors() {
					got = append(got, outcome{where, nil, messages(ds)})
					continue
				}
				if m := vals["m"].(map[string]any)["k"]; m != vals["n"] {
					t.Errorf("%s: n is %v but a map's field %v", where, vals["n"], m)
				}
				got = append(got, outcome{where, vals["n"], nil})
			}
			for _, o := range got {
				switch want := tc.want.(type) {
				case float64:
					if o.value != want {
						t.Errorf("%s: %v %v, want %v", o.where, o.value, o.diags, want)
					}
				case string:
					if o.diags == nil || !strings.Contains(strings.Join(o.diags, "\n"), want) {
						t.Errorf("%s: %v %q, want refused: %s", o.where, o.value, o.diags, want)
					}
				}
			}
		})
	}
}
