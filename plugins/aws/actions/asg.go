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
	ProtectedInstances   string        `json:"protected_instances" default:"refuse" enum:"refuse,refresh,ignore,wait" doc:"Instances protected from scale in, found before the refresh: refuse (fail before changing anything, naming them), or the instance refresh preference ScaleInProtectedInstances: refresh (replace them too), ignore (leave them running, on the old broker), wait (AWS waits up to an hour for their protection to be removed, then fails). Rolling: refresh or ignore only."`
	StandbyInstances     string        `json:"standby_instances" default:"refuse" enum:"refuse,terminate,ignore,wait" doc:"Instances in Standby, found before the refresh: refuse (fail before changing anything, naming them), or the instance refresh preference StandbyInstances: terminate, ignore (leave them), wait (AWS waits up to an hour for them to return to service, then fails). Rolling: ignore only."`
	SkipMatching         bool          `json:"skip_matching" default:"false" doc:"Instance refresh: skip instances that already have the desired configuration. Off: every instance is replaced, which is what restarting the workers needs."`
	PollInterval         time.Duration `json:"poll_interval" default:"2s" doc:"How often to read the group while waiting."`
}

type asgCycleOutputs struct {
	Region               string            `json:"region" doc:"The region of the group."`
	OldInstanceIDs       []string          `json:"old_instance_ids" doc:"Instances in the group when the step started."`
	ReplacedInstanceIDs  []string          `json:"replaced_instance_ids" doc:"The instances the step set out to replace (all but the ignored ones)."`
	IgnoredInstanceIDs   []string          `json:"ignored_instance_ids" doc:"Protected or Standby instances left running (ignore): their workers did not restart."`
	ProtectedInstanceIDs []string          `json:"protected_instance_ids" doc:"Instances protected from scale in at the start."`
	StandbyInstanceIDs   []string          `json:"standby_instance_ids" doc:"Instances in Standby at the start."`
	NewInstanceIDs       []string          `json:"new_instance_ids" doc:"Instances in the group at the end."`
	Method               string            `json:"method" doc:"instance_refresh, rolling, or none (an empty group)."`
	InstanceRefreshID    string            `json:"instance_refresh_id" doc:"With method instance_refresh."`
	Preferences          map[string]string `json:"preferences" doc:"The instance refresh preferences sent (ScaleInProtectedInstances, StandbyInstances, SkipMatching, MinHealthyPercentage, InstanceWarmup)."`
	Duration             time.Duration     `json:"duration"`
}

type asgState struct {
	Desired   int
	Instances []astypes.Instance
	// Min, Max and Hooks are read by describeASG for the status action.
	Min, Max int
}

func (s asgState) ids() []string {
	return s.idsWhere(func(astypes.Instance) bool { return true })
}

func (s asgState) idsWhere(keep func(astypes.Instance) bool) []string {
	ids := []string{}
	for _, i := range s.Instances {
		if keep(i) {
			ids = append(ids, aws.ToString(i.InstanceId))
		}
	}
	sort.Strings(ids)
	return ids
}

// inStandby reports whether an instance is in (or entering) Standby.
func inStandby(i astypes.Instance) bool {
	return i.LifecycleState == astypes.LifecycleStateStandby || i.LifecycleState == astypes.LifecycleStateEnteringStandby
}

// protected reports whether an instance is protected from scale in (and
// not in Standby, which is its own case).
func protected(i astypes.Instance) bool {
	return aws.ToBool(i.ProtectedFromScaleIn) && !inStandby(i)
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

// replaced reports whether none of old is left, the group is at its
// desired capacity (instances in Standby do not count towards it) and
// every instance is InService but the ignored ones, which stay as they are.
func (s asgState) replaced(old, ignored map[string]bool) bool {
	n := 0
	for _, i := range s.Instances {
		id := aws.ToString(i.InstanceId)
		if old[id] {
			return false
		}
		if !inStandby(i) {
			n++
		}
		if !ignored[id] && i.LifecycleState != astypes.LifecycleStateInService {
			return false
		}
	}
	return n == s.Desired
}

func describeASG(ctx context.Context, c *autoscaling.Client, name string) (asgState, error) {
	out, err := c.DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{name}})
	if err != nil {
		return asgState{}, awscommon.Classify(err, "describing auto-scaling group %s", name)
	}
	for _, g := range out.AutoScalingGroups {
		if aws.ToString(g.AutoScalingGroupName) == name {
			return asgState{Desired: int(aws.ToInt32(g.DesiredCapacity)), Min: int(aws.ToInt32(g.MinSize)), Max: int(aws.ToInt32(g.MaxSize)), Instances: g.Instances}, nil
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

// asgSelection is what a cycle does with the group's instances, decided
// before anything changes.
type asgSelection struct {
	targets, ignored, protected, standby []string
	// refusal, when set, is why the cycle refuses to start.
	refusal string
}

// selectInstances finds the protected and Standby instances and applies
// the parameters' choices for them under method (instance_refresh or
// rolling).
func selectInstances(st asgState, p asgCycleParams, method string) asgSelection {
	sel := asgSelection{protected: st.idsWhere(protected), standby: st.idsWhere(inStandby), ignored: []string{}}
	var problems []string
	if len(sel.protected) > 0 {
		switch {
		case p.ProtectedInstances == "refuse" || p.ProtectedInstances == "":
			problems = append(problems, fmt.Sprintf("%d instance(s) protected from scale in: %s (protected_instances: refresh, ignore or wait to proceed, or remove their protection)", len(sel.protected), strings.Join(sel.protected, ", ")))
		case method == "rolling" && p.ProtectedInstances == "wait":
			problems = append(problems, fmt.Sprintf("protected_instances: wait needs an instance refresh; rolling replacement can refresh or ignore the protected instance(s) %s", strings.Join(sel.protected, ", ")))
		case p.ProtectedInstances == "ignore":
			sel.ignored = append(sel.ignored, sel.protected...)
		}
	}
	if len(sel.standby) > 0 {
		switch {
		case p.StandbyInstances == "refuse" || p.StandbyInstances == "":
			problems = append(problems, fmt.Sprintf("%d instance(s) in Standby: %s (standby_instances: terminate, ignore or wait to proceed, or return them to service)", len(sel.standby), strings.Join(sel.standby, ", ")))
		case method == "rolling" && p.StandbyInstances != "ignore":
			problems = append(problems, fmt.Sprintf("standby_instances: %s needs an instance refresh; rolling replacement can only ignore the Standby instance(s) %s", p.StandbyInstances, strings.Join(sel.standby, ", ")))
		case p.StandbyInstances == "ignore":
			sel.ignored = append(sel.ignored, sel.standby...)
		}
	}
	sort.Strings(sel.ignored)
	if len(problems) > 0 {
		sel.refusal = fmt.Sprintf("auto-scaling group %s (%s) has %s. An instance refresh with AWS's default preferences would wait an hour for them and fail; their workers would not restart",
			p.AutoScalingGroup, p.Region, strings.Join(problems, "; and "))
	}
	ignored := set(sel.ignored)
	sel.targets = st.idsWhere(func(i astypes.Instance) bool { return !ignored[aws.ToString(i.InstanceId)] })
	return sel
}

func set(ids []string) map[string]bool {
	m := map[string]bool{}
	for _, id := range ids {
		m[id] = true
	}
	return m
}

// refreshPreferences maps the parameters to StartInstanceRefresh's
// preferences (EC2 Auto Scaling API reference, RefreshPreferences). A
// "refuse" that found nothing leaves the preference unset (AWS's default,
// Wait): the group had no such instance when it was read.
func refreshPreferences(p asgCycleParams) *astypes.RefreshPreferences {
	prefs := &astypes.RefreshPreferences{MinHealthyPercentage: aws.Int32(int32(p.MinHealthyPercentage)), SkipMatching: aws.Bool(p.SkipMatching)}
	if p.InstanceWarmup > 0 {
		prefs.InstanceWarmup = aws.Int32(int32(p.InstanceWarmup / time.Second))
	}
	// "refuse" (and "") are not in the maps: AWS's default applies.
	prefs.ScaleInProtectedInstances = map[string]astypes.ScaleInProtectedInstances{
		"refresh": astypes.ScaleInProtectedInstancesRefresh, "ignore": astypes.ScaleInProtectedInstancesIgnore, "wait": astypes.ScaleInProtectedInstancesWait,
	}[p.ProtectedInstances]
	prefs.StandbyInstances = map[string]astypes.StandbyInstances{
		"terminate": astypes.StandbyInstancesTerminate, "ignore": astypes.StandbyInstancesIgnore, "wait": astypes.StandbyInstancesWait,
	}[p.StandbyInstances]
	return prefs
}

func describePreferences(prefs *astypes.RefreshPreferences) map[string]string {
	m := map[string]string{
		"MinHealthyPercentage": fmt.Sprint(aws.ToInt32(prefs.MinHealthyPercentage)),
		"SkipMatching":         fmt.Sprint(aws.ToBool(prefs.SkipMatching)),
	}
	if prefs.InstanceWarmup != nil {
		m["InstanceWarmup"] = fmt.Sprint(aws.ToInt32(prefs.InstanceWarmup))
	}
	if prefs.ScaleInProtectedInstances != "" {
		m["ScaleInProtectedInstances"] = string(prefs.ScaleInProtectedInstances)
	}
	if prefs.StandbyInstances != "" {
		m["StandbyInstances"] = string(prefs.StandbyInstances)
	}
	return m
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
		method := p.Method
		if method == "auto" {
			method = "instance_refresh"
		}
		sel := selectInstances(st, p, method)
		out := asgCycleOutputs{Region: p.Region, OldInstanceIDs: st.ids(), NewInstanceIDs: []string{}, ReplacedInstanceIDs: sel.targets,
			IgnoredInstanceIDs: sel.ignored, ProtectedInstanceIDs: sel.protected, StandbyInstanceIDs: sel.standby, Preferences: map[string]string{}}
		req.Progress("instances to replace: "+strings.Join(sel.targets, ", "), "group", p.AutoScalingGroup, "region", p.Region, "state", st.summary())
		if sel.refusal != "" {
			return asgCycleOutputs{}, plugin.FatalCode("ProtectedInstances", "%s", sel.refusal)
		}
		if len(sel.ignored) > 0 {
			req.Progress("left running (ignored): "+strings.Join(sel.ignored, ", "), "group", p.AutoScalingGroup)
		}
		if len(sel.targets) == 0 {
			out.Method, out.Duration = "none", time.Since(start)
			req.Progress("nothing to replace", "group", p.AutoScalingGroup)
			return out, nil
		}
		old, ignored := set(sel.targets), set(sel.ignored)
		if p.Method != "rolling" {
			prefs := refreshPreferences(p)
			id, err := startRefresh(ctx, c, p, prefs)
			switch {
			case err == nil:
				method, out.InstanceRefreshID, out.Preferences = "instance_refresh", id, describePreferences(prefs)
			case p.Method == "auto" && refreshUnavailable(err):
				if rs := selectInstances(st, p, "rolling"); rs.refusal != "" {
					return asgCycleOutputs{}, plugin.FatalCode("ProtectedInstances", "instance refresh is not available here, and %s", rs.refusal)
				}
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
			for _, id := range sel.targets {
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
				if err := waitGroup(ctx, &req, c, p, "instance "+id+" to be replaced", func(s asgState) bool { return s.replaced(gone, ignored) }); err != nil {
					return asgCycleOutputs{}, err
				}
			}
		}
		// Whatever the method, done means: desired capacity, all InService
		// but the ignored ones, none of the replaced ones left.
		if err := waitGroup(ctx, &req, c, p, "every instance of "+p.AutoScalingGroup+" to be new and InService", func(s asgState) bool { return s.replaced(old, ignored) }); err != nil {
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
		Doc("Replaces the instances of an auto-scaling group (restarting the workers so they reconnect to the new broker): StartInstanceRefresh with min_healthy_percentage and the protected/Standby preferences, or rolling terminate-and-wait one instance at a time. " +
			"Instances protected from scale in or in Standby are found first and refused, naming them, unless protected_instances / standby_instances choose what to do with them. " +
			"Done when the group is at its desired capacity, every instance InService and none of the replaced ones left. Not idempotent: running it again replaces the instances again.").
		Permissions(asgCyclePermissions...).
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
			method := p.Method
			if method == "auto" {
				method = "instance_refresh"
			}
			sel := selectInstances(st, p, method)
			ch := plugin.Change{Resource: fmt.Sprintf("auto-scaling group %s/%s", p.Region, p.AutoScalingGroup), Field: "instances", Before: sel.targets, AfterUnknown: true, Kind: plugin.ChangeReplace}
			how := "by instance refresh (min healthy " + fmt.Sprint(p.MinHealthyPercentage) + "%)"
			if p.Method == "rolling" {
				how = "one at a time"
			}
			plan := plugin.Plan{Changes: []plugin.Change{ch}}
			if sel.refusal != "" {
				plan.Diagnostics = []plugin.Diagnostic{plugin.Errorf("/protected_instances", "would refuse: %s", sel.refusal)}
			}
			if len(sel.targets) == 0 {
				plan.Changes[0].Kind, plan.Changes[0].AfterUnknown = plugin.ChangeNoop, false
				plan.Summary = fmt.Sprintf("%s has no instances to replace", p.AutoScalingGroup)
				return plan, nil
			}
			plan.Summary = fmt.Sprintf("replace %d instance(s) of %s in %s %s (%s)", len(sel.targets), p.AutoScalingGroup, p.Region, how, st.summary())
			if len(sel.ignored) > 0 {
				plan.Summary += "; leave running: " + strings.Join(sel.ignored, ", ")
			}
			return plan, nil
		})
}

func startRefresh(ctx context.Context, c *autoscaling.Client, p asgCycleParams, prefs *astypes.RefreshPreferences) (string, error) {
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
