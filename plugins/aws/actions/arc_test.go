package actions

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
	"github.com/runbookhq/runbook/sim/faultproxy"
)

// arcSetup runs aws.arc_setup through p for routing controls "<name>-us-east-1"
// and "<name>-us-west-2".
func arcSetupFor(t *testing.T, c *plugintest.Client, p *faultproxy.Proxy, name, wait string) map[string]any {
	t.Helper()
	out, err := c.Apply(tctx(t), "arc_setup", map[string]any{
		"endpoint_url": p.URL, "cluster_name": name, "control_panel_name": name,
		"routing_controls": []any{name + "-us-east-1", name + "-us-west-2"}, "wait_period": wait, "poll_interval": "100ms",
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

type arcNames struct {
	east, west, rule string
	endpoints        []any
}

func arcOf(out map[string]any, name string) arcNames {
	rcs := out["routing_control_arns"].(map[string]any)
	return arcNames{east: rcs[name+"-us-east-1"].(string), west: rcs[name+"-us-west-2"].(string), rule: out["safety_rule_arn"].(string),
		endpoints: out["cluster_endpoints"].([]any)}
}

// statesAre reports whether an output map of states is exactly kv.
func statesAre(v any, kv ...string) bool {
	m, ok := v.(map[string]any)
	if !ok || len(m) != len(kv)/2 {
		return false
	}
	for i := 0; i < len(kv); i += 2 {
		if m[kv[i]] != kv[i+1] {
			return false
		}
	}
	return true
}

// endpointsFirst orders the endpoints with region first.
func (a arcNames) endpointsFirst(region string) []any {
	var first, rest []any
	for _, e := range a.endpoints {
		if e.(map[string]any)["region"] == region {
			first = append(first, e)
		} else {
			rest = append(rest, e)
		}
	}
	return append(first, rest...)
}

func TestARCSetupIsIdempotent(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	p := proxy(t, env)
	name := awstest.Name(t, "arc")
	out := arcSetupFor(t, c, p, name, "0s")
	a := arcOf(out, name)
	if len(a.endpoints) != 5 || len(out["health_check_ids"].(map[string]any)) != 2 || a.rule == "" {
		t.Fatalf("outputs %v", out)
	}
	if got := fmt.Sprint(out["created"]); got != fmt.Sprintf("[cluster %[1]s control panel %[1]s routing control %[1]s-us-east-1 routing control %[1]s-us-west-2 safety rule at-least-one-on]", name) {
		t.Errorf("created %s", got)
	}
	// The configuration API is called in us-west-2, Route 53's in us-east-1.
	for _, e := range p.Log() {
		if (e.Service == "route53-recovery-control-config" && e.Region != "us-west-2") || (e.Service == "route53" && e.Region != "us-east-1") {
			t.Errorf("%s %s called in %s", e.Service, e.Operation, e.Region)
		}
	}
	again := arcSetupFor(t, c, p, name, "0s")
	if len(again["created"].([]any)) != 0 || fmt.Sprint(again["routing_control_arns"]) != fmt.Sprint(out["routing_control_arns"]) ||
		fmt.Sprint(again["health_check_ids"]) != fmt.Sprint(out["health_check_ids"]) || again["safety_rule_arn"] != a.rule {
		t.Errorf("second run %v, want the same resources and nothing created", again)
	}
	plan, err := c.PlanParams(tctx(t), "arc_setup", map[string]any{"endpoint_url": p.URL, "cluster_name": name, "control_panel_name": name,
		"routing_controls": []any{name + "-us-east-1", name + "-us-west-2", name + "-eu-west-1"}})
	if err != nil {
		t.Fatal(err)
	}
	var creates []string
	for _, ch := range plan.Changes {
		if ch.Kind == plugin.ChangeCreate {
			creates = append(creates, ch.Resource)
		}
	}
	if got := strings.Join(creates, "; "); got != fmt.Sprintf("routing control %[1]s-eu-west-1; Route 53 health check of routing control %[1]s-eu-west-1", name) {
		t.Errorf("plan creates %q", got)
	}
	d, err := c.Describe(tctx(t))
	if err != nil {
		t.Fatal(err)
	}
	if s, _ := d.Action("arc_setup"); fmt.Sprint(s.ControlPlanes) != "[{Route 53 ARC configuration API us-west-2} {Route 53 us-east-1}]" {
		t.Errorf("arc_setup control planes %v", s.ControlPlanes)
	}
	if s, _ := d.Action("arc_routing_controls"); len(s.ControlPlanes) != 0 {
		t.Errorf("arc_routing_controls declares control planes %v; it is a data-plane action", s.ControlPlanes)
	}
}

// The failover flips the routing controls through the first endpoint that
// answers: us-east-1 is dark (with Route 53's and every other control plane
// there), the next endpoint answers, and no control plane is called.
func TestARCRoutingControlsWithUSEast1Dark(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	p := proxy(t, env)
	name := awstest.Name(t, "arc")
	a := arcOf(arcSetupFor(t, c, p, name, "0s"), name)

	set := func(states map[string]any, endpoints []any, extra map[string]any) (map[string]any, error) {
		params := map[string]any{"cluster_endpoints": endpoints, "states": states, "endpoint_order": "listed", "endpoint_timeout": "500ms"}
		for k, v := range extra {
			params[k] = v
		}
		return c.Apply(tctx(t), "arc_routing_controls", params)
	}
	// Peacetime: primary On, as a setup sets it (only while every control is Off).
	out, err := set(map[string]any{a.east: "On", a.west: "Off"}, a.endpoints, map[string]any{"only_if_all_off": true})
	if err != nil {
		t.Fatal(err)
	}
	if out["changed"] != true || !statesAre(out["previous_states"], a.east, "Off", a.west, "Off") {
		t.Fatalf("initial states: %v", out)
	}
	if _, err := p.BlackholeRegion("us-east-1", faultproxy.Hang); err != nil {
		t.Fatal(err)
	}
	p.ResetLog()
	out, err = set(map[string]any{a.west: "On", a.east: "Off"}, a.endpointsFirst("us-east-1"), nil)
	if err != nil {
		t.Fatal(err)
	}
	if out["endpoint_region"] == "us-east-1" || out["changed"] != true {
		t.Errorf("answered by %v, changed %v", out["endpoint_region"], out["changed"])
	}
	if un := fmt.Sprint(out["unanswered"]); !strings.Contains(un, "us-east-1") || !strings.Contains(un, "no answer in time") {
		t.Errorf("unanswered %s, want us-east-1 without an answer", un)
	}
	if !statesAre(out["previous_states"], a.east, "On", a.west, "Off") || !statesAre(out["states"], a.east, "Off", a.west, "On") {
		t.Errorf("previous %v, states %v", out["previous_states"], out["states"])
	}
	for _, e := range p.Log() {
		if e.Service != "route53-recovery-cluster" {
			t.Errorf("the flip called %s %s (%s): only the ARC data plane may be called", e.Service, e.Operation, e.Region)
		}
	}
	if n := p.CountWhere(faultproxy.Filter{Service: "route53-recovery-cluster", Operation: "UpdateRoutingControlStates"}).Forwarded; n != 1 {
		t.Errorf("UpdateRoutingControlStates reached the cluster %d times", n)
	}
	// Again: nothing to change.
	out, err = set(map[string]any{a.west: "On", a.east: "Off"}, a.endpointsFirst("us-east-1"), nil)
	if err != nil || out["changed"] != false {
		t.Errorf("re-run: %v %v, want changed false", out, err)
	}
	// A setup re-run after the failover does not undo it.
	out, err = set(map[string]any{a.east: "On", a.west: "Off"}, a.endpointsFirst("us-east-1"), map[string]any{"only_if_all_off": true})
	if err != nil || out["changed"] != false || !statesAre(out["states"], a.east, "Off", a.west, "On") {
		t.Errorf("only_if_all_off after the failover: %v %v, want nothing changed", out, err)
	}
	// Plan: current -> intended, read through an endpoint that answers.
	plan, err := c.PlanParams(tctx(t), "arc_routing_controls", map[string]any{"cluster_endpoints": a.endpointsFirst("us-east-1"), "states": map[string]any{a.west: "Off", a.east: "On"},
		"endpoint_order": "listed", "endpoint_timeout": "500ms"})
	if err != nil {
		t.Fatal(err)
	}
	// Changes come in ARN order (random ids here): find each control's.
	var eastChange, westChange *plugin.Change
	for i := range plan.Changes {
		switch {
		case strings.Contains(plan.Changes[i].Resource, name+"-us-east-1"):
			eastChange = &plan.Changes[i]
		case strings.Contains(plan.Changes[i].Resource, name+"-us-west-2"):
			westChange = &plan.Changes[i]
		}
	}
	if len(plan.Changes) != 2 || eastChange == nil || westChange == nil ||
		eastChange.Before != "Off" || eastChange.After != "On" || eastChange.Kind != plugin.ChangeUpdate ||
		westChange.Before != "On" || westChange.After != "Off" || westChange.Kind != plugin.ChangeUpdate {
		t.Errorf("plan %+v", plan)
	}

	// Every endpoint dark: retryable, each named.
	for _, r := range []string{"us-west-2", "eu-west-1", "ap-northeast-1", "ap-southeast-2"} {
		if _, err := p.BlackholeRegion(r, faultproxy.Close); err != nil {
			t.Fatal(err)
		}
	}
	_, err = set(map[string]any{a.west: "Off", a.east: "On"}, a.endpoints, nil)
	pe := actionError(t, err)
	if !pe.Retryable || pe.Code != "NoEndpointAnswered" || strings.Count(pe.Message, "(http") != 5 {
		t.Errorf("all endpoints dark: %+v", pe)
	}
	plan, err = c.PlanParams(tctx(t), "arc_routing_controls", map[string]any{"cluster_endpoints": a.endpoints, "states": map[string]any{a.east: "On"}, "endpoint_timeout": "300ms"})
	if err != nil || len(plan.Diagnostics) != 1 || plan.Diagnostics[0].Severity != plugin.SeverityWarning || plan.Changes[0].Before != nil {
		t.Errorf("plan with every endpoint dark: %+v %v", plan, err)
	}
}

func TestARCRoutingControlsSafetyRules(t *testing.T) {
	t.Parallel()
	c, env := start(t)
	p := proxy(t, env)
	name := awstest.Name(t, "arc")
	a := arcOf(arcSetupFor(t, c, p, name, "5s"), name)
	set := func(states map[string]any, override ...any) (map[string]any, error) {
		params := map[string]any{"cluster_endpoints": a.endpoints, "states": states}
		if override != nil {
			params["safety_rules_to_override"] = override
		}
		return c.Apply(tctx(t), "arc_routing_controls", params)
	}
	if _, err := set(map[string]any{a.east: "On"}); err != nil {
		t.Fatal(err)
	}
	// Within the rule's wait period: retryable.
	_, err := set(map[string]any{a.east: "Off", a.west: "On"})
	if pe := actionError(t, err); !pe.Retryable || pe.Code != "ConflictException" {
		t.Errorf("within the wait period: %+v", pe)
	}
	if err := env.Emulator.Advance(context.Background(), 6*time.Second); err != nil {
		t.Fatal(err)
	}
	// Both Off breaks "at least one On": fatal, naming the rule; nothing changed.
	_, err = set(map[string]any{a.east: "Off", a.west: "Off"})
	if pe := wantFatal(t, err, a.rule, "safety_rules_to_override"); pe.Code != "SafetyRuleViolation" {
		t.Errorf("code %s", pe.Code)
	}
	out, err := set(map[string]any{a.east: "Off", a.west: "Off"}, a.rule)
	if err != nil || out["changed"] != true {
		t.Errorf("break glass: %v %v", out, err)
	}
}

// An endpoint under maintenance says so; the next one answers.
func TestARCRoutingControlsEndpointUnavailable(t *testing.T) {
	c, env := start(t)
	p := proxy(t, env)
	name := awstest.Name(t, "arc")
	a := arcOf(arcSetupFor(t, c, p, name, "0s"), name)
	if err := env.Emulator.SetARCEndpointsUnavailable(context.Background(), "us-west-2", "eu-west-1"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = env.Emulator.SetARCEndpointsUnavailable(context.Background()) })
	eps := append(a.endpointsFirst("eu-west-1")[:1], a.endpointsFirst("us-west-2")...)
	out, err := c.Apply(tctx(t), "arc_routing_controls", map[string]any{"cluster_endpoints": eps, "states": map[string]any{a.east: "On"}, "endpoint_order": "listed"})
	if err != nil {
		t.Fatal(err)
	}
	if un := fmt.Sprint(out["unanswered"]); out["endpoint_region"] != "us-east-1" || strings.Count(un, "EndpointTemporarilyUnavailableException") != 2 {
		t.Errorf("answered by %v; unanswered %s", out["endpoint_region"], un)
	}
}

func TestARCRoutingControlsValidation(t *testing.T) {
	t.Parallel()
	c, _ := start(t)
	arn := "arn:aws:route53-recovery-control::123456789012:controlpanel/abc/routingcontrol/def"
	diags, err := c.Validate(tctx(t), "arc_routing_controls", map[string]any{
		"cluster_endpoints": []any{map[string]any{"region": "us-west-2", "endpoint": "host-abc/v1"}},
		"states":            map[string]any{arn: "on", "not-an-arn": "Off"},
	}, nil)
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, d := range diags {
		got = append(got, d.Path)
	}
	want := "/cluster_endpoints/0/endpoint /states/arn:aws:route53-recovery-control::123456789012:controlpanel~1abc~1routingcontrol~1def /states/not-an-arn"
	if strings.Join(got, " ") != want {
		t.Errorf("diagnostics at %v, want %s (%+v)", got, want, diags)
	}
}
