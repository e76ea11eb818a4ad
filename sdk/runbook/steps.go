package runbook

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
	"time"

	yaml "gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/expr"
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

var (
	stepKeys     = []string{"id", "name", "uses", "with", "if", "timeout", "retry", "until", "continue_on_error", "rollback", "parallel", "max_parallel", "milestone"}
	rollbackKeys = []string{"uses", "with", "timeout", "retry", "when"}
	untilKeys    = []string{"condition", "interval", "timeout"}
	actionRe     = regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_-]*$`)
)

// stepNode is a step being validated, with what the expression pass needs.
type stepNode struct {
	step   *Step
	f      map[string]entry
	parent *stepNode // the parallel group it belongs to
	// outSchema is the action's outputs schema (nil: unknown or none).
	outSchema *schema.Schema
	outputs   expr.Type
	children  []*stepNode
	group     bool // it has `parallel` (even if that is not a valid list)
	rb        *rollbackNode
	until     *yaml.Node // the condition
}

type rollbackNode struct {
	rb   *Rollback
	f    map[string]entry
	key  *yaml.Node
	uses *yaml.Node
}

func (sn *stepNode) isGroup() bool { return sn.group }

func (l *loader) stepList(n *yaml.Node) {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "steps must be a list of steps (each starting with - id: ...), not %s", describeNode(n))
		return
	}
	if len(n.Content) == 0 {
		l.errorf(n, "steps is empty: a runbook needs at least one step")
		return
	}
	for _, c := range n.Content {
		if l.interrupted() {
			return
		}
		if sn := l.step(c, nil); sn != nil {
			l.rb.Steps = append(l.rb.Steps, sn.step)
		}
	}
}

// step decodes one step (and a group's children) without its expressions,
// which need the whole step list first (see check.go).
func (l *loader) step(n *yaml.Node, parent *stepNode) *stepNode {
	n = deref(n)
	if len(l.steps) >= MaxSteps {
		if !l.tooMany {
			l.errorf(n, "too many steps: a runbook has at most %d (parallel children included)", MaxSteps)
			l.tooMany = true
		}
		return nil
	}
	es, ok := l.mapping(n, "a step")
	if !ok {
		return nil
	}
	sn := &stepNode{step: &Step{Pos: l.pos(n)}, parent: parent}
	l.steps = append(l.steps, sn)
	s := sn.step
	what := "step"
	for _, e := range es {
		if e.Key == "id" {
			if id, ok := l.str(e.V, "id"); ok {
				s.ID = id
				what = "step " + id
				switch first, dup := l.byID[id]; {
				case !idRe.MatchString(id):
					l.errorf(e.V, "invalid step id %q: use lower case letters, digits and _, starting with a letter", shownName(id))
					what = "step " + strconv.QuoteToASCII(id) // escaped in the messages that name it
				case dup:
					l.errorf(e.V, "duplicate step id %q (first at line %d)", id, first.step.Pos.Line)
				default:
					l.byID[id] = sn
				}
			}
		}
	}
	f := l.known(es, what, stepKeys...)
	sn.f = f
	if _, ok := f["id"]; !ok {
		l.errorf(n, "a step needs an id (lower case letters, digits and _)")
	}
	if e, ok := f["name"]; ok {
		if name, ok := l.str(e.V, what+": name"); ok && l.noTemplate(e.V, what+": name") {
			s.Name = name
		}
	}
	if e, ok := f["continue_on_error"]; ok {
		s.ContinueOnError, _ = l.boolean(e.V, what+": continue_on_error")
	}
	if e, ok := f["milestone"]; ok {
		_, conditional := f["if"]
		l.milestone(s, e, what, conditional)
	}
	uses, hasUses := f["uses"]
	par, hasPar := f["parallel"]
	switch {
	case hasUses && hasPar:
		second := par.K
		if par.K.Line < uses.K.Line || par.K.Line == uses.K.Line && par.K.Column < uses.K.Column {
			second = uses.K
		}
		l.errorf(second, "%s has both uses and parallel: a step is an action (uses) or a group (parallel), not both", what)
	case hasPar:
		l.group(sn, par, what)
	case hasUses && isCallRef(deref(uses.V).Value):
		l.call(sn, uses, what)
	case hasUses:
		l.action(sn, uses, what)
	default:
		l.errorf(n, "%s needs uses (an action, such as core.log) or parallel (a group of steps)", what)
	}
	return sn
}

// milestone decodes a step's milestone: the name of the moment it
// succeeds ("database writable"), which reports measure from the run's start.
// Several steps may mark one milestone only if each has an `if`: they are
// alternatives (a planned switchover or an unplanned failover), and the
// milestone is reached when the first of them succeeds.
func (l *loader) milestone(s *Step, e entry, what string, conditional bool) {
	m, ok := l.str(e.V, what+": milestone")
	if !ok || !l.noTemplate(e.V, what+": milestone") {
		return
	}
	if strings.TrimSpace(m) == "" {
		l.errorf(e.V, "%s: milestone is empty", what)
		return
	}
	if first, dup := l.milestones[m]; dup && !(conditional && first.conditional) {
		l.errorf(e.V, "%s: milestone %q already marks step %s (several steps may mark one milestone only if each has an `if`, as alternatives)", what, m, first.id)
		return
	}
	l.milestones[m] = milestoneMark{id: s.ID, conditional: conditional}
	s.Milestone = m
}

func (l *loader) group(sn *stepNode, par entry, what string) {
	f := sn.f
	sn.group, sn.outputs = true, expr.NoOutputs
	for _, k := range []string{"with", "rollback", "timeout", "retry", "until"} {
		if e, ok := f[k]; ok {
			hint := "set it on the group's steps"
			if k == "rollback" {
				hint = "give each step of the group its own rollback"
			}
			l.errorf(e.K, "%s is a parallel group: %s does not apply to a group (%s)", what, k, hint)
		}
	}
	if e, ok := f["max_parallel"]; ok {
		if v, ok := l.integer(e.V, what+": max_parallel"); ok {
			if v < 1 {
				l.errorf(e.V, "%s: max_parallel must be at least 1", what)
			} else {
				sn.step.MaxParallel = v
			}
		}
	}
	list := deref(par.V)
	if list.Kind != yaml.SequenceNode {
		l.errorf(par.V, "%s: parallel must be a list of steps, not %s", what, describeNode(par.V))
		return
	}
	if len(list.Content) == 0 {
		l.errorf(par.V, "%s: parallel is empty: a group needs at least one step", what)
		return
	}
	for _, c := range list.Content {
		if cn := l.step(c, sn); cn != nil {
			sn.children = append(sn.children, cn)
			sn.step.Parallel = append(sn.step.Parallel, cn.step)
		}
	}
}

func (l *loader) action(sn *stepNode, uses entry, what string) {
	s, f := sn.step, sn.f
	if e, ok := f["max_parallel"]; ok {
		l.errorf(e.K, "%s: max_parallel applies to a parallel group only", what)
	}
	s.Uses, s.Plugin, s.Action, s.Spec, _ = l.uses(uses.V, what)
	sn.outputs = expr.Unknown
	if s.Spec != nil {
		sn.outSchema = s.Spec.Outputs
		sn.outputs = expr.SchemaType(s.Spec.Outputs)
	}
	var own *time.Duration
	if e, ok := f["timeout"]; ok {
		if v, ok := l.positiveDuration(e.V, what+": timeout"); ok {
			own = &v
		}
	}
	s.Timeout = l.timeout(own)
	var rs retrySpec
	if e, ok := f["retry"]; ok {
		rs = l.retry(e.V, what+": retry")
	}
	s.Retry = rs.resolve(l.defRetry)
	if e, ok := f["until"]; ok {
		l.untilSpec(sn, e, what)
	}
	if e, ok := f["rollback"]; ok {
		l.rollback(sn, e, what, own, rs)
	}
}

func (l *loader) untilSpec(sn *stepNode, e entry, what string) {
	s := sn.step
	if s.Plugin == CorePlugin && s.Action == "approve" {
		l.errorf(e.K, "%s: until cannot be used with core.approve", what)
		return
	}
	u := &Until{Interval: DefaultUntilInterval, Timeout: s.Timeout, Pos: l.pos(e.V)}
	v := deref(e.V)
	if v.Kind != yaml.MappingNode {
		sn.until = e.V
		s.Until = u
		return
	}
	f, _ := l.fields(v, what+": until", untilKeys...)
	c, ok := f["condition"]
	if !ok {
		l.errorf(e.K, "%s: until needs a condition (an expression over outputs, such as outputs.status == \"available\")", what)
		return
	}
	sn.until = c.V
	u.Pos = l.pos(c.V)
	if i, ok := f["interval"]; ok {
		if d, ok := l.positiveDuration(i.V, what+": until: interval"); ok && l.atLeast(i.V, what+": until: interval", d, MinUntilInterval) {
			u.Interval = d
		}
	}
	if t, ok := f["timeout"]; ok {
		if d, ok := l.positiveDuration(t.V, what+": until: timeout"); ok {
			u.Timeout = d
		}
	}
	s.Until = u
}

func (l *loader) rollback(sn *stepNode, e entry, what string, stepTimeout *time.Duration, stepRetry retrySpec) {
	what += ": rollback"
	f, ok := l.fields(e.V, what, rollbackKeys...)
	if !ok {
		return
	}
	rn := &rollbackNode{rb: &Rollback{Pos: l.pos(e.K)}, f: f, key: e.K}
	u, ok := f["uses"]
	if !ok {
		l.errorf(e.K, "%s needs uses (the compensating action)", what)
		return
	}
	rn.uses = u.V
	rb := rn.rb
	rb.Uses, rb.Plugin, rb.Action, rb.Spec, _ = l.uses(u.V, what)
	// A rollback inherits its step's timeout and retry policy: it is often
	// the same action run the other way.
	own := stepTimeout
	if t, ok := f["timeout"]; ok {
		if v, ok := l.positiveDuration(t.V, what+": timeout"); ok {
			own = &v
		}
	}
	rb.Timeout = l.timeout(own)
	var rs retrySpec
	if r, ok := f["retry"]; ok {
		rs = l.retry(r.V, what+": retry")
	}
	rb.Retry = rs.merge(stepRetry).resolve(l.defRetry)
	if w, ok := f["when"]; ok {
		if v, ok := l.str(w.V, what+": when"); ok {
			switch v {
			case "completed":
			case "attempted":
				rb.Attempted = true
			default:
				l.errorf(w.V, "%s: when must be completed (the default: compensate the step once it succeeded) or attempted (also once it failed after an attempt started), not %q", what, v)
			}
		}
	}
	sn.rb = rn
	sn.step.Rollback = rb
}

// uses resolves "<plugin>.<action>" to the action's spec. ok is false when
// the reference is invalid; a valid reference to a plugin the catalog
// could not describe has a nil spec (that failure is reported once, at the
// plugin).
func (l *loader) uses(n *yaml.Node, what string) (uses, plugin, action string, sp *spec.ActionSpec, ok bool) {
	s, ok := l.str(n, what+": uses")
	if !ok || !l.noTemplate(n, what+": uses") {
		return "", "", "", nil, false
	}
	plugin, action, found := strings.Cut(s, ".")
	if !found || !idRe.MatchString(plugin) || !actionRe.MatchString(action) {
		l.errorf(n, "%s: uses must be <plugin>.<action>, such as core.log or aws.ecs_service_scale, not %q", what, s)
		return s, "", "", nil, false
	}
	var desc *spec.Description
	if plugin == CorePlugin {
		desc = l.core
	} else {
		p, declared := l.plugins[plugin]
		if !declared {
			names := []string{CorePlugin}
			for name := range l.plugins {
				names = append(names, name)
			}
			if sug := l.suggest(plugin, names); sug != "" {
				l.errorf(n, "%s: unknown plugin %q (did you mean %q?)", what, shownName(plugin), sug)
			} else {
				l.errorf(n, "%s: unknown plugin %q: declare it under plugins: (%s: { command: runbook-plugin-%s })", what, shownName(plugin), plugin, plugin)
			}
			return s, plugin, action, nil, false
		}
		p.used = true
		if p.failed {
			return s, plugin, action, nil, true
		}
		if p.desc == nil {
			l.errorf(n, "%s: cannot check %s: no plugin catalog (the plugins are unknown)", what, s)
			return s, plugin, action, nil, false
		}
		desc = p.desc
	}
	sp, found = desc.Action(action)
	if !found {
		names := make([]string, len(desc.Actions))
		for i, a := range desc.Actions {
			names[i] = a.Name
		}
		msg := fmt.Sprintf("%s: plugin %s has no action %q", what, plugin, shownName(action))
		if sug := l.suggest(action, names); sug != "" {
			msg += fmt.Sprintf(" (did you mean %q?)", sug)
		} else if len(names) <= 12 {
			msg += " (it has " + strings.Join(names, ", ") + ")"
		}
		l.add(l.pos(n), Error, "%s", msg)
		return s, plugin, action, nil, false
	}
	return s, plugin, action, sp, true
}

// milestoneMark is the first step marking a milestone.
type milestoneMark struct {
	id          string
	conditional bool
}
