package ui

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"

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

// PlanText renders a plan grouped by step: old -> new for each change,
// values only known at run time, steps `if` would skip, and the rollback
// each step carries.
func PlanText(w io.Writer, name string, p *engine.PlanResult) {
	fmt.Fprintf(w, "Plan for %s: nothing has been changed.\n\n", name)
	var changes, noops, skipped, conditional, unknown, errs int
	for _, s := range p.Steps {
		indent := "  "
		if s.Group != "" {
			indent = "    "
		}
		head := indent + s.ID
		switch {
		case s.IsGroup:
			head += "  (parallel group)"
		default:
			head += "  " + s.Uses
		}
		switch s.Decision {
		case engine.PlanSkip:
			skipped++
			fmt.Fprintf(w, "%s  — skipped: %s\n", head, s.SkipReason)
			continue
		case engine.PlanConditional:
			conditional++
			head += fmt.Sprintf("  — runs only if %s (decided at run time)", s.Condition)
		}
		fmt.Fprintln(w, head)
		body := indent + "    "
		if s.Err != "" {
			errs++
			fmt.Fprintf(w, "%s✗ cannot plan: %s\n", body, s.Err)
		}
		if s.IsGroup {
			continue
		}
		switch {
		case s.Plan != nil:
			if s.Plan.Summary != "" {
				fmt.Fprintf(w, "%s%s\n", body, s.Plan.Summary)
			}
			if len(s.Plan.Changes) == 0 {
				fmt.Fprintf(w, "%s= no change\n", body)
				noops++
			}
			stepChanges := 0
			for _, c := range s.Plan.Changes {
				if c.Kind == spec.ChangeNoop {
					noops++
				} else {
					stepChanges++
				}
				fmt.Fprintf(w, "%s%s %s\n", body, changeSymbol(c.Kind), describeChange(c))
			}
			if stepChanges > 0 {
				changes++
			}
			for _, d := range s.Plan.Diagnostics {
				fmt.Fprintf(w, "%s%s: %s\n", body, d.Severity, d.Summary)
			}
		case s.NoPlanSupport:
			unknown++
			fmt.Fprintf(w, "%s? this action cannot plan: what it changes is known only when it runs\n", body)
		}
		if len(s.Unknown) > 0 {
			fmt.Fprintf(w, "%s(known at run time: %s)\n", body, strings.Join(paramNames(s.Unknown), ", "))
		}
		if s.Rollback != "" {
			fmt.Fprintf(w, "%s↺ rollback: %s\n", body, s.Rollback)
		}
	}
	fmt.Fprintf(w, "\n%d step(s) with changes, %d no-op(s), %d skipped, %d conditional, %d not plannable", changes, noops, skipped, conditional, unknown)
	if errs > 0 {
		fmt.Fprintf(w, ", %d could not be planned", errs)
	}
	fmt.Fprintln(w, ".")
}

func describeChange(c spec.Change) string {
	what := c.Resource
	if c.Field != "" {
		what += ": " + c.Field
	}
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
		if c.After == nil && c.Before == nil {
			return what
		}
	}
	return what + ": " + jsonValue(c.Before) + " -> " + after
}

func jsonValue(v any) string {
	if v == nil {
		return "(none)"
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

func paramNames(pointers []string) []string {
	out := make([]string, len(pointers))
	for i, p := range pointers {
		out[i] = strings.ReplaceAll(strings.TrimPrefix(p, "/"), "/", ".")
	}
	return out
}
