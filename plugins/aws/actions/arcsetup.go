package actions

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	r53types "github.com/aws/aws-sdk-go-v2/service/route53/types"
	cc "github.com/aws/aws-sdk-go-v2/service/route53recoverycontrolconfig"
	cctypes "github.com/aws/aws-sdk-go-v2/service/route53recoverycontrolconfig/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

type arcSetupParams struct {
	Region           string        `json:"region" default:"us-west-2" doc:"Region of Route 53 ARC's configuration API: us-west-2, the only region that serves it."`
	Profile          string        `json:"profile" doc:"Shared config profile to use; default: the SDK's default credential chain."`
	EndpointURL      string        `json:"endpoint_url" doc:"Send every request to this endpoint instead of AWS's (an emulator, a proxy)."`
	ClusterName      string        `json:"cluster_name" required:"true" doc:"The ARC cluster (found by name, created if missing)."`
	ControlPanelName string        `json:"control_panel_name" required:"true" doc:"The control panel in the cluster (found by name, created if missing)."`
	RoutingControls  []string      `json:"routing_controls" required:"true" doc:"Names of the routing controls, one per region (e.g. spacelift-eu-west-1, spacelift-eu-west-3); found by name in the control panel, created if missing (new ones are Off)."`
	SafetyRuleName   string        `json:"safety_rule_name" default:"at-least-one-on" doc:"The assertion rule over every routing control (found by name, created if missing)."`
	AtLeastOn        int           `json:"at_least_on" default:"1" min:"1" doc:"The assertion rule: at least this many routing controls On after any update, so that no update leaves the hostname with no region."`
	WaitPeriod       time.Duration `json:"wait_period" default:"5s" doc:"The rule's wait period: after a change, updates of its controls are refused this long (ARC's default 5 s)."`
	HealthChecks     bool          `json:"health_checks" default:"true" doc:"Create a Route 53 health check of type RECOVERY_CONTROL for each routing control (idempotent by CallerReference): the checks the failover records are bound to."`
	PollInterval     time.Duration `json:"poll_interval" default:"2s" doc:"How often to read a resource while it is PENDING."`
}

type arcSetupOutputs struct {
	ClusterARN         string            `json:"cluster_arn"`
	ClusterEndpoints   []ARCEndpoint     `json:"cluster_endpoints" doc:"The cluster's five regional endpoints: the input of aws.arc_routing_controls; keep them with the DR runbooks' inputs (a failover must not need the configuration API to find them)."`
	ControlPanelARN    string            `json:"control_panel_arn"`
	RoutingControlARNs map[string]string `json:"routing_control_arns" doc:"Routing control name -> ARN."`
	SafetyRuleARN      string            `json:"safety_rule_arn"`
	HealthCheckIDs     map[string]string `json:"health_check_ids" doc:"Routing control name -> the id of its RECOVERY_CONTROL health check (empty without health_checks)."`
	Created            []string          `json:"created" doc:"What this run created (empty when everything existed)."`
	Duration           time.Duration     `json:"duration"`
}

func arcSetup() plugin.Action {
	return plugin.NewAction("arc_setup", applyARCSetup).
		Doc("Peacetime setup of Route 53 ARC routing control for a two-region installation: the cluster (five regional data-plane endpoints), a control panel, one routing control per region, an assertion safety rule (at least one On), and a Route 53 RECOVERY_CONTROL health check per routing control. Each is found by name and created if missing, then waited for until DEPLOYED. This is control-plane work (ARC's configuration API in us-west-2, Route 53's in us-east-1): run it ahead of time, never during an outage. Idempotent.").
		Permissions(arcSetupPermissions...).
		Idempotent().
		ControlPlane(plugin.ControlPlane{Service: "Route 53 ARC configuration API", Region: "us-west-2"}).
		ControlPlane(plugin.ControlPlane{Service: "Route 53", Region: "us-east-1"}).
		Validate(func(req plugin.ValidateRequest[arcSetupParams]) []plugin.Diagnostic {
			p := req.Params
			var diags []plugin.Diagnostic
			if !req.Unknown("/routing_controls") {
				seen := map[string]bool{}
				for i, n := range p.RoutingControls {
					if seen[n] {
						diags = append(diags, plugin.Errorf(fmt.Sprintf("/routing_controls/%d", i), "routing control %q is listed twice", n))
					}
					seen[n] = true
				}
				if len(p.RoutingControls) < 2 {
					diags = append(diags, plugin.Errorf("/routing_controls", "give one routing control per region: at least two"))
				}
				if !req.Unknown("/at_least_on") && p.AtLeastOn > len(p.RoutingControls) {
					diags = append(diags, plugin.Errorf("/at_least_on", "at_least_on %d is more than the %d routing controls", p.AtLeastOn, len(p.RoutingControls)))
				}
			}
			return diags
		}).
		Plan(planARCSetup)
}

type arcClients struct {
	cc  *cc.Client
	r53 *route53.Client
}

func arcSetupClients(ctx context.Context, p arcSetupParams) (arcClients, error) {
	conn := awscommon.Conn{Region: p.Region, Profile: p.Profile, EndpointURL: p.EndpointURL}
	cfg, err := conn.Config(ctx)
	if err != nil {
		return arcClients{}, err
	}
	r53cfg, err := conn.WithRegion("us-east-1").Config(ctx)
	if err != nil {
		return arcClients{}, err
	}
	return arcClients{cc: cc.NewFromConfig(cfg), r53: route53.NewFromConfig(r53cfg)}, nil
}

// arcFound is what exists of the setup.
type arcFound struct {
	cluster  *cctypes.Cluster
	panel    *cctypes.ControlPanel
	controls map[string]cctypes.RoutingControl
	rule     *cctypes.AssertionRule
}

func findARC(ctx context.Context, c arcClients, p arcSetupParams) (arcFound, error) {
	f := arcFound{controls: map[string]cctypes.RoutingControl{}}
	var clusters []cctypes.Cluster
	for pg := cc.NewListClustersPaginator(c.cc, &cc.ListClustersInput{}); pg.HasMorePages(); {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return f, awscommon.Classify(err, "listing ARC clusters (in %s)", p.Region)
		}
		for _, cl := range out.Clusters {
			if aws.ToString(cl.Name) == p.ClusterName {
				clusters = append(clusters, cl)
			}
		}
	}
	if len(clusters) > 1 {
		return f, plugin.FatalCode("AmbiguousCluster", "%d ARC clusters are named %s; rename or delete all but one", len(clusters), p.ClusterName)
	}
	if len(clusters) == 0 {
		return f, nil
	}
	f.cluster = &clusters[0]
	for pg := cc.NewListControlPanelsPaginator(c.cc, &cc.ListControlPanelsInput{ClusterArn: f.cluster.ClusterArn}); pg.HasMorePages(); {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return f, awscommon.Classify(err, "listing the control panels of cluster %s", p.ClusterName)
		}
		for i, cp := range out.ControlPanels {
			if aws.ToString(cp.Name) == p.ControlPanelName {
				if f.panel != nil {
					return f, plugin.FatalCode("AmbiguousControlPanel", "cluster %s has two control panels named %s", p.ClusterName, p.ControlPanelName)
				}
				f.panel = &out.ControlPanels[i]
			}
		}
	}
	if f.panel == nil {
		return f, nil
	}
	for pg := cc.NewListRoutingControlsPaginator(c.cc, &cc.ListRoutingControlsInput{ControlPanelArn: f.panel.ControlPanelArn}); pg.HasMorePages(); {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return f, awscommon.Classify(err, "listing the routing controls of control panel %s", p.ControlPanelName)
		}
		for _, rc := range out.RoutingControls {
			n := aws.ToString(rc.Name)
			if _, dup := f.controls[n]; dup {
				return f, plugin.FatalCode("AmbiguousRoutingControl", "control panel %s has two routing controls named %s", p.ControlPanelName, n)
			}
			f.controls[n] = rc
		}
	}
	for pg := cc.NewListSafetyRulesPaginator(c.cc, &cc.ListSafetyRulesInput{ControlPanelArn: f.panel.ControlPanelArn}); pg.HasMorePages(); {
		out, err := pg.NextPage(ctx)
		if err != nil {
			return f, awscommon.Classify(err, "listing the safety rules of control panel %s", p.ControlPanelName)
		}
		for _, r := range out.SafetyRules {
			if r.ASSERTION != nil && aws.ToString(r.ASSERTION.Name) == p.SafetyRuleName {
				a := *r.ASSERTION
				f.rule = &a
			}
		}
	}
	return f, nil
}

// clientToken derives a ClientToken from the step's idempotency key and what
// is created, so a retried or resumed step makes the same request.
func clientToken(key, what string) string {
	h := sha256.Sum256([]byte(key + "\x00" + what))
	return hex.EncodeToString(h[:])[:40]
}

// healthCheckReference is the CallerReference of a routing control's health check.
func healthCheckReference(rcARN string) string {
	h := sha256.Sum256([]byte(rcARN))
	return "runbook-arc-" + hex.EncodeToString(h[:])[:40]
}

// waitDeployed polls status (a Describe call) until what is DEPLOYED.
func waitDeployed(ctx context.Context, p arcSetupParams, what string, status func(ctx context.Context) (cctypes.Status, error)) error {
	return awscommon.Poll(ctx, p.PollInterval, what+" to be DEPLOYED", func(ctx context.Context) (bool, error) {
		s, err := status(ctx)
		if err != nil {
			return false, awscommon.Classify(err, "reading %s", what)
		}
		return s == cctypes.StatusDeployed, nil
	})
}

func applyARCSetup(ctx context.Context, req plugin.Request[arcSetupParams]) (arcSetupOutputs, error) {
	start := time.Now()
	p := req.Params
	c, err := arcSetupClients(ctx, p)
	if err != nil {
		return arcSetupOutputs{}, err
	}
	f, err := findARC(ctx, c, p)
	if err != nil {
		return arcSetupOutputs{}, err
	}
	out := arcSetupOutputs{RoutingControlARNs: map[string]string{}, HealthCheckIDs: map[string]string{}, Created: []string{}}
	if f.cluster == nil {
		cr, err := c.cc.CreateCluster(ctx, &cc.CreateClusterInput{ClusterName: aws.String(p.ClusterName), ClientToken: aws.String(clientToken(req.IdempotencyKey, "cluster/"+p.ClusterName))})
		if err != nil {
			return out, awscommon.Classify(err, "creating ARC cluster %s", p.ClusterName)
		}
		f.cluster = cr.Cluster
		out.Created = append(out.Created, "cluster "+p.ClusterName)
		req.Progress("cluster created", "cluster_arn", aws.ToString(cr.Cluster.ClusterArn))
	}
	out.ClusterARN = aws.ToString(f.cluster.ClusterArn)
	err = waitDeployed(ctx, p, "cluster "+p.ClusterName, func(ctx context.Context) (cctypes.Status, error) {
		d, err := c.cc.DescribeCluster(ctx, &cc.DescribeClusterInput{ClusterArn: f.cluster.ClusterArn})
		if err != nil {
			return "", err
		}
		f.cluster = d.Cluster
		return d.Cluster.Status, nil
	})
	if err != nil {
		return out, err
	}
	for _, ep := range f.cluster.ClusterEndpoints {
		out.ClusterEndpoints = append(out.ClusterEndpoints, ARCEndpoint{Region: aws.ToString(ep.Region), Endpoint: aws.ToString(ep.Endpoint)})
	}
	if f.panel == nil {
		cr, err := c.cc.CreateControlPanel(ctx, &cc.CreateControlPanelInput{ClusterArn: f.cluster.ClusterArn, ControlPanelName: aws.String(p.ControlPanelName),
			ClientToken: aws.String(clientToken(req.IdempotencyKey, "panel/"+out.ClusterARN+"/"+p.ControlPanelName))})
		if err != nil {
			return out, awscommon.Classify(err, "creating control panel %s", p.ControlPanelName)
		}
		f.panel = cr.ControlPanel
		out.Created = append(out.Created, "control panel "+p.ControlPanelName)
	}
	out.ControlPanelARN = aws.ToString(f.panel.ControlPanelArn)
	err = waitDeployed(ctx, p, "control panel "+p.ControlPanelName, func(ctx context.Context) (cctypes.Status, error) {
		d, err := c.cc.DescribeControlPanel(ctx, &cc.DescribeControlPanelInput{ControlPanelArn: f.panel.ControlPanelArn})
		if err != nil {
			return "", err
		}
		return d.ControlPanel.Status, nil
	})
	if err != nil {
		return out, err
	}
	for _, name := range p.RoutingControls {
		rc, ok := f.controls[name]
		if !ok {
			cr, err := c.cc.CreateRoutingControl(ctx, &cc.CreateRoutingControlInput{ClusterArn: f.cluster.ClusterArn, ControlPanelArn: f.panel.ControlPanelArn,
				RoutingControlName: aws.String(name), ClientToken: aws.String(clientToken(req.IdempotencyKey, "rc/"+out.ControlPanelARN+"/"+name))})
			if err != nil {
				return out, awscommon.Classify(err, "creating routing control %s", name)
			}
			rc = *cr.RoutingControl
			out.Created = append(out.Created, "routing control "+name)
		}
		arn := aws.ToString(rc.RoutingControlArn)
		out.RoutingControlARNs[name] = arn
		err = waitDeployed(ctx, p, "routing control "+name, func(ctx context.Context) (cctypes.Status, error) {
			d, err := c.cc.DescribeRoutingControl(ctx, &cc.DescribeRoutingControlInput{RoutingControlArn: aws.String(arn)})
			if err != nil {
				return "", err
			}
			return d.RoutingControl.Status, nil
		})
		if err != nil {
			return out, err
		}
	}
	var asserted []string
	for _, n := range p.RoutingControls {
		asserted = append(asserted, out.RoutingControlARNs[n])
	}
	if f.rule != nil {
		have := append([]string(nil), f.rule.AssertedControls...)
		want := append([]string(nil), asserted...)
		sort.Strings(have)
		sort.Strings(want)
		cfg := f.rule.RuleConfig
		if strings.Join(have, ",") != strings.Join(want, ",") || cfg == nil || cfg.Type != cctypes.RuleTypeAtleast || aws.ToInt32(cfg.Threshold) != int32(p.AtLeastOn) || aws.ToBool(cfg.Inverted) {
			return out, plugin.FatalCode("SafetyRuleDiffers", "safety rule %s (%s) exists with other routing controls or another configuration; delete it or choose another safety_rule_name", p.SafetyRuleName, aws.ToString(f.rule.SafetyRuleArn))
		}
	} else {
		cr, err := c.cc.CreateSafetyRule(ctx, &cc.CreateSafetyRuleInput{ClientToken: aws.String(clientToken(req.IdempotencyKey, "rule/"+out.ControlPanelARN+"/"+p.SafetyRuleName)), AssertionRule: &cctypes.NewAssertionRule{
			AssertedControls: asserted, ControlPanelArn: f.panel.ControlPanelArn, Name: aws.String(p.SafetyRuleName),
			RuleConfig:   &cctypes.RuleConfig{Type: cctypes.RuleTypeAtleast, Threshold: aws.Int32(int32(p.AtLeastOn)), Inverted: aws.Bool(false)},
			WaitPeriodMs: aws.Int32(int32(p.WaitPeriod / time.Millisecond)),
		}})
		if err != nil {
			return out, awscommon.Classify(err, "creating safety rule %s", p.SafetyRuleName)
		}
		f.rule = cr.AssertionRule
		out.Created = append(out.Created, "safety rule "+p.SafetyRuleName)
	}
	out.SafetyRuleARN = aws.ToString(f.rule.SafetyRuleArn)
	err = waitDeployed(ctx, p, "safety rule "+p.SafetyRuleName, func(ctx context.Context) (cctypes.Status, error) {
		d, err := c.cc.DescribeSafetyRule(ctx, &cc.DescribeSafetyRuleInput{SafetyRuleArn: f.rule.SafetyRuleArn})
		if err != nil {
			return "", err
		}
		if d.AssertionRule == nil {
			return "", plugin.FatalCode("SafetyRuleDiffers", "safety rule %s is not an assertion rule", p.SafetyRuleName)
		}
		return d.AssertionRule.Status, nil
	})
	if err != nil {
		return out, err
	}
	if p.HealthChecks {
		for _, name := range p.RoutingControls {
			arn := out.RoutingControlARNs[name]
			hc, err := c.r53.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String(healthCheckReference(arn)),
				HealthCheckConfig: &r53types.HealthCheckConfig{Type: r53types.HealthCheckTypeRecoveryControl, RoutingControlArn: aws.String(arn)}})
			if err != nil {
				return out, awscommon.Classify(err, "creating the Route 53 health check of routing control %s", name)
			}
			out.HealthCheckIDs[name] = aws.ToString(hc.HealthCheck.Id)
		}
	}
	req.Progress("ARC routing control set up", "cluster_arn", out.ClusterARN, "created", strings.Join(out.Created, ", "))
	out.Duration = time.Since(start)
	return out, nil
}

func planARCSetup(ctx context.Context, req plugin.PlanRequest[arcSetupParams]) (plugin.Plan, error) {
	p := req.Params
	for _, path := range []string{"/cluster_name", "/control_panel_name", "/routing_controls", "/region", "/endpoint_url", "/profile"} {
		if req.Unknown(path) {
			return plugin.Plan{Summary: "set up ARC routing control (names known at run time)", Changes: []plugin.Change{{Resource: "ARC routing control", AfterUnknown: true, Kind: plugin.ChangeCreate}}}, nil
		}
	}
	c, err := arcSetupClients(ctx, p)
	if err != nil {
		return plugin.Plan{}, err
	}
	f, err := findARC(ctx, c, p)
	if err != nil {
		return plugin.Plan{}, err
	}
	var changes []plugin.Change
	add := func(resource string, exists bool) {
		k := plugin.ChangeCreate
		if exists {
			k = plugin.ChangeNoop
		}
		changes = append(changes, plugin.Change{Resource: resource, Kind: k, After: "DEPLOYED"})
	}
	add("ARC cluster "+p.ClusterName, f.cluster != nil)
	add("control panel "+p.ControlPanelName, f.panel != nil)
	for _, n := range p.RoutingControls {
		_, ok := f.controls[n]
		add("routing control "+n, ok)
	}
	add("safety rule "+p.SafetyRuleName+fmt.Sprintf(" (at least %d On)", p.AtLeastOn), f.rule != nil)
	if p.HealthChecks {
		refs := map[string]bool{}
		for pg := route53.NewListHealthChecksPaginator(c.r53, &route53.ListHealthChecksInput{}); pg.HasMorePages(); {
			out, err := pg.NextPage(ctx)
			if err != nil {
				return plugin.Plan{}, awscommon.Classify(err, "listing Route 53 health checks")
			}
			for _, hc := range out.HealthChecks {
				refs[aws.ToString(hc.CallerReference)] = true
			}
		}
		for _, n := range p.RoutingControls {
			rc, ok := f.controls[n]
			exists := ok && refs[healthCheckReference(aws.ToString(rc.RoutingControlArn))]
			add("Route 53 health check of routing control "+n, exists)
		}
	}
	return plugin.Plan{Summary: "ARC routing control (control-plane work: run in peacetime)", Changes: changes}, nil
}
