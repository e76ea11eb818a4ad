package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/internal/termtext"
	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/spec"
)

// changeSymbol is the one-character mark of a change kind, as operators
// know it from terraform plan.
func changeSymbol(kind string) string {
	switch kind {
	case spec.ChangeCreate:
		return "+"
	case spec.ChangeDelete:
		return "-"
	case spec.ChangeReplace:
		return "±"
	case spec.ChangeNoop:
		return "="
	case spec.ChangeAction:
		return "!"
	}
	return "~"
}

// changeLegend names each mark, in the order the legend lists them.
var changeLegend = []struct{ kind, text string }{
	{spec.ChangeCreate, "create"},
	{spec.ChangeUpdate, "update"},
	{spec.ChangeReplace, "replace"},
	{spec.ChangeDelete, "delete"},
	{spec.ChangeAction, "action"},
	{spec.ChangeNoop, "no change"},
}

// PlanText renders a plan grouped by step, in the order the steps would
// run (parallel children indented under their group): for each step, what
// its action says it would do, each change as old -> new, the parameters
// and values only known at run time, whether an `if` skips it or decides
// at run time, and the rollback it carries.
func PlanText(w io.Writer, name string, p *engine.PlanResult) {
	fmt.Fprintf(w, "Plan for %s: nothing has been changed.\n", clean(name))
	if legend := planLegend(p); legend != "" {
		fmt.Fprintf(w, "Legend: %s\n", legend)
	}
	fmt.Fprintln(w)
	depth := map[string]int{}
	cond := map[string]string{}
	decision := map[string]engine.PlanDecision{}
	var changes, noops, skipped, conditional, unplannable, errs, tolerated int
	for _, s := range p.Steps {
		d := 0
		if s.Group != "" {
			d = depth[s.Group] + 1
		}
		depth[s.ID], cond[s.ID], decision[s.ID] = d, s.Condition, s.Decision
		indent := strings.Repeat("  ", d+1)
		body := indent + "    "

		head := indent + s.ID
		switch {
		case s.IsGroup && s.Name != "":
			head += "  " + clean(s.Name) + " (parallel group)"
		case s.IsGroup:
			head += "  (parallel group)"
		case s.Name != "":
			head += "  " + s.Uses + "  (" + clean(s.Name) + ")"
		default:
			head += "  " + s.Uses
		}
		fmt.Fprintln(w, head)

		// A decision inherited from the group is said once, on the group.
		inherited := s.Group != "" && decision[s.Group] == s.Decision && cond[s.Group] == s.Condition
		switch s.Decision {
		case engine.PlanSkip:
			if !s.IsGroup {
				skipped++
			}
			if !inherited {
				fmt.Fprintf(w, "%s- skipped: %s\n", body, clean(s.SkipReason))
			}
			continue
		case engine.PlanConditional:
			if !s.IsGroup {
				conditional++
			}
			if !inherited {
				fmt.Fprintf(w, "%s? runs only if %s (decided at run time)\n", body, clean(s.Condition))
			}
		}
		if s.Err != "" {
			errs++
			fmt.Fprintf(w, "%s✗ cannot plan: %s\n", body, clean(s.Err))
		}
		if s.Tolerated != "" {
			tolerated++
			fmt.Fprintf(w, "%s⚐ not planned now: %s\n", body, clean(s.Tolerated))
		}
		if s.IsGroup {
			continue
		}
		switch {
		case s.Plan != nil:
			if s.Plan.Summary != "" {
				fmt.Fprintf(w, "%s%s\n", body, clean(s.Plan.Summary))
			}
			stepChanges := 0
			for _, c := range s.Plan.Changes {
				if c.Kind != spec.ChangeNoop {
					stepChanges++
				}
				if fields := fieldChanges(c); fields != nil {
					// Two objects: only what differs, one field a line.
					fmt.Fprintf(w, "%s%s %s:\n", body, changeSymbol(c.Kind), changeWhat(c))
					for _, f := range fields {
						fmt.Fprintf(w, "%s    %s\n", body, termtext.Escape(f))
					}
					continue
				}
				fmt.Fprintf(w, "%s%s %s\n", body, changeSymbol(c.Kind), describeChange(c))
			}
			if len(s.Plan.Changes) == 0 {
				fmt.Fprintf(w, "%s= no change\n", body)
			}
			if stepChanges > 0 {
				changes++
			} else if s.Err == "" {
				noops++
			}
			for _, d := range s.Plan.Diagnostics {
				where := ""
				if d.Path != "" {
					where = " (" + clean(paramName(d.Path)) + ")"
				}
				fmt.Fprintf(w, "%s%s: %s%s\n", body, d.Severity, clean(d.Summary), where)
			}
			for _, c := range s.Conditions {
				fmt.Fprintf(w, "%s◇ %s\n", body, clean(c))
			}
		case s.NoPlanSupport:
			unplannable++
			fmt.Fprintf(w, "%s? this action cannot plan: what it changes is known only when it runs\n", body)
		}
		if s.Read {
			fmt.Fprintf(w, "%s→ read now (read-only): %s\n", body, clean(readOutputs(s.Outputs)))
		}
		if len(s.Unknown) > 0 {
			fmt.Fprintf(w, "%s(known at run time: %s)\n", body, strings.Join(paramNames(s.Unknown), ", "))
		}
		if s.Rollback != "" {
			fmt.Fprintf(w, "%s↺ rollback: %s\n", body, s.Rollback)
		}
		for _, cp := range s.ControlPlanes {
			fmt.Fprintf(w, "%s⌂ calls the %s control plane (served from %s)\n", body, clean(cp.Service), clean(cp.Region))
		}
		for _, wn := range s.Warnings {
			fmt.Fprintf(w, "%s⚠ %s\n", body, clean(wn))
		}
	}
	fmt.Fprintf(w, "\n%s with changes, %s, %d skipped, %d conditional, %d not plannable",
		count(changes, "step"), count(noops, "no-op"), skipped, conditional, unplannable)
	if tolerated > 0 {
		fmt.Fprintf(w, ", %d not planned now (tolerated at run time)", tolerated)
	}
	if errs > 0 {
		fmt.Fprintf(w, ", %d could not be planned", errs)
	}
	fmt.Fprintln(w, ".")
	for _, wn := range p.Warnings {
		fmt.Fprintf(w, "\n⚠ %s\n", clean(wn))
	}
}

func count(n int, what string) string {
	if n == 1 {
		return "1 " + what
	}
	return fmt.Sprintf("%d %ss", n, what)
}

// planLegend lists the change marks the plan uses.
func planLegend(p *engine.PlanResult) string {
	used := map[string]bool{}
	for _, s := range p.Steps {
		if s.Plan == nil {
			continue
		}
		for _, c := range s.Plan.Changes {
			used[c.Kind] = true
		}
		if len(s.Plan.Changes) == 0 {
			used[spec.ChangeNoop] = true
		}
	}
	var parts []string
	for _, l := range changeLegend {
		if used[l.kind] {
			parts = append(parts, changeSymbol(l.kind)+" "+l.text)
		}
	}
	// Kinds a plugin invented are shown as updates.
	for k := range used {
		known := false
		for _, l := range changeLegend {
			known = known || l.kind == k
		}
		if !known && !used[spec.ChangeUpdate] {
			parts = append(parts, "~ update")
			used[spec.ChangeUpdate] = true
		}
	}
	return strings.Join(parts, "   ")
}

func changeWhat(c spec.Change) string {
	if c.Field != "" {
		return clean(c.Resource) + ": " + clean(c.Field)
	}
	return clean(c.Resource)
}

// fieldChanges compares an update whose old and new values are both
// objects field by field ("alias.dns_name: "a" -> "b""), so a record or a
// service shows what changes rather than two walls of JSON. Nil when the
// change is not of that shape.
func fieldChanges(c spec.Change) []string {
	if c.AfterUnknown || (c.Kind != spec.ChangeUpdate && c.Kind != spec.ChangeReplace && c.Kind != "") {
		return nil
	}
	before, ok1 := c.Before.(map[string]any)
	after, ok2 := c.After.(map[string]any)
	if !ok1 || !ok2 {
		return nil
	}
	var out []string
	diffObjects("", before, after, &out)
	if len(out) == 0 {
		out = []string{"(no field differs)"}
	}
	return out
}

func diffObjects(prefix string, before, after map[string]any, out *[]string) {
	keys := map[string]bool{}
	for k := range before {
		keys[k] = true
	}
	for k := range after {
		keys[k] = true
	}
	names := make([]string, 0, len(keys))
	for k := range keys {
		names = append(names, k)
	}
	sort.Strings(names)
	for _, k := range names {
		b, inB := before[k]
		a, inA := after[k]
		bm, bObj := b.(map[string]any)
		am, aObj := a.(map[string]any)
		switch {
		case bObj && aObj:
			diffObjects(prefix+k+".", bm, am, out)
		case !inA:
			*out = append(*out, fmt.Sprintf("- %s%s (was %s)", prefix, k, jsonValue(b)))
		case !inB:
			*out = append(*out, fmt.Sprintf("+ %s%s = %s", prefix, k, jsonValue(a)))
		case jsonValue(a) != jsonValue(b):
			*out = append(*out, fmt.Sprintf("~ %s%s: %s -> %s", prefix, k, jsonValue(b), jsonValue(a)))
		}
	}
}

func describeChange(c spec.Change) string {
	what := changeWhat(c)
	after := jsonValue(c.After)
	if c.AfterUnknown {
		after = "(known at run time)"
	}
	switch c.Kind {
	case spec.ChangeCreate:
		if c.After == nil && !c.AfterUnknown {
			return what
		}
		return what + " = " + after
	case spec.ChangeDelete:
		if c.Before == nil {
			return what
		}
		return what + " (was " + jsonValue(c.Before) + ")"
	case spec.ChangeNoop:
		if c.Before == nil {
			return what
		}
		return what + " = " + jsonValue(c.Before)
	case spec.ChangeAction:
		if c.After == nil && c.Before == nil && !c.AfterUnknown {
			return what
		}
		if c.Before == nil {
			return what + ": " + after
		}
	}
	return what + ": " + jsonValue(c.Before) + " -> " + after
}

// jsonValue shows a plugin's value: JSON, escaped for the terminal (JSON
// leaves DEL and C1 controls as they are).
func jsonValue(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return termtext.Escape(fmt.Sprint(v))
	}
	return termtext.Escape(string(b))
}

func paramNames(pointers []string) []string {
	out := make([]string, len(pointers))
	for i, p := range pointers {
		out[i] = paramName(p)
	}
	return out
}

// paramName turns a JSON pointer into a parameter path: /target/dns_name
// -> target.dns_name.
func paramName(pointer string) string {
	segs := strings.Split(strings.TrimPrefix(pointer, "/"), "/")
	for i, s := range segs {
		segs[i] = strings.NewReplacer("~1", "/", "~0", "~").Replace(s)
	}
	return strings.Join(segs, ".")
}

// readOutputs summarises the outputs of a read-only step run by the plan:
// its scalar outputs, which later steps' plans used.
func readOutputs(out map[string]any) string {
	keys := make([]string, 0, len(out))
	for k, v := range out {
		switch v.(type) {
		case string, float64, bool:
			if v != "" {
				keys = append(keys, k)
			}
		}
	}
	sort.Strings(keys)
	if len(keys) == 0 {
		return "done"
	}
	parts := make([]string, 0, len(keys))
	for _, k := range keys {
		parts = append(parts, fmt.Sprintf("%s=%v", k, out[k]))
	}
	return strings.Join(parts, ", ")
}
