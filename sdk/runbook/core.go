package runbook

import (
	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// CorePlugin is the plugin name of the built-in actions, which the engine
// runs itself.
const CorePlugin = "core"

// CoreCatalog describes the built-in actions (core.approve, core.sleep,
// core.assert, core.log): their parameters and outputs, for validation, the
// editor schema and documentation. The engine implements their behaviour.
func CoreCatalog() *spec.Description {
	str := func(doc string) *schema.Schema { return &schema.Schema{Type: schema.String, Description: doc} }
	dur := func(doc string) *schema.Schema {
		return &schema.Schema{Type: schema.String, Format: schema.FormatDuration, Description: doc}
	}
	object := func(props map[string]*schema.Schema, order []string, required ...string) *schema.Schema {
		if props == nil {
			props = map[string]*schema.Schema{}
		}
		return &schema.Schema{Type: schema.Object, Properties: props, Order: order, Required: required, Closed: true}
	}
	none := func() *schema.Schema { return object(nil, nil) }
	return &spec.Description{
		Name:            CorePlugin,
		Version:         "1",
		ProtocolVersion: 1,
		Actions: []spec.ActionSpec{
			{
				Name: "approve",
				Doc:  "Wait for a human to approve before the run continues: a prompt on a TTY, --approve <step> or --auto-approve, otherwise the run pauses until `runbook resume`.",
				Params: object(map[string]*schema.Schema{
					"message":        str("The question put to the approver."),
					"timeout":        dur("How long to wait for an interactive answer; the step fails when it expires. Default: no limit."),
					"leaving_region": str("The region the run moves away from (in a failover, the primary's). The prompt, and the plan, then warn about the steps after this one that may run and depend on a control plane served from that region (Route 53's and CloudFront's are in us-east-1), as their actions declare."),
				}, []string{"message", "timeout", "leaving_region"}, "message"),
				Outputs: object(map[string]*schema.Schema{
					"approved_by":  str("Who approved."),
					"approved_via": str("How: interactive, pre-approved (--approve) or auto-approve."),
					"approved_at":  &schema.Schema{Type: schema.String, Format: "date-time", Description: "When, in RFC 3339."},
				}, []string{"approved_by", "approved_via", "approved_at"}),
				Idempotent:   true,
				SupportsPlan: true,
			},
			{
				Name:         "sleep",
				Doc:          "Wait for a duration (bounded by the step's timeout).",
				Params:       object(map[string]*schema.Schema{"duration": dur("How long to wait, such as 30s or 5m.")}, []string{"duration"}, "duration"),
				Outputs:      none(),
				Idempotent:   true,
				SupportsPlan: true,
				ReadOnly:     true,
			},
			{
				Name: "assert",
				Doc:  "Fail the step unless a condition holds; write the condition as that: ${{ expression }}.",
				Params: object(map[string]*schema.Schema{
					"that":    {Type: schema.Boolean, Description: "The condition, typically ${{ expression }}."},
					"message": str("What failed, shown when the condition is false."),
				}, []string{"that", "message"}, "that"),
				Outputs:      none(),
				Idempotent:   true,
				SupportsPlan: true,
				ReadOnly:     true,
			},
			{
				Name: "log",
				Doc:  "Write a message to the run's output and journal.",
				Params: object(map[string]*schema.Schema{
					"message": str("The message; ${{ }} interpolation is the usual way to show values."),
					"level":   {Type: schema.String, Enum: []any{"info", "warn", "error"}, Default: "info", Description: "Severity."},
				}, []string{"message", "level"}, "message"),
				Outputs:      none(),
				Idempotent:   true,
				SupportsPlan: true,
				ReadOnly:     true,
			},
		},
	}
}
