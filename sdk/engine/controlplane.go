package engine

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

// ControlPlaneDependency is a step after an approval that calls a control
// plane served from the region being left (actions declare theirs in
// ActionSpec.ControlPlanes): during an impairment of that region the
// step's changes may fail while the data plane (DNS answers, health
// checks) keeps working ("AWS Fault Isolation Boundaries", Global
// services; Well-Architected Reliability Pillar, REL11-BP04: rely on the
// data plane, not the control plane, during recovery).
type ControlPlaneDependency struct {
	Step    string `json:"step"`
	Uses    string `json:"uses"`
	Service string `json:"service"`
	Region  string `json:"region"`
	// Conditional: whether the step runs is decided later (its `if` reads
	// steps that have not run).
	Conditional bool `json:"conditional,omitempty"`
}

// controlPlaneWarning says which control planes in region the path depends
// on; "" when none.
func controlPlaneWarning(region string, deps []ControlPlaneDependency) string {
	if len(deps) == 0 {
		return ""
	}
	bySvc := map[string][]string{}
	var svcs []string
	for _, d := range deps {
		if _, ok := bySvc[d.Service]; !ok {
			svcs = append(svcs, d.Service)
		}
		id := d.Step
		if d.Conditional {
			id += " (if it runs)"
		}
		bySvc[d.Service] = append(bySvc[d.Service], id)
	}
	sort.Strings(svcs)
	var parts []string
	for _, s := range svcs {
		parts = append(parts, fmt.Sprintf("the %s control plane in %s (steps %s)", s, region, strings.Join(bySvc[s], ", ")))
	}
	return fmt.Sprintf("Warning: this path depends on %s, the region being left. While %s is impaired those calls may fail, although DNS answers and health checks (the data plane) keep working; a path on the data plane (Route 53 ARC routing controls) does not depend on it.",
		strings.Join(parts, " and "), region)
}

// dependsOn returns the control planes in region a step's action declares.
func dependsOn(s *runbook.Step, region string) []spec.ControlPlane {
	if s.IsGroup() || s.Spec == nil {
		return nil
	}
	var out []spec.ControlPlane
	for _, cp := range s.Spec.ControlPlanes {
		if cp.Region == region {
			out = append(out, cp)
		}
	}
	return out
}

// runtimeControlPlaneDeps: the steps after the approval `from` (a path)
// that may still run and call a control plane in region, read while the
// run is at the approval: a step (or a group or call around it) whose `if`
// is false now is left out; one whose `if` reads steps that have not
// finished, or the inputs of a called runbook not bound yet, counts as
// conditional. The steps of called runbooks count, by their paths.
func (e *Engine) runtimeControlPlaneDeps(ctx context.Context, from, region string) []ControlPlaneDependency {
	type guard struct {
		p     *expr.Program
		scope string
	}
	type candidate struct {
		st     *stepState
		planes []spec.ControlPlane
		ifs    []guard // the conditions that can be decided now
		cond   bool
	}
	var cands []candidate
	after := false
	for _, st := range e.order {
		if st.path == from {
			after = true
			continue
		}
		planes := dependsOn(st.step, region)
		if !after || len(planes) == 0 {
			continue
		}
		c := candidate{st: st, planes: planes}
		for x := st; x != nil; x = e.states[x.group] { // the step, then the groups and calls around it
			p := x.step.If
			switch {
			case p == nil:
			case p.Refs().Outputs || !e.finishedAll(x.scope, p.Refs().Steps) || !e.bound(x.scope):
				c.cond = true
			default:
				c.ifs = append(c.ifs, guard{p, x.scope})
			}
		}
		cands = append(cands, c)
	}
	// (e.mu, taken by finishedAll above, is not held while an environment is.)
	var deps []ControlPlaneDependency
	for _, c := range cands {
		skip, cond := false, c.cond
		for _, g := range c.ifs {
			env, done := e.env(g.scope, nil)
			ok, err := g.p.EvalBool(ctx, env)
			done()
			if err != nil {
				cond = true
			} else if !ok {
				skip = true
			}
		}
		if skip {
			continue
		}
		for _, cp := range c.planes {
			deps = append(deps, ControlPlaneDependency{Step: c.st.path, Uses: c.st.step.Uses, Service: cp.Service, Region: cp.Region, Conditional: cond})
		}
	}
	return deps
}

// bound reports whether the inputs of scope sc are known (a called
// runbook's, once its call started).
func (e *Engine) bound(sc string) bool {
	e.envMu.RLock()
	defer e.envMu.RUnlock()
	s := e.scopes[sc]
	return s != nil && s.bound
}

// planControlPlanes fills each planned step's control planes and, for each
// core.approve step with a known leaving_region, the warning about the
// steps after it that would (or may) run and depend on a control plane
// there.
func planControlPlanes(res *PlanResult, specs map[string]*spec.ActionSpec) {
	for i := range res.Steps {
		ps := &res.Steps[i]
		if ps.Decision == PlanSkip || ps.IsGroup {
			continue
		}
		if s := specs[ps.ID]; s != nil {
			ps.ControlPlanes = append([]spec.ControlPlane(nil), s.ControlPlanes...)
		}
	}
	for i := range res.Steps {
		ps := &res.Steps[i]
		if ps.Uses != runbook.CorePlugin+".approve" || ps.Decision == PlanSkip {
			continue
		}
		region, _ := ps.Params["leaving_region"].(string)
		if region == "" {
			continue
		}
		var deps []ControlPlaneDependency
		for j := i + 1; j < len(res.Steps); j++ {
			later := &res.Steps[j]
			if later.Decision == PlanSkip {
				continue
			}
			for _, cp := range later.ControlPlanes {
				if cp.Region != region {
					continue
				}
				deps = append(deps, ControlPlaneDependency{Step: later.ID, Uses: later.Uses, Service: cp.Service, Region: cp.Region, Conditional: later.Decision == PlanConditional})
				w := fmt.Sprintf("depends on the %s control plane in %s, the region being left (approval %s)", cp.Service, region, ps.ID)
				later.Warnings = appendUnique(later.Warnings, w)
			}
		}
		if w := controlPlaneWarning(region, deps); w != "" {
			ps.Warnings = append(ps.Warnings, w)
			res.Warnings = appendUnique(res.Warnings, w)
		}
	}
}

func appendUnique(list []string, s string) []string {
	for _, x := range list {
		if x == s {
			return list
		}
	}
	return append(list, s)
}
