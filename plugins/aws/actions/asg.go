package actions

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

type asgCycleParams struct {
	awscommon.Params
	AutoScalingGroup     string        `json:"auto_scaling_group" required:"true" doc:"Name of the auto-scaling group whose instances (the workers) are replaced."`
	Method               string        `json:"method" default:"auto" enum:"auto,instance_refresh,rolling" doc:"instance_refresh: StartInstanceRefresh; rolling: terminate one instance at a time and wait for its InService replacement; auto: instance refresh, or rolling where the API does not offer instance refresh."`
	MinHealthyPercentage int           `json:"min_healthy_percentage" default:"90" min:"0" doc:"Instance refresh: share of the group that must stay healthy while instances are replaced."`
	InstanceWarmup       time.Duration `json:"instance_warmup" doc:"Instance refresh: time a new instance needs before it counts as healthy; default: the group's own."`
	PollInterval         time.Duration `json:"poll_interval" default:"2s" doc:"How often to read the group while waiting."`
}

type asgCycleOutputs struct {
	OldInstanceIDs    []string      `json:"old_instance_ids" doc:"Instances in the group when the step started."`
	NewInstanceIDs    []string      `json:"new_instance_ids" doc:"Instances in the group at the end, all InService."`
	Method            string        `json:"method" doc:"instance_refresh, rolling, or none (an empty group)."`
	InstanceRefreshID string        `json:"instance_refresh_id" doc:"With method instance_refresh."`
	Duration          time.Duration `json:"duration"`
}

type asgState struct {
	Desired   int
	Instances []astypes.Instance
}

func (s asgState) ids() []string {
	var ids []string
	for _, i := range s.Instances {
		ids = append(ids, aws.ToString(i.InstanceId))
	}
	sort.Strings(ids)
	return ids
}

func (s asgState) summary() string {
	counts := map[string]int{}
	for _, i := range s.Instances {
		counts[string(i.LifecycleState)]++
	}
	var parts []string
	for k, v := range counts {
		parts = append(parts, fmt.Sprintf("%d %s", v, k))
	}
	sort.Strings(parts)
	return fmt.Sprintf("desired %d: %s", s.Desired, strings.Join(parts, ", "))
}

// replaced reports whether every instance is new and InService and the
// group is at its desired capacity.
func (s asgState) replaced(old map[string]bool) bool {
	if len(s.Instances) != s.Desired {
		return false
	}
	for _, i := range s.Instances {
		if old[aws.ToString(i.InstanceId)] || i.LifecycleState != astypes.LifecycleStateInService {
			return false
		}
	}
	return true
}

func describeASG(ctx context.Context, c *autoscaling.Client, name string) (asgState, error) {
	out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return asgState{}, awscommon.Classify(err, "describing auto-scaling group %s", name)
	}
	for _, g := range out.AutoScalingGroups {
		if aws.ToString(g.AutoScalingGroupName) == name {
			return asgState{Desired: int(aws.ToInt32(g.DesiredCapacity)), Instances: g.Instances}, nil
		}
	}
	return asgState{}, plugin.FatalCode("NoSuchAutoScalingGroup", "auto-scaling group %q not found", name)
}

// refreshUnavailable reports whether err says the API has no instance
// refresh at all (some emulators), as opposed to refusing this one.
func refreshUnavailable(err error) bool {
	if awscommon.IsCode(err, "NotImplemented", "InvalidAction", "UnknownOperationException", "UnsupportedOperation") {
		return true
	}
	var re *awshttp.ResponseError
	if errors.As(err, &re) && re.HTTPStatusCode() == 501 {
		return true
	}
	return strings.Contains(err.Error(), "has not been implemented") || strings.Contains(err.Error(), "not yet implemented")
}

func asgCycle() plugin.Action {
	return plugin.NewAction("asg_cycle", func(ctx context.Context, req plugin.Request[asgCycleParams]) (asgCycleOutputs, error) {
		start := time.Now()
		p := req.Params
		cfg, err := p.Conn().Config(ctx)
		if err != nil {
			return asgCycleOutputs{}, err
		}
		c := autoscaling.NewFromConfig(cfg)
		st, err := describeASG(ctx, c, p.AutoScalingGroup)
		if err != nil {
			return asgCycleOutputs{}, err
		}
		out := asgCycleOutputs{OldInstanceIDs: st.ids(), NewInstanceIDs: []string{}}
		if out.OldInstanceIDs == nil {
			out.OldInstanceIDs = []string{}
		}
		req.Progress("instances to replace: "+strings.Join(out.OldInstanceIDs, ", "), "group", p.AutoScalingGroup, "state", st.summary())
		if len(st.Instances) == 0 {
			out.Method, out.Duration = "none", time.Since(start)
			req.Progress("the group has no instances: nothing to replace", "group", p.AutoScalingGroup)
			return out, nil
		}
		old := map[string]bool{}
		for _, id := range out.OldInstanceIDs {
			old[id] = true
		}
		method := p.Method
		if method != "rolling" {
			id, err := startRefresh(ctx, c, p)
			switch {
			case err == nil:
				method, out.InstanceRefreshID = "instance_refresh", id
			case method == "auto" && refreshUnavailable(err):
				req.Progress("instance refresh is not available here; replacing instances one at a time", "reason", awscommon.Describe(err))
				method = "rolling"
			default:
				return asgCycleOutputs{}, err
			}
		}
		out.Method = method
		if method == "instance_refresh" {
			req.Progress("instance refresh started", "id", out.InstanceRefreshID, "min_healthy_percentage", p.MinHealthyPercentage)
			if err := waitRefresh(ctx, &req, c, out.InstanceRefreshID); err != nil {
				return asgCycleOutputs{}, err
			}
		} else {
			for _, id := range out.OldInstanceIDs {
				_, err := c.TerminateInstanceInAutoScalingGroup(ctx, &autoscaling.TerminateInstanceInAutoScalingGroupInput{
					InstanceId: aws.String(id), ShouldDecrementDesiredCapacity: aws.Bool(false),
				})
				if err != nil && !awscommon.IsCode(err, "ValidationError") {
					return asgCycleOutputs{}, awscommon.Classify(err, "terminating instance %s of %s", id, p.AutoScalingGroup)
				}
				if err != nil {
					// Already gone (scaled in, or replaced by someone else).
					req.Progress("instance already gone", "instance", id, "reason", awscommon.Describe(err))
				} else {
					req.Progress("terminating instance", "instance", id)
				}
				gone := map[string]bool{id: true}
				if err := waitGroup(ctx, &req, c, p, "instance "+id+" to be replaced", func(s asgState) bool { return s.replaced(gone) }); err != nil {
					return asgCycleOutputs{}, err
				}
			}
		}
		// Whatever the method, done means: desired capacity, all InService,
		// no old instance left.
		if err := waitGroup(ctx, &req, c, p, "every instance of "+p.AutoScalingGroup+" to be new and InService", func(s asgState) bool { return s.replaced(old) }); err != nil {
			return asgCycleOutputs{}, err
		}
		end, err := describeASG(ctx, c, p.AutoScalingGroup)
		if err != nil {
			return asgCycleOutputs{}, err
		}
		out.NewInstanceIDs, out.Duration = end.ids(), time.Since(start)
		req.Progress("all instances replaced", "group", p.AutoScalingGroup, "new", strings.Join(out.NewInstanceIDs, ", "))
		return out, nil
	}).
		Doc("Replaces every instance of an auto-scaling group (restarting the workers so they reconnect to the new broker): StartInstanceRefresh with min_healthy_percentage, or rolling terminate-and-wait one instance at a time; done when the group is at its desired capacity, every instance InService and none of the old ones left. Not idempotent: running it again replaces the instances again.").
		Plan(func(ctx context.Context, req plugin.PlanRequest[asgCycleParams]) (plugin.Plan, error) {
			p := req.Params
			if req.Unknown("/auto_scaling_group") || req.Unknown("/region") {
				return plugin.Plan{Summary: "replace the instances of an auto-scaling group known only at run time", Changes: []plugin.Change{{Resource: "auto-scaling group", Field: "instances", AfterUnknown: true, Kind: plugin.ChangeReplace}}}, nil
			}
			cfg, err := p.Conn().Config(ctx)
			if err != nil {
				return plugin.Plan{}, err
			}
			st, err := describeASG(ctx, autoscaling.NewFromConfig(cfg), p.AutoScalingGroup)
			if err != nil {
				return plugin.Plan{}, err
			}
			ch := plugin.Change{Resource: fmt.Sprintf("auto-scaling group %s/%s", p.Region, p.AutoScalingGroup), Field: "instances", Before: st.ids(), AfterUnknown: true, Kind: plugin.ChangeReplace}
			how := "by instance refresh (min healthy " + fmt.Sprint(p.MinHealthyPercentage) + "%)"
			if p.Method == "rolling" {
				how = "one at a time"
			}
			if len(st.Instances) == 0 {
				ch.Kind, ch.AfterUnknown = plugin.ChangeNoop, false
				return plugin.Plan{Summary: fmt.Sprintf("%s has no instances: nothing to replace", p.AutoScalingGroup), Changes: []plugin.Change{ch}}, nil
			}
			return plugin.Plan{Summary: fmt.Sprintf("replace the %d instance(s) of %s %s (%s)", len(st.Instances), p.AutoScalingGroup, how, st.summary()), Changes: []plugin.Change{ch}}, nil
		})
}

func startRefresh(ctx context.Context, c *autoscaling.Client, p asgCycleParams) (string, error) {
	prefs := &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(int32(p.MinHealthyPercentage)), SkipMatching: aws.Bool(false)}
	if p.InstanceWarmup > 0 {
		prefs.InstanceWarmup = aws.Int32(int32(p.InstanceWarmup / time.Second))
	}
	out, err := c.StartInstanceRefresh(ctx, &autoscaling.StartInstanceRefreshInput{
		AutoScalingGroupName: aws.String(p.AutoScalingGroup), Strategy: astypes.RefreshStrategyRolling, Preferences: prefs,
	})
	if err != nil {
		if awscommon.IsCode(err, "InstanceRefreshInProgress") {
			return "", plugin.FatalCode("InstanceRefreshInProgress", "auto-scaling group %s already has an instance refresh in progress; wait for it (or cancel it) before cycling again", p.AutoScalingGroup)
		}
		if refreshUnavailable(err) {
			return "", err
		}
		return "", awscommon.Classify(err, "starting an instance refresh of %s", p.AutoScalingGroup)
	}
	return aws.ToString(out.InstanceRefreshId), nil
}

func waitRefresh(ctx context.Context, req *plugin.Request[asgCycleParams], c *autoscaling.Client, id string) error {
	p := req.Params
	var last string
	// Called right after StartInstanceRefresh: nothing to read at once.
	return awscommon.PollAfter(ctx, p.PollInterval, "instance refresh "+id+" of "+p.AutoScalingGroup, func(ctx context.Context) (bool, error) {
		out, err := c.DescribeInstanceRefreshes(ctx, &autoscaling.DescribeInstanceRefreshesInput{AutoScalingGroupName: aws.String(p.AutoScalingGroup), InstanceRefreshIds: []string{id}})
		if err != nil {
			return false, awscommon.Classify(err, "reading instance refresh %s of %s", id, p.AutoScalingGroup)
		}
		if len(out.InstanceRefreshes) == 0 {
			return false, plugin.FatalCode("InstanceRefreshNotFound", "instance refresh %s of %s not found", id, p.AutoScalingGroup)
		}
		r := out.InstanceRefreshes[0]
		state := fmt.Sprintf("%s %d%%", r.Status, aws.ToInt32(r.PercentageComplete))
		if state != last {
			last = state
			req.Progress("instance refresh "+state, "id", id, "instances_to_update", aws.ToInt32(r.InstancesToUpdate))
		}
		switch r.Status {
		case astypes.InstanceRefreshStatusSuccessful:
			return true, nil
		case astypes.InstanceRefreshStatusFailed, astypes.InstanceRefreshStatusCancelled, astypes.InstanceRefreshStatusCancelling,
			astypes.InstanceRefreshStatusRollbackFailed, astypes.InstanceRefreshStatusRollbackSuccessful, astypes.InstanceRefreshStatusRollbackInProgress:
			return false, plugin.FatalCode("InstanceRefresh"+string(r.Status), "instance refresh %s of %s ended %s: %s", id, p.AutoScalingGroup, r.Status, aws.ToString(r.StatusReason))
		}
		return false, nil
	})
}

func waitGroup(ctx context.Context, req *plugin.Request[asgCycleParams], c *autoscaling.Client, p asgCycleParams, what string, done func(asgState) bool) error {
	var last string
	return awscommon.Poll(ctx, p.PollInterval, what, func(ctx context.Context) (bool, error) {
		st, err := describeASG(ctx, c, p.AutoScalingGroup)
		if err != nil {
			return false, err
		}
		if s := st.summary(); s != last {
			last = s
			req.Progress("group "+s, "group", p.AutoScalingGroup)
		}
		return done(st), nil
	})
}
