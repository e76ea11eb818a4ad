package actions

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	ecstypes "github.com/aws/aws-sdk-go-v2/service/ecs/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

type ecsServiceCount struct {
	Name         string `json:"name" required:"true" doc:"Service name (or ARN)."`
	DesiredCount int    `json:"desired_count" required:"true" min:"0" doc:"Desired task count."`
}

type requireWriter struct {
	GlobalCluster string `json:"global_cluster" required:"true" doc:"Aurora global cluster whose writer must be in this step's region before any count above 0 is set."`
}

type ecsServicesParams struct {
	awscommon.Params
	Cluster       string            `json:"cluster" required:"true" doc:"ECS cluster name or ARN."`
	Services      []ecsServiceCount `json:"services" doc:"Services and their desired counts."`
	DesiredCounts map[string]int    `json:"desired_counts" doc:"Instead of services: a map of service name to desired count (e.g. a previous step's previous_counts, to roll back)."`
	WaitStable    bool              `json:"wait_stable" default:"true" doc:"Wait until every service is stable: one deployment, runningCount == desiredCount, rollout COMPLETED where reported."`
	RequireWriter *requireWriter    `json:"require_writer" doc:"Split-brain guard: refuse, changing nothing, to set any count above 0 unless the Aurora global cluster's writer is in this step's region."`
	PollInterval  time.Duration     `json:"poll_interval" default:"2s" doc:"How often to read the services while waiting."`
}

type ecsServicesOutputs struct {
	PreviousCounts map[string]int `json:"previous_counts" doc:"Desired counts before the step, by service; pass as desired_counts to undo."`
	Counts         map[string]int `json:"counts" doc:"Desired counts after the step."`
	Changed        []string       `json:"changed" doc:"Services whose desired count was changed (empty on a re-run)."`
	Stable         bool           `json:"stable" doc:"Whether the step waited for and saw every service stable."`
	Duration       time.Duration  `json:"duration"`
}

// targets returns the requested counts in a stable order: the services list
// as given, or the map by name.
func (p ecsServicesParams) targets() []ecsServiceCount {
	if len(p.Services) > 0 {
		return p.Services
	}
	var out []ecsServiceCount
	for n, c := range p.DesiredCounts {
		out = append(out, ecsServiceCount{Name: n, DesiredCount: c})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func validateECSServices(req plugin.ValidateRequest[ecsServicesParams]) []plugin.Diagnostic {
	p := req.Params
	if req.Unknown("/services") || req.Unknown("/desired_counts") {
		return nil
	}
	var diags []plugin.Diagnostic
	switch {
	case len(p.Services) > 0 && len(p.DesiredCounts) > 0:
		diags = append(diags, plugin.Errorf("/desired_counts", "give services or desired_counts, not both"))
	case len(p.Services) == 0 && len(p.DesiredCounts) == 0:
		diags = append(diags, plugin.Errorf("", "give services (a list of {name, desired_count}) or desired_counts (a map)"))
	}
	seen := map[string]bool{}
	for i, s := range p.Services {
		if seen[s.Name] {
			diags = append(diags, plugin.Errorf(fmt.Sprintf("/services/%d/name", i), "service %q is listed twice", s.Name))
		}
		seen[s.Name] = true
	}
	for n, c := range p.DesiredCounts {
		if c < 0 {
			diags = append(diags, plugin.Errorf("/desired_counts/"+n, "desired count must be 0 or more"))
		}
	}
	return diags
}

// serviceName is the short name of a service given by name or ARN.
func serviceName(s string) string {
	if strings.HasPrefix(s, "arn:") {
		return awscommon.ResourceName(s)
	}
	return s
}

// describeServices reads services by name, 10 per call (the API's limit).
// Missing or inactive services are reported by the name the step used.
func describeServices(ctx context.Context, client *ecs.Client, cluster string, names []string) (map[string]ecstypes.Service, []string, error) {
	found := map[string]ecstypes.Service{}
	var missing []string
	for i := 0; i < len(names); i += 10 {
		batch := names[i:min(i+10, len(names))]
		out, err := client.DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(cluster), Services: batch})
		if err != nil {
			if awscommon.IsCode(err, "ClusterNotFoundException") {
				return nil, nil, plugin.FatalCode("ClusterNotFound", "ECS cluster %q not found", cluster)
			}
			return nil, nil, awscommon.Classify(err, "describing services of ECS cluster %s", cluster)
		}
		byName := map[string]ecstypes.Service{}
		for _, s := range out.Services {
			byName[aws.ToString(s.ServiceName)] = s
		}
		for _, n := range batch {
			s, ok := byName[serviceName(n)]
			if !ok || aws.ToString(s.Status) != "ACTIVE" {
				missing = append(missing, n)
				continue
			}
			found[n] = s
		}
	}
	return found, missing, nil
}

// checkWriterHere is the split-brain guard: nil when the global cluster's
// writer is in conn's region and writable there, by the rule the switchover and
// failover waits end on (the writer member is this region's cluster, available,
// with an available writer instance). An operation under way is refused unless
// it is the failover (or switchover) that promoted this very cluster: after a
// failover the global cluster stays failing-over for as long as the old
// primary's region is down, and the services must start all the same.
func checkWriterHere(ctx context.Context, conn awscommon.Conn, id string) error {
	g, err := describeGlobalCluster(ctx, conn, id)
	if err != nil {
		return err
	}
	w, ok := g.writer()
	if !ok {
		return plugin.FatalCode("SplitBrainGuard", "refusing to start services in %s: global cluster %s has no writer (members: %s)", conn.Region, id, g.describeMembers())
	}
	if w.Region != conn.Region {
		return plugin.FatalCode("SplitBrainGuard", "refusing to start services in %s: the writer of global cluster %s is %s, in %s; services must only run next to the writer", conn.Region, id, w.ARN, w.Region)
	}
	if g.busy() && (g.Operation == nil || aws.ToString(g.Operation.ToDbClusterArn) != w.ARN) {
		return plugin.FatalCode("SplitBrainGuard", "refusing to start services in %s: global cluster %s is busy (%s); start them once its writer is in %s", conn.Region, id, g.describeOperation(), conn.Region)
	}
	d, err := readCluster(ctx, conn, w.ID)
	if err != nil {
		return err
	}
	if !d.writable() {
		return plugin.RetryableCode("SplitBrainGuard", "refusing to start services in %s yet: the writer %s is not writable (%s)", conn.Region, w.ID, d.describe())
	}
	return nil
}

// serviceStable is the stability rule: one deployment, running ==
// desired, the rollout COMPLETED where reported. It also returns a short
// state for progress and a failure when the rollout failed.
func serviceStable(s ecstypes.Service) (stable bool, state string, failed error) {
	rollout := ""
	if len(s.Deployments) > 0 {
		for _, d := range s.Deployments {
			if aws.ToString(d.Status) == "PRIMARY" {
				rollout = string(d.RolloutState)
				if d.RolloutState == ecstypes.DeploymentRolloutStateFailed {
					failed = fmt.Errorf("service %s: deployment %s failed: %s", aws.ToString(s.ServiceName), aws.ToString(d.Id), aws.ToString(d.RolloutStateReason))
				}
			}
		}
	}
	state = fmt.Sprintf("running %d/%d, pending %d, deployments %d", s.RunningCount, s.DesiredCount, s.PendingCount, len(s.Deployments))
	if rollout != "" {
		state += ", rollout " + strings.ToLower(rollout)
	}
	stable = len(s.Deployments) <= 1 && s.RunningCount == s.DesiredCount && s.PendingCount == 0 &&
		(rollout == "" || rollout == string(ecstypes.DeploymentRolloutStateCompleted))
	return stable, state, failed
}

func ecsServices() plugin.Action {
	return plugin.NewAction("ecs_services", func(ctx context.Context, req plugin.Request[ecsServicesParams]) (ecsServicesOutputs, error) {
		start := time.Now()
		p := req.Params
		targets := p.targets()
		cfg, err := p.Conn().Config(ctx)
		if err != nil {
			return ecsServicesOutputs{}, err
		}
		client := ecs.NewFromConfig(cfg)
		names := make([]string, len(targets))
		for i, t := range targets {
			names[i] = t.Name
		}
		current, missing, err := describeServices(ctx, client, p.Cluster, names)
		if err != nil {
			return ecsServicesOutputs{}, err
		}
		if len(missing) > 0 {
			return ecsServicesOutputs{}, plugin.FatalCode("ServiceNotFound", "ECS cluster %s in %s has no active service %s; nothing was changed", p.Cluster, p.Region, strings.Join(missing, ", "))
		}
		starting := false
		for _, t := range targets {
			starting = starting || t.DesiredCount > 0
		}
		if starting && p.RequireWriter != nil {
			if err := checkWriterHere(ctx, p.Conn(), p.RequireWriter.GlobalCluster); err != nil {
				return ecsServicesOutputs{}, err
			}
			req.Progress("split-brain guard passed: the database writer is in this region", "global_cluster", p.RequireWriter.GlobalCluster, "region", p.Region)
		}
		out := ecsServicesOutputs{PreviousCounts: map[string]int{}, Counts: map[string]int{}, Changed: []string{}}
		for _, t := range targets {
			out.PreviousCounts[t.Name] = int(current[t.Name].DesiredCount)
		}
		for _, t := range targets {
			prev := int(current[t.Name].DesiredCount)
			if prev != t.DesiredCount {
				_, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{
					Cluster: aws.String(p.Cluster), Service: aws.String(t.Name), DesiredCount: aws.Int32(int32(t.DesiredCount)),
				})
				if err != nil {
					return ecsServicesOutputs{}, awscommon.Classify(err, "setting the desired count of service %s in %s/%s to %d (changed so far: %v)", t.Name, p.Region, p.Cluster, t.DesiredCount, out.Changed)
				}
				out.Changed = append(out.Changed, t.Name)
				req.Progress("desired count set", "service", t.Name, "from", prev, "to", t.DesiredCount)
			}
			out.Counts[t.Name] = t.DesiredCount
		}
		if len(out.Changed) == 0 {
			req.Progress("desired counts already as requested", "cluster", p.Cluster)
		}
		if !p.WaitStable {
			out.Duration = time.Since(start)
			return out, nil
		}
		seen := awscommon.Changes{}
		// Services whose count was just changed are deploying: the first
		// read waits one interval. Unchanged ones may already be stable.
		poll := awscommon.Poll
		if len(out.Changed) > 0 {
			poll = awscommon.PollAfter
		}
		err = poll(ctx, p.PollInterval, fmt.Sprintf("services of %s/%s to be stable", p.Region, p.Cluster), func(ctx context.Context) (bool, error) {
			now, missing, err := describeServices(ctx, client, p.Cluster, names)
			if err != nil {
				return false, err
			}
			if len(missing) > 0 {
				return false, plugin.FatalCode("ServiceNotFound", "service %s disappeared from ECS cluster %s while waiting", strings.Join(missing, ", "), p.Cluster)
			}
			all := true
			for _, n := range names {
				stable, state, failed := serviceStable(now[n])
				if failed != nil {
					return false, plugin.FatalCode("DeploymentFailed", "%v", failed)
				}
				if seen.Changed(n, state) {
					req.Progress("service "+n+": "+state, "service", n, "stable", stable)
				}
				all = all && stable
			}
			return all, nil
		})
		if err != nil {
			return ecsServicesOutputs{}, err
		}
		req.Progress("all services stable", "cluster", p.Cluster, "services", len(names))
		out.Stable, out.Duration = true, time.Since(start)
		return out, nil
	}).
		Doc("Sets the desired count of ECS services (start: the counts the installation runs with; stop: 0) and waits until each is stable: one deployment, runningCount == desiredCount, rollout COMPLETED where reported. Outputs the previous counts, so a rollback passes them back as desired_counts. With require_writer, refuses (changing nothing) to set any count above 0 unless the Aurora global cluster's writer is in this region. Idempotent: counts already as requested are left alone.").
		Permissions(ecsServicesPermissions...).
		Idempotent().
		Validate(validateECSServices).
		Plan(func(ctx context.Context, req plugin.PlanRequest[ecsServicesParams]) (plugin.Plan, error) {
			p := req.Params
			if req.Unknown("/services") || req.Unknown("/desired_counts") || req.Unknown("/cluster") || req.Unknown("/region") {
				return plugin.Plan{Summary: "set ECS desired counts known only at run time", Changes: []plugin.Change{{Resource: "ecs services of " + p.Cluster, Field: "desired_count", AfterUnknown: true}}}, nil
			}
			cfg, err := p.Conn().Config(ctx)
			if err != nil {
				return plugin.Plan{}, err
			}
			targets := p.targets()
			names := make([]string, len(targets))
			for i, t := range targets {
				names[i] = t.Name
			}
			current, missing, err := describeServices(ctx, ecs.NewFromConfig(cfg), p.Cluster, names)
			if err != nil {
				return plugin.Plan{}, err
			}
			plan := plugin.Plan{}
			changed, starting := 0, false
			for _, t := range targets {
				ch := plugin.Change{Resource: fmt.Sprintf("ecs service %s/%s/%s", p.Region, p.Cluster, t.Name), Field: "desired_count", After: t.DesiredCount, Kind: plugin.ChangeUpdate}
				starting = starting || t.DesiredCount > 0
				if s, ok := current[t.Name]; ok {
					ch.Before = int(s.DesiredCount)
					if int(s.DesiredCount) == t.DesiredCount {
						ch.Kind = plugin.ChangeNoop
					} else {
						changed++
					}
				}
				plan.Changes = append(plan.Changes, ch)
			}
			if len(missing) > 0 {
				plan.Diagnostics = append(plan.Diagnostics, plugin.Errorf("", "ECS cluster %s has no active service %s", p.Cluster, strings.Join(missing, ", ")))
			}
			if starting && p.RequireWriter != nil && !req.Unknown("/require_writer/global_cluster") {
				if err := checkWriterHere(ctx, p.Conn(), p.RequireWriter.GlobalCluster); err != nil {
					// Before the database step of the same run has promoted
					// the writer, this is expected: a warning, not an error.
					// Named as planPromote names the resource, so that the plan
					// shows it as a condition of the step that moves the writer.
					plan.Diagnostics = append(plan.Diagnostics, plugin.Diagnostic{Severity: plugin.SeverityWarning,
						Summary: fmt.Sprintf("split-brain guard (aurora global cluster %s): %s (as of now)", p.RequireWriter.GlobalCluster, err.Error())})
				}
			}
			plan.Summary = fmt.Sprintf("set desired counts of %d service(s) in %s/%s (%d change(s))", len(targets), p.Region, p.Cluster, changed)
			if p.WaitStable {
				plan.Summary += ", then wait until stable"
			}
			return plan, nil
		})
}
