package engine

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/sdk/runbook"
	"github.com/runbookhq/runbook/sdk/spec"
)

var (
	route53Plane    = []spec.ControlPlane{{Service: "Route 53", Region: "us-east-1"}}
	cloudfrontPlane = []spec.ControlPlane{{Service: "CloudFront", Region: "us-east-1"}}
)

// controlPlaneRunbook: an approval that names the region being left, then a
// database step, then one traffic step per path (Route 53 and CloudFront call
// control planes in us-east-1, ARC's routing controls do not), and a step whose
// `if` reads the database step's outputs, in a group for the Route 53 path.
func controlPlaneRunbook(t *testing.T) *runbook.Runbook {
	return build(t, rbOpts{inputs: []*runbook.Input{
		{Name: "traffic", Type: runbook.TypeString},
		{Name: "leaving", Type: runbook.TypeString},
	}},
		def{id: "approve_db", uses: "core.approve", with: map[string]any{"message": "Promote?", "leaving_region": "${{ inputs.leaving }}"}},
		def{id: "db", uses: "aws.switch", spec: spec.ActionSpec{SupportsPlan: true}},
		def{id: "traffic", parallel: []def{
			{id: "dns_server", uses: "dns.set", ifSrc: `inputs.traffic == "route53"`, spec: spec.ActionSpec{SupportsPlan: true, ControlPlanes: route53Plane}},
			{id: "cloudfront_server", uses: "aws.cf", ifSrc: `inputs.traffic == "cloudfront"`, spec: spec.ActionSpec{SupportsPlan: true, ControlPlanes: cloudfrontPlane}},
			{id: "arc_server", uses: "aws.arc", ifSrc: `inputs.traffic == "route53_arc"`, spec: spec.ActionSpec{SupportsPlan: true}},
		}},
		def{id: "dns_iot", uses: "dns.set", ifSrc: `inputs.traffic == "route53"`, spec: spec.ActionSpec{SupportsPlan: true, ControlPlanes: route53Plane}},
		def{id: "route53_only", ifSrc: `inputs.traffic == "route53"`, parallel: []def{
			{id: "later", uses: "dns.set", ifSrc: `steps.db.outputs.ok == true`, spec: spec.ActionSpec{SupportsPlan: true, ControlPlanes: route53Plane}},
		}},
	)
}

func TestPlanWarnsOfControlPlanesInTheRegionLeft(t *testing.T) {
	plan := func(traffic, leaving string) *PlanResult {
		t.Helper()
		inv := newInvoker(nil)
		inv.plan = func(context.Context, PlanCall) (*spec.Plan, error) { return &spec.Plan{Summary: "x"}, nil }
		e, err := New(Options{Runbook: controlPlaneRunbook(t), Invoker: inv, Inputs: map[string]any{"traffic": traffic, "leaving": leaving}})
		if err != nil {
			t.Fatal(err)
		}
		p, err := e.Plan(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return p
	}
	byID := func(p *PlanResult) map[string]PlanStep {
		m := map[string]PlanStep{}
		for _, s := range p.Steps {
			m[s.ID] = s
		}
		return m
	}

	p := plan("route53", "us-east-1")
	steps := byID(p)
	w := strings.Join(steps["approve_db"].Warnings, "\n")
	for _, want := range []string{"the Route 53 control plane in us-east-1", "steps dns_server, dns_iot, later (if it runs)", "the region being left"} {
		if !strings.Contains(w, want) {
			t.Errorf("approval warning %q lacks %q", w, want)
		}
	}
	if strings.Contains(w, "cloudfront_server") || strings.Contains(w, "CloudFront") {
		t.Errorf("approval warning %q names a step the plan skips", w)
	}
	if len(p.Warnings) != 1 || p.Warnings[0] != w {
		t.Errorf("plan warnings %q, want the approval's", p.Warnings)
	}
	if len(steps["dns_server"].Warnings) != 1 || len(steps["dns_server"].ControlPlanes) != 1 || steps["dns_server"].ControlPlanes[0].Service != "Route 53" {
		t.Errorf("dns_server: control planes %+v, warnings %q", steps["dns_server"].ControlPlanes, steps["dns_server"].Warnings)
	}
	if s := steps["cloudfront_server"]; len(s.ControlPlanes) != 0 || len(s.Warnings) != 0 {
		t.Errorf("skipped cloudfront_server: %+v", s)
	}

	for _, c := range []struct{ traffic, leaving string }{{"route53_arc", "us-east-1"}, {"route53", "eu-west-1"}} {
		p := plan(c.traffic, c.leaving)
		if len(p.Warnings) != 0 || len(byID(p)["approve_db"].Warnings) != 0 {
			t.Errorf("traffic %s leaving %s: warnings %q, want none", c.traffic, c.leaving, p.Warnings)
		}
	}
	if p := plan("cloudfront", "us-east-1"); len(p.Warnings) != 1 || !strings.Contains(p.Warnings[0], "the CloudFront control plane in us-east-1 (steps cloudfront_server)") {
		t.Errorf("cloudfront: %q", p.Warnings)
	}
}

func TestApprovalPromptWarnsOfControlPlanesInTheRegionLeft(t *testing.T) {
	prompt := func(traffic, leaving string) string {
		t.Helper()
		var got string
		inv := newInvoker(map[string]action{"db": ok(map[string]any{"ok": true})})
		mustRun(t, Options{Runbook: controlPlaneRunbook(t), Invoker: inv, Inputs: map[string]any{"traffic": traffic, "leaving": leaving},
			Approvals: Approvals{Approver: ApproverFunc(func(ctx context.Context, req ApprovalRequest) (Decision, error) {
				got = req.Message
				return Decision{Approved: true, By: "test"}, nil
			})}})
		return got
	}
	msg := prompt("route53", "us-east-1")
	if !strings.HasPrefix(msg, "Promote?\n\nWarning: this path depends on the Route 53 control plane in us-east-1 (steps dns_server, dns_iot, later (if it runs)), the region being left.") {
		t.Errorf("prompt %q", msg)
	}
	if msg := prompt("route53_arc", "us-east-1"); msg != "Promote?" {
		t.Errorf("data-plane path: prompt %q, want no warning", msg)
	}
	if msg := prompt("route53", "eu-west-1"); msg != "Promote?" {
		t.Errorf("leaving eu-west-1: prompt %q, want no warning", msg)
	}
}

// The plan's text shows each step's control planes and the warnings.
func TestPlanTextShowsControlPlaneWarnings(t *testing.T) {
	// (Rendered by internal/ui; here the engine's JSON carries what it needs.)
	inv := newInvoker(nil)
	inv.plan = func(context.Context, PlanCall) (*spec.Plan, error) { return &spec.Plan{Summary: "x"}, nil }
	e, _ := New(Options{Runbook: controlPlaneRunbook(t), Invoker: inv, Inputs: map[string]any{"traffic": "route53", "leaving": "us-east-1"}})
	p, err := e.Plan(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var b bytes.Buffer
	for _, s := range p.Steps {
		for _, cp := range s.ControlPlanes {
			b.WriteString(s.ID + ":" + cp.Service + "@" + cp.Region + " ")
		}
	}
	if got := b.String(); got != "dns_server:Route 53@us-east-1 dns_iot:Route 53@us-east-1 later:Route 53@us-east-1 " {
		t.Errorf("control planes in the plan: %q", got)
	}
}
