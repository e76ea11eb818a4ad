package engine

import (
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/redact"
	"github.com/runbookhq/runbook/sdk/schema"
)

const redacted = redact.Mask

// redactor is the run's redact.Redactor, with what only the engine knows:
// the secret paths of schemas, and the fields of a record. Secrets
// discovered during a run (secret parameters, secret outputs) are added as
// they appear; with Options.Redactor shared with the plugin host, the host
// learns them too.
type redactor struct{ *redact.Redactor }

func newRedactor(shared *redact.Redactor) *redactor {
	if shared == nil {
		shared = redact.New()
	}
	return &redactor{shared}
}

func (r *redactor) add(vals ...string)                       { r.Add(vals...) }
func (r *redactor) addValue(v any)                           { r.AddValue(v) }
func (r *redactor) string(s string) string                   { return r.String(s) }
func (r *redactor) value(v any) any                          { return r.Value(v) }
func (r *redactor) mapValue(m map[string]any) map[string]any { return r.Map(m) }

// addAt adds the values found at schema secret paths (JSON pointers, "*"
// for any element) inside v.
func (r *redactor) addAt(s *schema.Schema, v any) {
	if s == nil {
		return
	}
	for _, p := range s.SecretPaths() {
		for _, found := range lookup(v, schema.SplitPointer(p)) {
			r.addValue(found)
		}
	}
}

func lookup(v any, segs []string) []any {
	if len(segs) == 0 {
		return []any{v}
	}
	var out []any
	switch x := v.(type) {
	case map[string]any:
		if segs[0] == "*" {
			for _, it := range x {
				out = append(out, lookup(it, segs[1:])...)
			}
		} else if it, ok := x[segs[0]]; ok {
			out = lookup(it, segs[1:])
		}
	case []any:
		for _, it := range x { // "*" (or an index: redact all to be safe)
			out = append(out, lookup(it, segs[1:])...)
		}
	}
	return out
}

// record redacts every text field of a record (a copy).
func (r *redactor) record(ev Event) Event {
	ev.Message = r.string(ev.Message)
	ev.By = r.string(ev.By)
	if id := ev.Approver; id != nil {
		c := *id
		c.OSUser, c.Host, c.Stated, c.AWSUnknown = r.string(c.OSUser), r.string(c.Host), r.string(c.Stated), r.string(c.AWSUnknown)
		if a := c.AWS; a != nil {
			c.AWS = &journal.AWSIdentity{ARN: r.string(a.ARN), Account: r.string(a.Account), UserID: r.string(a.UserID)}
		}
		if ci := c.CI; ci != nil {
			c.CI = &journal.CIIdentity{System: r.string(ci.System), Actor: r.string(ci.Actor), Workflow: r.string(ci.Workflow),
				RunID: r.string(ci.RunID), Repository: r.string(ci.Repository), URL: r.string(ci.URL)}
		}
		ev.Approver = &c
	}
	ev.Outputs = r.mapValue(ev.Outputs)
	ev.Fields = r.mapValue(ev.Fields)
	if ev.Error != nil {
		e := *ev.Error
		e.Message = r.string(e.Message)
		e.Code = r.string(e.Code)
		ev.Error = &e
	}
	if ev.Run != nil {
		info := *ev.Run
		info.Inputs = make([]journal.Input, len(ev.Run.Inputs))
		for i, in := range ev.Run.Inputs {
			in.Value = r.value(in.Value)
			info.Inputs[i] = in
		}
		ev.Run = &info
	}
	return ev
}
