package actions

import (
	"strings"
	"testing"
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
