package actions

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ecs"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// ---- ecs_status ----

type ecsStatusParams struct {
	awscommon.Params
	Cluster  string   `json:"cluster" required:"true" doc:"ECS cluster name or ARN."`
	Services []string `json:"services" required:"true" min:"1" doc:"Service names (or ARNs) to read."`
}

type ecsServiceStatus struct {
	Service      string `json:"service"`
	DesiredCount int    `json:"desired_count"`
	RunningCount int    `json:"running_count"`
	PendingCount int    `json:"pending_count"`
	Deployments  int    `json:"deployments"`
	Stable       bool   `json:"stable" doc:"By ecs_services' rule: one deployment, running == desired, nothing pending, rollout COMPLETED where reported."`
	State        string `json:"state" doc:"One clause: running 2/2, pending 0, deployments 1, rollout completed."`
}

type ecsStatusOutputs struct {
	DesiredCounts map[string]int     `json:"desired_counts" doc:"Desired count by service, as given in services: pass it to ecs_services as desired_counts to restore this state."`
	RunningCounts map[string]int     `json:"running_counts" doc:"Running tasks by service."`
	Services      []ecsServiceStatus `json:"services" doc:"Each service, in the order given."`
	Stable        bool               `json:"stable" doc:"Every service is stable."`
	Summary       string             `json:"summary" doc:"One sentence: where, when, and each service's counts."`
	ReadAt        string             `json:"read_at" doc:"When (RFC 3339)."`
}

func ecsStatus() plugin.Action {
	return plugin.NewAction("ecs_status", func(ctx context.Context, req plugin.Request[ecsStatusParams]) (ecsStatusOutputs, error) {
		p := req.Params
		cfg, err := p.Conn().Config(ctx)
		if err != nil {
			return ecsStatusOutputs{}, err
		}
		found, missing, err := describeServices(ctx, ecs.NewFromConfig(cfg), p.Cluster, p.Services)
		if err != nil {
			return ecsStatusOutputs{}, err
		}
		if len(missing) > 0 {
			return ecsStatusOutputs{}, plugin.FatalCode("ServiceNotFound", "ECS cluster %s in %s has no active service %s", p.Cluster, p.Region, strings.Join(missing, ", "))
		}
		out := ecsStatusOutputs{DesiredCounts: map[string]int{}, RunningCounts: map[string]int{}, Services: []ecsServiceStatus{}, Stable: true,
			ReadAt: time.Now().UTC().Format(time.RFC3339)}
		var clauses []string
		for _, name := range p.Services {
			s := found[name]
			stable, state, _ := serviceStable(s)
			out.Services = append(out.Services, ecsServiceStatus{
				Service: name, DesiredCount: int(s.DesiredCount), RunningCount: int(s.RunningCount), PendingCount: int(s.PendingCount),
				Deployments: len(s.Deployments), Stable: stable, State: state,
			})
			out.DesiredCounts[name], out.RunningCounts[name] = int(s.DesiredCount), int(s.RunningCount)
			out.Stable = out.Stable && stable
			clauses = append(clauses, fmt.Sprintf("%s desired %d (%s)", name, s.DesiredCount, state))
			req.Progress("service "+name+": "+state, "service", name, "desired", s.DesiredCount, "stable", stable)
		}
		out.Summary = fmt.Sprintf("read in %s at %s: cluster %s: %s", p.Region, out.ReadAt, p.Cluster, strings.Join(clauses, "; "))
		return out, nil
	}).
		Doc("Reads ECS services: each one's desired, running and pending counts, deployments and whether it is stable (ecs_services' rule). desired_counts is the map ecs_services takes, so a runbook can read the counts at pre-flight and restore exactly them in a rollback. Fails (fatal ServiceNotFound) naming a service that does not exist or is not active. Read-only.").
		Permissions(ecsStatusPermissions...).
		ReadOnly().
		Validate(func(req plugin.ValidateRequest[ecsStatusParams]) []plugin.Diagnostic {
			if req.Unknown("/services") {
				return nil
			}
			return checkServiceList(req.Params.Services)
		})
}

// checkServiceList refuses an empty list of services and one that names a
// service twice.
func checkServiceList(services []string) []plugin.Diagnostic {
	if len(services) == 0 {
		return []plugin.Diagnostic{plugin.Errorf("/services", "name at least one service")}
	}
	seen := map[string]bool{}
	for i, s := range services {
		if seen[s] {
			return []plugin.Diagnostic{plugin.Errorf(fmt.Sprintf("/services/%d", i), "service %q is listed twice", s)}
		}
		seen[s] = true
	}
	return nil
}
