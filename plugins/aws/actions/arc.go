package actions

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"net/url"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53recoverycluster"
	rctypes "github.com/aws/aws-sdk-go-v2/service/route53recoverycluster/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// ARCEndpoint is one regional endpoint of a Route 53 ARC cluster, as
// DescribeCluster lists it and aws.arc_setup outputs it.
type ARCEndpoint struct {
	Region   string `json:"region" required:"true" doc:"The endpoint's region; requests to it are signed for this region."`
	Endpoint string `json:"endpoint" required:"true" doc:"The endpoint's URL, e.g. https://host-xxxxxx.us-west-2.example.com/v1."`
}

type arcRoutingControlsParams struct {
	Profile          string            `json:"profile" doc:"Shared config profile to use; default: the SDK's default credential chain."`
	ClusterEndpoints []ARCEndpoint     `json:"cluster_endpoints" required:"true" doc:"The cluster's regional endpoints (aws.arc_setup's cluster_endpoints output, or DescribeCluster's ClusterEndpoints stored ahead of time): the action never calls the configuration API."`
	States           map[string]string `json:"states" required:"true" doc:"Routing control ARN -> On or Off, set in one UpdateRoutingControlStates transaction (for a failover: the DR region's control On and the primary's Off)."`
	// SafetyRulesToOverride is the break-glass list.
	SafetyRulesToOverride []string      `json:"safety_rules_to_override" doc:"ARNs of safety rules to override (break glass); default none: the update must satisfy every safety rule."`
	EndpointOrder         string        `json:"endpoint_order" default:"rotate" enum:"rotate,listed" doc:"rotate: start at a random endpoint and go round the list (AWS advises trying the endpoints in rotation, since they are cycled through maintenance); listed: in the order given."`
	EndpointTimeout       time.Duration `json:"endpoint_timeout" default:"5s" doc:"Bound on each call to one endpoint; an endpoint that does not answer within it is left for the next."`
	OnlyIfAllOff          bool          `json:"only_if_all_off" doc:"Set the states only if every listed routing control is Off now (new ones are): the initial states of a setup, which a re-run after a failover must not undo."`
}

type arcRoutingControlsOutputs struct {
	Endpoint       string            `json:"endpoint" doc:"The endpoint that answered (and made the change)."`
	EndpointRegion string            `json:"endpoint_region"`
	PreviousStates map[string]string `json:"previous_states" doc:"The states read before the change, by routing control ARN; give them as states to undo."`
	States         map[string]string `json:"states" doc:"The states read back after the change, through the same endpoint."`
	Names          map[string]string `json:"names" doc:"Routing control ARN -> name."`
	Changed        bool              `json:"changed" doc:"False when every routing control already was as requested."`
	Unanswered     []string          `json:"unanswered" doc:"Endpoints tried before the one that answered, each with its error."`
	Duration       time.Duration     `json:"duration"`
}

func arcRoutingControls() plugin.Action {
	return plugin.NewAction("arc_routing_controls", applyARCRoutingControls).
		Doc("Sets Route 53 ARC routing control states through the cluster's regional data-plane endpoints (UpdateRoutingControlStates, one transaction, evaluated against the safety rules), trying each endpoint in turn until one answers, as AWS recommends; reads the states before and after through the same endpoint. Touches no control plane: neither Route 53's nor ARC's configuration API. Idempotent; undo with states: previous_states.").
		Permissions(arcRoutingControlsPermissions...).
		Idempotent().
		Validate(validateARCRoutingControls).
		Plan(planARCRoutingControls)
}

func validateARCRoutingControls(req plugin.ValidateRequest[arcRoutingControlsParams]) []plugin.Diagnostic {
	p := req.Params
	var diags []plugin.Diagnostic
	if !req.Unknown("/cluster_endpoints") {
		if len(p.ClusterEndpoints) == 0 {
			diags = append(diags, plugin.Errorf("/cluster_endpoints", "give at least one cluster endpoint (five for a cluster, from aws.arc_setup's cluster_endpoints)"))
		}
		for i, ep := range p.ClusterEndpoints {
			if u, err := url.Parse(ep.Endpoint); err == nil && (u.Scheme == "" || u.Host == "") || err != nil {
				diags = append(diags, plugin.Errorf(fmt.Sprintf("/cluster_endpoints/%d/endpoint", i), "%q is not an absolute URL", ep.Endpoint))
			}
		}
	}
	if !req.Unknown("/states") {
		if len(p.States) == 0 {
			diags = append(diags, plugin.Errorf("/states", "give at least one routing control ARN and its state"))
		}
		for _, arn := range sortedARNs(p.States) {
			st := p.States[arn]
			path := "/states/" + pointerEscape(arn)
			if req.Unknown(path) {
				continue
			}
			if st != "On" && st != "Off" {
				diags = append(diags, plugin.Errorf(path, "state %q: want On or Off", st))
			}
			if !strings.HasPrefix(arn, "arn:") || !strings.Contains(arn, ":route53-recovery-control::") || !strings.Contains(arn, "/routingcontrol/") {
				diags = append(diags, plugin.Errorf(path, "%q is not a routing control ARN (arn:aws:route53-recovery-control::<account>:controlpanel/<id>/routingcontrol/<id>)", arn))
			}
		}
	}
	return diags
}

// pointerEscape escapes a map key for a JSON pointer (RFC 6901).
func pointerEscape(s string) string {
	return strings.ReplaceAll(strings.ReplaceAll(s, "~", "~0"), "/", "~1")
}

// arcTry is one endpoint's client.
type arcTry struct {
	ep     ARCEndpoint
	client *route53recoverycluster.Client
}

// arcOrder is the order the endpoints are tried in.
func arcOrder(ctx context.Context, p arcRoutingControlsParams) ([]arcTry, error) {
	eps := append([]ARCEndpoint(nil), p.ClusterEndpoints...)
	if p.EndpointOrder != "listed" && len(eps) > 1 {
		k := rand.IntN(len(eps))
		eps = append(eps[k:], eps[:k]...)
	}
	var out []arcTry
	for _, ep := range eps {
		cfg, err := awscommon.Conn{Region: ep.Region, Profile: p.Profile}.Config(ctx)
		if err != nil {
			return nil, err
		}
		endpoint := ep.Endpoint
		c := route53recoverycluster.NewFromConfig(cfg, func(o *route53recoverycluster.Options) {
			o.BaseEndpoint = aws.String(endpoint)
			// One attempt per endpoint: the next endpoint is the retry.
			o.RetryMaxAttempts = 1
		})
		out = append(out, arcTry{ep: ep, client: c})
	}
	return out, nil
}

// arcDefinitive reports whether an endpoint's error is the cluster's answer
// (the same through any endpoint), rather than the endpoint's failure.
func arcDefinitive(err error) bool {
	return awscommon.IsCode(err, "ValidationException", "ResourceNotFoundException", "AccessDeniedException", "ServiceLimitExceededException", "ConflictException")
}

func arcRead(ctx context.Context, t arcTry, timeout time.Duration, arns []string) (map[string]string, map[string]string, error) {
	states, names := map[string]string{}, map[string]string{}
	for _, arn := range arns {
		cctx, cancel := context.WithTimeout(ctx, timeout)
		out, err := t.client.GetRoutingControlState(cctx, &route53recoverycluster.GetRoutingControlStateInput{RoutingControlArn: aws.String(arn)})
		cancel()
		if err != nil {
			return nil, nil, err
		}
		states[arn], names[arn] = string(out.RoutingControlState), aws.ToString(out.RoutingControlName)
	}
	return states, names, nil
}

func sortedARNs(m map[string]string) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}

func sameStates(a, b map[string]string) bool {
	for k, v := range b {
		if a[k] != v {
			return false
		}
	}
	return true
}

func allOff(states map[string]string) bool {
	for _, s := range states {
		if s != "Off" {
			return false
		}
	}
	return true
}

func describeStates(states, names map[string]string) string {
	var parts []string
	for _, arn := range sortedARNs(states) {
		n := names[arn]
		if n == "" {
			n = arn
		}
		parts = append(parts, n+"="+states[arn])
	}
	return strings.Join(parts, ", ")
}

// endpointError names an endpoint's failure for the outputs and messages.
func endpointError(t arcTry, err error) string {
	var msg string
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		msg = "no answer in time"
	default:
		msg = awscommon.Describe(err)
	}
	return t.ep.Region + " (" + t.ep.Endpoint + "): " + msg
}

func applyARCRoutingControls(ctx context.Context, req plugin.Request[arcRoutingControlsParams]) (arcRoutingControlsOutputs, error) {
	start := time.Now()
	p := req.Params
	want := p.States
	arns := sortedARNs(want)
	tries, err := arcOrder(ctx, p)
	if err != nil {
		return arcRoutingControlsOutputs{}, err
	}
	out := arcRoutingControlsOutputs{}
	for _, t := range tries {
		if ctx.Err() != nil {
			return out, ctx.Err()
		}
		cur, names, err := arcRead(ctx, t, p.EndpointTimeout, arns)
		if err != nil {
			if arcDefinitive(err) {
				return out, awscommon.Classify(err, "reading routing control states through the %s endpoint", t.ep.Region)
			}
			out.Unanswered = append(out.Unanswered, endpointError(t, err))
			req.Progress("endpoint did not answer, trying the next", "endpoint_region", t.ep.Region, "error", endpointError(t, err))
			continue
		}
		if out.PreviousStates == nil {
			// Journaled before anything changes.
			out.PreviousStates, out.Names = cur, names
			req.Progress("current states: "+describeStates(cur, names), "endpoint_region", t.ep.Region)
		}
		if p.OnlyIfAllOff && !allOff(cur) {
			req.Progress("a routing control is already On: states left as they are (only_if_all_off)", "endpoint_region", t.ep.Region)
			out.Endpoint, out.EndpointRegion, out.States, out.Duration = t.ep.Endpoint, t.ep.Region, cur, time.Since(start)
			return out, nil
		}
		if !sameStates(cur, want) {
			var entries []rctypes.UpdateRoutingControlStateEntry
			for _, arn := range arns {
				entries = append(entries, rctypes.UpdateRoutingControlStateEntry{RoutingControlArn: aws.String(arn), RoutingControlState: rctypes.RoutingControlState(want[arn])})
			}
			cctx, cancel := context.WithTimeout(ctx, p.EndpointTimeout)
			_, err = t.client.UpdateRoutingControlStates(cctx, &route53recoverycluster.UpdateRoutingControlStatesInput{
				UpdateRoutingControlStateEntries: entries, SafetyRulesToOverride: p.SafetyRulesToOverride,
			})
			cancel()
			if err != nil {
				if awscommon.IsCode(err, "ConflictException") {
					// A safety rule's wait period after the last change: worth the step's retry.
					return out, plugin.RetryableCode("ConflictException", "setting %s through the %s endpoint: %s", describeStates(want, names), t.ep.Region, awscommon.Describe(err))
				}
				if arcDefinitive(err) {
					code := awscommon.ErrorCode(err)
					if strings.Contains(err.Error(), "/safetyrule/") {
						code = "SafetyRuleViolation"
					}
					return out, plugin.FatalCode(code, "setting %s through the %s endpoint: %s (a safety rule can be overridden with safety_rules_to_override)", describeStates(want, names), t.ep.Region, awscommon.Describe(err))
				}
				// The update may or may not have been applied: the next endpoint reads first.
				out.Unanswered = append(out.Unanswered, endpointError(t, err))
				req.Progress("update through an endpoint failed, trying the next", "endpoint_region", t.ep.Region, "error", endpointError(t, err))
				continue
			}
			out.Changed = true
			req.Progress("states updated: "+describeStates(want, names), "endpoint_region", t.ep.Region)
		}
		after, _, err := arcRead(ctx, t, p.EndpointTimeout, arns)
		if err != nil {
			out.Unanswered = append(out.Unanswered, endpointError(t, err))
			continue
		}
		if !sameStates(after, want) {
			return out, plugin.RetryableCode("StatesNotApplied", "read back through the %s endpoint: %s, want %s", t.ep.Region, describeStates(after, names), describeStates(want, names))
		}
		out.Changed = out.Changed || !sameStates(out.PreviousStates, want)
		out.Endpoint, out.EndpointRegion, out.States, out.Duration = t.ep.Endpoint, t.ep.Region, after, time.Since(start)
		return out, nil
	}
	return out, plugin.RetryableCode("NoEndpointAnswered", "no endpoint of the cluster answered: %s", strings.Join(out.Unanswered, "; "))
}

func planARCRoutingControls(ctx context.Context, req plugin.PlanRequest[arcRoutingControlsParams]) (plugin.Plan, error) {
	p := req.Params
	summary := "set routing control states through the cluster's regional endpoints (data plane; no control plane involved)"
	if req.Unknown("/cluster_endpoints") || req.Unknown("/states") {
		return plugin.Plan{Summary: summary, Changes: []plugin.Change{{Resource: "routing controls", AfterUnknown: true, Kind: plugin.ChangeUpdate}}}, nil
	}
	tries, err := arcOrder(ctx, p)
	if err != nil {
		return plugin.Plan{}, err
	}
	arns := sortedARNs(p.States)
	var cur, names map[string]string
	var unanswered []string
	for _, t := range tries {
		cur, names, err = arcRead(ctx, t, p.EndpointTimeout, arns)
		if err == nil {
			summary += "; read through the " + t.ep.Region + " endpoint"
			break
		}
		if arcDefinitive(err) {
			return plugin.Plan{}, awscommon.Classify(err, "reading routing control states through the %s endpoint", t.ep.Region)
		}
		unanswered = append(unanswered, endpointError(t, err))
	}
	plan := plugin.Plan{Summary: summary}
	if cur == nil {
		plan.Diagnostics = append(plan.Diagnostics, plugin.Diagnostic{Severity: plugin.SeverityWarning, Path: "/cluster_endpoints",
			Summary: "no endpoint answered, current states unknown: " + strings.Join(unanswered, "; ")})
	}
	for _, arn := range arns {
		name := arn
		if names[arn] != "" {
			name = names[arn] + " (" + arn + ")"
		}
		ch := plugin.Change{Resource: "routing control " + name, Field: "state", After: p.States[arn], Kind: plugin.ChangeUpdate}
		if cur != nil {
			ch.Before = cur[arn]
			if cur[arn] == p.States[arn] || (p.OnlyIfAllOff && !allOff(cur)) {
				ch.Kind, ch.After = plugin.ChangeNoop, cur[arn]
			}
		}
		plan.Changes = append(plan.Changes, ch)
	}
	return plan, nil
}
