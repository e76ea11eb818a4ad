package actions

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// ---- ecs_fence ----

// The Aurora User Guide ("Performing managed failovers") calls the write fencing of
// a failover best effort ("writes might be momentarily accepted in the old primary
// Region, causing split-brain issues") and recommends taking the applications
// offline first. ecs_fence is that, for the services of the old primary's region:
// a bounded attempt that never fails on a region that does not answer.

type ecsFenceParams struct {
	awscommon.Params
	Cluster       string        `json:"cluster" required:"true" doc:"ECS cluster name or ARN in the region to fence."`
	Services      []string      `json:"services" required:"true" doc:"Service names (or ARNs) to set to desired count 0."`
	Within        time.Duration `json:"within" default:"60s" doc:"Bound on the whole attempt: calls that get no answer are retried until then, and whatever is not fenced by then is reported, not failed."`
	RetryInterval time.Duration `json:"retry_interval" default:"5s" doc:"Pause before trying again the services whose calls got no answer."`
}

type fenceResult struct {
	Outcome              string `json:"outcome" doc:"fenced (desired count set to 0), already_stopped (it was 0), unreachable (no answer within the bound), error (an answer refusing it, e.g. no such service)."`
	Detail               string `json:"detail"`
	PreviousDesiredCount any    `json:"previous_desired_count" doc:"Its desired count before, or \"unknown\"."`
	RunningCount         any    `json:"running_count" doc:"Tasks still running when last read (they stop after the desired count is 0), or \"unknown\"."`
}

type ecsFenceOutputs struct {
	Outcome  string                 `json:"outcome" doc:"fenced (every service fenced or already stopped), partial, unreachable (no service could be reached), failed (no service fenced, some answered with errors)."`
	Fenced   bool                   `json:"fenced" doc:"Every service's desired count is 0."`
	Services map[string]fenceResult `json:"services"`
	Summary  string                 `json:"summary" doc:"One paragraph for the approval prompt and the journal."`
	Attempts int                    `json:"attempts" doc:"Rounds of calls made."`
	Duration time.Duration          `json:"duration"`
}

// answered reports whether err is an answer (an AWS error code, or a refusal the
// action named), as opposed to no answer at all: a timeout, a refused or reset
// connection.
func answered(err error) bool {
	if awscommon.ErrorCode(err) != "" {
		return true
	}
	var pe *plugin.Error
	return errors.As(err, &pe) && pe.Code != ""
}

func ecsFence() plugin.Action {
	return plugin.NewAction("ecs_fence", func(ctx context.Context, req plugin.Request[ecsFenceParams]) (ecsFenceOutputs, error) {
		start := time.Now()
		p := req.Params
		out := ecsFenceOutputs{Services: map[string]fenceResult{}}
		for _, s := range p.Services {
			out.Services[s] = fenceResult{Outcome: "unreachable", PreviousDesiredCount: "unknown", RunningCount: "unknown"}
		}
		bctx, cancel := context.WithTimeout(ctx, p.Within)
		defer cancel()
		cfg, err := p.Conn().Config(bctx)
		if err != nil {
			return ecsFenceOutputs{}, err
		}
		client := ecs.NewFromConfig(cfg)
		pending := append([]string(nil), p.Services...)
		var lastNoAnswer error
		for len(pending) > 0 && bctx.Err() == nil {
			out.Attempts++
			var retry []string
			found, missing, err := describeServices(bctx, client, p.Cluster, pending)
			switch {
			case err != nil && answered(err):
				for _, s := range pending {
					out.Services[s] = fenceResult{Outcome: "error", Detail: err.Error(), PreviousDesiredCount: "unknown", RunningCount: "unknown"}
				}
			case err != nil:
				lastNoAnswer, retry = err, pending
			default:
				for _, s := range missing {
					out.Services[s] = fenceResult{Outcome: "error", Detail: fmt.Sprintf("no active service %s in ECS cluster %s", s, p.Cluster), PreviousDesiredCount: "unknown", RunningCount: "unknown"}
				}
				for _, s := range pending {
					svc, ok := found[s]
					if !ok {
						continue
					}
					r := fenceResult{PreviousDesiredCount: int(svc.DesiredCount), RunningCount: int(svc.RunningCount)}
					if svc.DesiredCount == 0 {
						r.Outcome, r.Detail = "already_stopped", "desired count already 0"
						out.Services[s] = r
						continue
					}
					u, err := client.UpdateService(bctx, &ecs.UpdateServiceInput{Cluster: aws.String(p.Cluster), Service: aws.String(s), DesiredCount: aws.Int32(0)})
					switch {
					case err == nil:
						r.Outcome, r.Detail = "fenced", fmt.Sprintf("desired count %d -> 0", svc.DesiredCount)
						if u.Service != nil {
							r.RunningCount = int(u.Service.RunningCount)
						}
						req.Progress("service fenced", "service", s, "from", svc.DesiredCount)
					case answered(err):
						r.Outcome, r.Detail = "error", awscommon.Describe(err)
					default:
						r.Outcome, r.Detail = "unreachable", awscommon.Describe(err)
						lastNoAnswer, retry = err, append(retry, s)
					}
					out.Services[s] = r
				}
			}
			pending = retry
			if len(pending) > 0 {
				req.Progress("no answer; trying again", "region", p.Region, "services", len(pending), "attempt", out.Attempts)
				select {
				case <-bctx.Done():
				case <-time.After(p.RetryInterval):
				}
			}
		}
		if ctx.Err() != nil {
			return ecsFenceOutputs{}, ctx.Err() // the step itself was cancelled
		}
		for _, s := range pending {
			r := out.Services[s]
			r.Outcome = "unreachable"
			r.Detail = fmt.Sprintf("%s did not answer within %s (%d attempt(s))", p.Region, p.Within, out.Attempts)
			if lastNoAnswer != nil {
				r.Detail += ": " + awscommon.Describe(lastNoAnswer)
			}
			out.Services[s] = r
		}
		out.Outcome, out.Fenced, out.Summary = summarizeFence(p, out)
		out.Duration = time.Since(start)
		req.Progress("fence: "+out.Outcome, "summary", out.Summary)
		return out, nil
	}).
		Doc("Best-effort fencing of a region's ECS services before an unplanned failover: sets each service's desired count to 0 within a bound (within, default 60s), retrying calls that get no answer, and reports per service what happened: fenced, already_stopped, unreachable (the region did not answer in time) or error. Never fails because the region does not answer or refuses: the outcome (and summary) is for the journal and the approval prompt. The Aurora User Guide calls Aurora's own write fencing best effort and advises taking applications offline before a failover.").
		Permissions(ecsFencePermissions...).
		Idempotent().
		Validate(func(req plugin.ValidateRequest[ecsFenceParams]) []plugin.Diagnostic {
			if !req.Unknown("/within") && req.Params.Within <= 0 {
				return []plugin.Diagnostic{plugin.Errorf("/within", "within must be a positive duration such as 60s")}
			}
			if req.Unknown("/services") {
				return nil
			}
			return checkServiceList(req.Params.Services)
		}).
		Plan(func(ctx context.Context, req plugin.PlanRequest[ecsFenceParams]) (plugin.Plan, error) {
			p := req.Params
			plan := plugin.Plan{Summary: fmt.Sprintf("fence: set the desired count of %d service(s) in %s/%s to 0, best effort within %s (a region that does not answer is tolerated: the outcome is recorded)", len(p.Services), p.Region, p.Cluster, p.Within)}
			for _, s := range p.Services {
				plan.Changes = append(plan.Changes, plugin.Change{Resource: fmt.Sprintf("ecs service %s/%s/%s", p.Region, p.Cluster, s), Field: "desired_count", After: 0, Kind: plugin.ChangeUpdate})
			}
			return plan, nil
		})
}

func summarizeFence(p ecsFenceParams, out ecsFenceOutputs) (outcome string, fenced bool, summary string) {
	counts := map[string]int{}
	// Services with the same outcome and detail (a whole region that did not
	// answer) are told once.
	type group struct {
		outcome, detail string
		names           []string
	}
	var groups []*group
	for _, n := range slices.Sorted(maps.Keys(out.Services)) {
		r := out.Services[n]
		counts[r.Outcome]++
		detail := r.Detail
		if r.Outcome == "fenced" {
			detail = "" // each service's "N -> 0" is in services
		}
		i := slices.IndexFunc(groups, func(g *group) bool { return g.outcome == r.Outcome && g.detail == detail })
		if i < 0 {
			groups = append(groups, &group{outcome: r.Outcome, detail: detail})
			i = len(groups) - 1
		}
		groups[i].names = append(groups[i].names, n)
	}
	var parts []string
	for _, g := range groups {
		part := strings.Join(g.names, ", ") + ": " + strings.ReplaceAll(g.outcome, "_", " ")
		if g.detail != "" {
			part += " (" + g.detail + ")"
		}
		parts = append(parts, part)
	}
	stopped := counts["fenced"] + counts["already_stopped"]
	switch {
	case stopped == len(out.Services):
		outcome, fenced = "fenced", true
	case stopped > 0:
		outcome = "partial"
	case counts["error"] > 0:
		outcome = "failed"
	default:
		outcome = "unreachable"
	}
	summary = fmt.Sprintf("Fencing %s/%s: %s. %s.", p.Region, p.Cluster, outcome, strings.Join(parts, "; "))
	return outcome, fenced, summary
}
