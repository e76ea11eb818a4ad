package actions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	elbtypes "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

type ecsTargetHealthParams struct {
	awscommon.Params
	Cluster           string        `json:"cluster" required:"true" doc:"ECS cluster name or ARN."`
	Services          []string      `json:"services" required:"true" min:"1" doc:"Services whose target groups must serve (names or ARNs)."`
	MinHealthyPercent int           `json:"min_healthy_percent" default:"100" min:"1" doc:"Healthy targets each target group needs, as a percentage of its service's desired count (rounded up, at least 1)."`
	Wait              bool          `json:"wait" default:"true" doc:"Wait until every target group has them; false checks once."`
	MaxWait           time.Duration `json:"max_wait" default:"10m" doc:"How long to wait before failing, naming each target group short of healthy targets."`
	PollInterval      time.Duration `json:"poll_interval" default:"2s" doc:"How often to read target health while waiting."`
}

type targetReport struct {
	ID          string `json:"id"`
	Port        int32  `json:"port"`
	State       string `json:"state" doc:"initial, healthy, unhealthy, unused, draining, unavailable."`
	Reason      string `json:"reason"`
	Description string `json:"description"`
}

type targetGroupReport struct {
	TargetGroupARN string         `json:"target_group_arn"`
	TargetGroup    string         `json:"target_group" doc:"Its name."`
	Required       int            `json:"required" doc:"Healthy targets it needs."`
	Healthy        int            `json:"healthy"`
	States         map[string]int `json:"states" doc:"Targets by state."`
	Targets        []targetReport `json:"targets"`
	OK             bool           `json:"ok"`
}

type serviceTargetsReport struct {
	Service      string              `json:"service"`
	DesiredCount int                 `json:"desired_count"`
	RunningCount int                 `json:"running_count"`
	TargetGroups []targetGroupReport `json:"target_groups" doc:"Empty for a service behind no target group (nothing to check)."`
	OK           bool                `json:"ok"`
}

type ecsTargetHealthOutputs struct {
	Healthy  bool                   `json:"healthy" doc:"Every target group has its required healthy targets."`
	Services []serviceTargetsReport `json:"services"`
	Evidence string                 `json:"evidence" doc:"What the last read saw, one clause per target group: the evidence that ended the wait."`
	// DoneEvidence is what `runbook report` shows under "What ended each wait".
	DoneEvidence string        `json:"done_evidence" doc:"What ended the wait, read in the region: the healthy targets of each target group, and where and when they were read (for the report)."`
	Duration     time.Duration `json:"duration"`
}

// readTargets reads every target group of the services once.
func readTargets(ctx context.Context, e *ecs.Client, lb *elb.Client, p ecsTargetHealthParams) (ecsTargetHealthOutputs, error) {
	found, missing, err := describeServices(ctx, e, p.Cluster, p.Services)
	if err != nil {
		return ecsTargetHealthOutputs{}, err
	}
	if len(missing) > 0 {
		return ecsTargetHealthOutputs{}, plugin.FatalCode("ServiceNotFound", "ECS cluster %s in %s has no active service %s", p.Cluster, p.Region, strings.Join(missing, ", "))
	}
	out := ecsTargetHealthOutputs{Healthy: true, Services: []serviceTargetsReport{}}
	var evidence []string
	for _, name := range p.Services {
		s := found[name]
		sr := serviceTargetsReport{Service: name, DesiredCount: int(s.DesiredCount), RunningCount: int(s.RunningCount), TargetGroups: []targetGroupReport{}, OK: true}
		required := max(1, (int(s.DesiredCount)*p.MinHealthyPercent+99)/100)
		for _, l := range s.LoadBalancers {
			arn := aws.ToString(l.TargetGroupArn)
			if arn == "" {
				continue // a Classic Load Balancer: no target groups to read
			}
			th, err := lb.DescribeTargetHealth(ctx, &elb.DescribeTargetHealthInput{TargetGroupArn: aws.String(arn)})
			if err != nil {
				if awscommon.IsCode(err, "TargetGroupNotFound") {
					return ecsTargetHealthOutputs{}, plugin.FatalCode("TargetGroupNotFound", "target group %s of service %s (%s) does not exist", arn, name, p.Region)
				}
				return ecsTargetHealthOutputs{}, awscommon.Classify(err, "reading the target health of %s (service %s, %s)", arn, name, p.Region)
			}
			tg := targetGroupReport{TargetGroupARN: arn, TargetGroup: targetGroupName(arn), Required: required, States: map[string]int{}, Targets: []targetReport{}}
			for _, d := range th.TargetHealthDescriptions {
				tr := targetReport{}
				if d.Target != nil {
					tr.ID, tr.Port = aws.ToString(d.Target.Id), aws.ToInt32(d.Target.Port)
				}
				if h := d.TargetHealth; h != nil {
					tr.State, tr.Reason, tr.Description = string(h.State), string(h.Reason), aws.ToString(h.Description)
				}
				tg.States[tr.State]++
				tg.Targets = append(tg.Targets, tr)
			}
			tg.Healthy = tg.States[string(elbtypes.TargetHealthStateEnumHealthy)]
			tg.OK = tg.Healthy >= required
			sr.OK = sr.OK && tg.OK
			evidence = append(evidence, describeTargetGroup(name, tg))
			sr.TargetGroups = append(sr.TargetGroups, tg)
		}
		if len(sr.TargetGroups) == 0 {
			evidence = append(evidence, "service "+name+": behind no target group, nothing to check")
		}
		out.Healthy = out.Healthy && sr.OK
		out.Services = append(out.Services, sr)
	}
	out.Evidence = strings.Join(evidence, "; ")
	return out, nil
}

func targetGroupName(arn string) string {
	// arn:aws:elasticloadbalancing:region:account:targetgroup/<name>/<id>
	parts := strings.Split(arn, "/")
	if len(parts) >= 3 {
		return parts[len(parts)-2]
	}
	return arn
}

// describeTargetGroup is one clause of the evidence: "target group X of
// service Y: 1 of 2 healthy, 1 unhealthy (Target.ResponseCodeMismatch: ...)".
func describeTargetGroup(service string, tg targetGroupReport) string {
	s := fmt.Sprintf("target group %s of service %s: %d of %d healthy", tg.TargetGroup, service, tg.Healthy, tg.Required)
	var states []string
	for st := range tg.States {
		if st != string(elbtypes.TargetHealthStateEnumHealthy) {
			states = append(states, st)
		}
	}
	sort.Strings(states)
	for _, st := range states {
		reasons := map[string]bool{}
		var rs []string
		for _, t := range tg.Targets {
			if t.State != st || t.Reason == "" {
				continue
			}
			r := t.Reason
			if t.Description != "" {
				r += ": " + t.Description
			}
			if !reasons[r] {
				reasons[r] = true
				rs = append(rs, r)
			}
		}
		s += fmt.Sprintf(", %d %s", tg.States[st], st)
		if len(rs) > 0 {
			s += " (" + strings.Join(rs, "; ") + ")"
		}
	}
	if len(tg.Targets) == 0 {
		s += ", no targets registered"
	}
	return s
}

func ecsTargetHealth() plugin.Action {
	return plugin.NewAction("ecs_target_health", func(ctx context.Context, req plugin.Request[ecsTargetHealthParams]) (ecsTargetHealthOutputs, error) {
		start := time.Now()
		p := req.Params
		cfg, err := p.Conn().Config(ctx)
		if err != nil {
			return ecsTargetHealthOutputs{}, err
		}
		e, lb := ecs.NewFromConfig(cfg), elb.NewFromConfig(cfg)
		var last ecsTargetHealthOutputs
		seen := awscommon.Changes{}
		check := func(ctx context.Context) (bool, error) {
			out, err := readTargets(ctx, e, lb, p)
			if err != nil {
				return false, err
			}
			last = out
			for _, s := range out.Services {
				for _, tg := range s.TargetGroups {
					if msg := describeTargetGroup(s.Service, tg); seen.Changed(tg.TargetGroupARN, msg) {
						req.Progress(msg, "service", s.Service, "target_group", tg.TargetGroupARN, "healthy", tg.Healthy, "required", tg.Required)
					}
				}
			}
			return out.Healthy, nil
		}
		if !p.Wait {
			if _, err := check(ctx); err != nil {
				return ecsTargetHealthOutputs{}, err
			}
		} else {
			wctx, cancel := context.WithTimeout(ctx, p.MaxWait)
			err = awscommon.Poll(wctx, p.PollInterval, fmt.Sprintf("healthy targets of %s/%s", p.Region, p.Cluster), check)
			cancel()
			if err != nil && !(errors.Is(err, context.DeadlineExceeded) && ctx.Err() == nil) {
				return ecsTargetHealthOutputs{}, err
			}
		}
		last.Duration = time.Since(start)
		if !last.Healthy {
			var short []string
			for _, s := range last.Services {
				for _, tg := range s.TargetGroups {
					if !tg.OK {
						short = append(short, describeTargetGroup(s.Service, tg))
					}
				}
			}
			how := "after waiting " + p.MaxWait.String()
			if !p.Wait {
				how = "(checked once)"
			}
			return ecsTargetHealthOutputs{}, plugin.FatalCode("TargetsNotHealthy", "ECS services of %s/%s are not healthy behind their load balancer %s:\n- %s", p.Region, p.Cluster, how, strings.Join(short, "\n- "))
		}
		last.DoneEvidence = fmt.Sprintf("healthy behind the load balancer, read in %s at %s: %s", p.Region, time.Now().UTC().Format(time.RFC3339), last.Evidence)
		req.Progress("healthy behind the load balancer: "+last.Evidence, "cluster", p.Cluster)
		return last, nil
	}).
		Doc("Waits until every target group of the given ECS services (DescribeServices loadBalancers) reports enough healthy targets (DescribeTargetHealth): by default as many as the service's desired count, at least 1. A service that is stable (running = desired) may still have targets initial or unhealthy; this is the check that it serves. Fails (fatal TargetsNotHealthy) after max_wait, naming each target group short of healthy targets with its targets' states and reasons. Read-only.").
		Permissions(ecsTargetHealthPermissions...).
		ReadOnly().
		Validate(func(req plugin.ValidateRequest[ecsTargetHealthParams]) []plugin.Diagnostic {
			if !req.Unknown("/min_healthy_percent") && req.Params.MinHealthyPercent > 100 {
				return []plugin.Diagnostic{plugin.Errorf("/min_healthy_percent", "a percentage of the desired count: 1 to 100")}
			}
			return nil
		}).
		Plan(func(ctx context.Context, req plugin.PlanRequest[ecsTargetHealthParams]) (plugin.Plan, error) {
			p := req.Params
			return plugin.Plan{Summary: fmt.Sprintf("wait until the target groups of %d service(s) in %s/%s have %d%% of their desired count healthy (read-only)", len(p.Services), p.Region, p.Cluster, p.MinHealthyPercent)}, nil
		})
}
