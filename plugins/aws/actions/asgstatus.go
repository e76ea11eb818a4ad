package actions

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

type asgStatusParams struct {
	awscommon.Params
	AutoScalingGroup string `json:"auto_scaling_group" required:"true" doc:"Name of the auto-scaling group of the workers."`
}

type asgInstance struct {
	ID                   string `json:"id"`
	LifecycleState       string `json:"lifecycle_state"`
	HealthStatus         string `json:"health_status"`
	ProtectedFromScaleIn bool   `json:"protected_from_scale_in"`
}

type asgHook struct {
	Name             string `json:"name"`
	Transition       string `json:"transition"`
	HeartbeatTimeout int    `json:"heartbeat_timeout" doc:"seconds"`
	DefaultResult    string `json:"default_result"`
}

type asgStatusOutputs struct {
	Region               string        `json:"region"`
	AutoScalingGroup     string        `json:"auto_scaling_group"`
	Desired              int           `json:"desired"`
	Min                  int           `json:"min"`
	Max                  int           `json:"max"`
	Instances            []asgInstance `json:"instances" doc:"every instance, by id"`
	InService            int           `json:"in_service"`
	ProtectedInstanceIDs []string      `json:"protected_instance_ids" doc:"instances protected from scale in"`
	StandbyInstanceIDs   []string      `json:"standby_instance_ids" doc:"instances in Standby"`
	LifecycleHooks       []asgHook     `json:"lifecycle_hooks" doc:"the group's lifecycle hooks (launching ones hold new instances in Pending:Wait)"`
	RefreshInProgress    string        `json:"refresh_in_progress" doc:"the id of an instance refresh not yet finished, or empty"`
	Problems             []string      `json:"problems" doc:"what would stop asg_cycle with its default parameters, in words"`
	Ready                bool          `json:"ready" doc:"no problems"`
}

func asgStatus() plugin.Action {
	return plugin.NewAction("asg_status", func(ctx context.Context, req plugin.Request[asgStatusParams]) (asgStatusOutputs, error) {
		p := req.Params
		cfg, err := p.Conn().Config(ctx)
		if err != nil {
			return asgStatusOutputs{}, err
		}
		c := autoscaling.NewFromConfig(cfg)
		st, err := describeASG(ctx, c, p.AutoScalingGroup)
		if err != nil {
			return asgStatusOutputs{}, err
		}
		out := asgStatusOutputs{Region: p.Region, AutoScalingGroup: p.AutoScalingGroup, Desired: st.Desired, Min: st.Min, Max: st.Max,
			Instances: []asgInstance{}, ProtectedInstanceIDs: st.idsWhere(protected), StandbyInstanceIDs: st.idsWhere(inStandby),
			LifecycleHooks: []asgHook{}, Problems: []string{}}
		for _, i := range st.Instances {
			out.Instances = append(out.Instances, asgInstance{ID: aws.ToString(i.InstanceId), LifecycleState: string(i.LifecycleState),
				HealthStatus: aws.ToString(i.HealthStatus), ProtectedFromScaleIn: aws.ToBool(i.ProtectedFromScaleIn)})
			if i.LifecycleState == astypes.LifecycleStateInService {
				out.InService++
			}
		}
		sort.Slice(out.Instances, func(a, b int) bool { return out.Instances[a].ID < out.Instances[b].ID })

		hooks, err := c.DescribeLifecycleHooks(ctx, &autoscaling.DescribeLifecycleHooksInput{AutoScalingGroupName: aws.String(p.AutoScalingGroup)})
		if err != nil {
			return asgStatusOutputs{}, awscommon.Classify(err, "reading the lifecycle hooks of %s", p.AutoScalingGroup)
		}
		for _, h := range hooks.LifecycleHooks {
			out.LifecycleHooks = append(out.LifecycleHooks, asgHook{Name: aws.ToString(h.LifecycleHookName), Transition: aws.ToString(h.LifecycleTransition),
				HeartbeatTimeout: int(aws.ToInt32(h.HeartbeatTimeout)), DefaultResult: aws.ToString(h.DefaultResult)})
		}
		refreshes, err := c.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(p.AutoScalingGroup)})
		switch {
		case err == nil:
			for _, r := range refreshes.InstanceRefreshes {
				switch r.Status {
				case astypes.InstanceRefreshStatusPending, astypes.InstanceRefreshStatusInProgress, astypes.InstanceRefreshStatusCancelling,
					astypes.InstanceRefreshStatusRollbackInProgress, astypes.InstanceRefreshStatusBaking:
					out.RefreshInProgress = aws.ToString(r.InstanceRefreshId)
				}
			}
		case refreshUnavailable(err):
			// No instance refresh here at all: asg_cycle replaces one at a time.
		default:
			return asgStatusOutputs{}, awscommon.Classify(err, "reading the instance refreshes of %s", p.AutoScalingGroup)
		}

		if n := len(out.ProtectedInstanceIDs); n > 0 {
			out.Problems = append(out.Problems, fmt.Sprintf("%d instance(s) protected from scale in: %s", n, strings.Join(out.ProtectedInstanceIDs, ", ")))
		}
		if n := len(out.StandbyInstanceIDs); n > 0 {
			out.Problems = append(out.Problems, fmt.Sprintf("%d instance(s) in Standby: %s", n, strings.Join(out.StandbyInstanceIDs, ", ")))
		}
		if out.RefreshInProgress != "" {
			out.Problems = append(out.Problems, "instance refresh "+out.RefreshInProgress+" in progress")
		}
		if len(st.Instances) == 0 {
			out.Problems = append(out.Problems, "the group has no instances (no workers run in it)")
		}
		out.Ready = len(out.Problems) == 0
		msg := fmt.Sprintf("%s (%s): %s", p.AutoScalingGroup, p.Region, st.summary())
		if !out.Ready {
			msg += "; " + strings.Join(out.Problems, "; ")
		}
		req.Progress(msg)
		return out, nil
	}).
		Doc("Reads an auto-scaling group before a worker restart: its region (as given), capacity, instances with their lifecycle state and scale-in protection, " +
			"the instances protected or in Standby (asg_cycle refuses them unless told what to do), lifecycle hooks, and an instance refresh in progress. Read-only.").
		Permissions(asgStatusPermissions...).
		ReadOnly()
}
