package actions

import (
	"strings"
	"testing"

	"github.com/runbookhq/runbook/internal/docgen"
	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/iam"
	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

func TestIoTEndpoint(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	ctx := tctx(t)
	out, err := c.Apply(ctx, "iot_endpoint", env.Params(drRegion, nil))
	if err != nil {
		t.Fatal(err)
	}
	ep, _ := out["endpoint"].(string)
	if !strings.Contains(ep, "-ats.iot."+drRegion+".") || out["region"] != drRegion {
		t.Fatalf("outputs = %v", out)
	}
	// Stable per region, and different between regions.
	again, err := c.Apply(ctx, "iot_endpoint", env.Params(drRegion, nil))
	if err != nil || again["endpoint"] != ep {
		t.Fatalf("second read = %v, %v", again, err)
	}
	other, err := c.Apply(ctx, "iot_endpoint", env.Params(primaryRegion, nil))
	if err != nil || other["endpoint"] == ep || !strings.Contains(other["endpoint"].(string), primaryRegion) {
		t.Fatalf("primary endpoint = %v, %v", other, err)
	}
	plan, err := c.PlanParams(ctx, "iot_endpoint", env.Params(drRegion, nil))
	if err != nil || len(plan.Changes) != 0 {
		t.Fatalf("plan = %+v, %v", plan, err)
	}
	diags, err := c.Validate(ctx, "iot_endpoint", map[string]any{"region": drRegion, "endpoint_type": "iot:Nope"}, nil)
	if err != nil || len(diags) != 1 {
		t.Fatalf("diags = %+v, %v", diags, err)
	}
}

// Every request an action makes names the action in its User-Agent, in
// Apply and in Plan, so the simulation can check it against the
// permissions the action declares.
func TestRequestsNameTheirAction(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	p, err := faultproxy.Start(env.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	p.Record(true)
	ctx := tctx(t)
	params := map[string]any{"region": drRegion, "endpoint_url": p.URL}
	if _, err := c.Apply(ctx, "iot_endpoint", params); err != nil {
		t.Fatal(err)
	}
	if _, err := c.PlanParams(ctx, "iot_endpoint", params); err != nil {
		t.Fatal(err)
	}
	xs := p.Exchanges()
	if len(xs) == 0 {
		t.Fatal("no request recorded")
	}
	for _, x := range xs {
		if !strings.Contains(x.UserAgent, awscommon.UserAgentKey+"/aws.iot_endpoint") {
			t.Errorf("%s %s: User-Agent %q does not name the action", x.Service, x.Operation, x.UserAgent)
		}
	}
}

// Every action declares the IAM permissions it needs (a new action without
// them fails here, and its calls fail TestPermissionsCoverEveryCall).
func TestEveryActionDeclaresPermissions(t *testing.T) {
	srv, err := plugin.NewServer(plugin.Info{Name: "aws"}, All()...)
	if err != nil {
		t.Fatal(err) // a malformed declaration
	}
	for _, a := range srv.Description().Actions {
		if len(a.Permissions) == 0 {
			t.Errorf("action %s declares no permissions: add .Permissions(...) with the IAM actions of every AWS call it makes", a.Name)
		}
	}
}

// The IAM table of docs/plugins/aws.md is generated from the declarations
// (-update rewrites it).
func TestDocsListThePermissions(t *testing.T) {
	srv, err := plugin.NewServer(plugin.Info{Name: "aws"}, All()...)
	if err != nil {
		t.Fatal(err)
	}
	docgen.Check(t, "docs/plugins/aws.md", "permissions", iam.DocTable("aws", srv.Description().Actions))
}
