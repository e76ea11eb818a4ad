package runbook

import (
	yaml "gopkg.in/yaml.v3"
)

// finallyList decodes the finally section: steps decoded like the others,
// after them in document order, so that their expressions see every step.
func (l *loader) finallyList(n *yaml.Node) []*stepNode {
	n = deref(n)
	if n.Kind != yaml.SequenceNode {
		l.errorf(n, "finally must be a list of steps (each starting with - id: ...), not %s", describeNode(n))
		return nil
	}
	var out []*stepNode
	for _, c := range n.Content {
		if l.interrupted() {
			return out
		}
		if sn := l.step(c, nil); sn != nil {
			l.rb.Finally = append(l.rb.Finally, sn.step)
			out = append(out, sn)
		}
	}
	return out
}

// checkFinally enforces what a finally step may be: it runs after a failure
// and its rollbacks, when nothing more may change, so it only reads (a
// read-only action, no call, no rollback, no milestone), and its failure is
// tolerated (continue_on_error is implied).
func (l *loader) checkFinally(nodes []*stepNode) {
	var walk func(sn *stepNode)
	walk = func(sn *stepNode) {
		s := sn.step
		what := "finally step " + s.ID
		s.ContinueOnError = true
		if e, ok := sn.f["rollback"]; ok {
			l.errorf(e.K, "%s: a finally step only reads, so it has no rollback", what)
		}
		if e, ok := sn.f["milestone"]; ok {
			l.errorf(e.K, "%s: a finally step marks no milestone (it runs after the run's outcome is decided)", what)
		}
		for _, c := range sn.children {
			walk(c)
		}
		switch {
		case s.Call != nil:
			l.errorf(sn.f["uses"].V, "%s: a finally step cannot call a runbook; list the reads it needs here", what)
		case sn.isGroup():
		case s.Spec != nil && !s.Spec.ReadOnly:
			l.errorf(sn.f["uses"].V, "%s: %s is not read-only; finally steps run after a failure and its rollbacks and may only read", what, s.Uses)
		}
	}
	for _, sn := range nodes {
		walk(sn)
	}
}
