package plugin

import (
	"context"

	"github.com/runbookhq/runbook/sdk/spec"
)

// Permission is cloud (AWS IAM) access an action needs: see spec.Permission
// for the resource templates.
type Permission = spec.Permission

// Permissions declares what the action calls, in its description: every
// IAM action it may call, on the resources its parameters name where they
// do. `runbook permissions` builds least-privilege policies from it, and
// the simulation fails a call an action makes that it did not declare.
//
//	Permissions(
//	    plugin.Permission{Actions: []string{"rds:DescribeGlobalClusters"}},
//	    plugin.Permission{Actions: []string{"rds:SwitchoverGlobalCluster"},
//	        Resources: []string{"arn:{partition}:rds::{account}:global-cluster:${global_cluster}"}},
//	)
func (a *ActionDef[P, O]) Permissions(p ...Permission) *ActionDef[P, O] {
	a.permissions = append(a.permissions, p...)
	return a
}

type actionKey struct{}

func withAction(ctx context.Context, plugin, action string) context.Context {
	return context.WithValue(ctx, actionKey{}, plugin+"."+action)
}

// ActionName is "<plugin>.<action>" (e.g. "aws.ecs_services") of the action
// whose Apply or Plan ctx belongs to, "" outside one. A plugin's cloud
// clients put it in their requests (the AWS plugins in the User-Agent:
// "runbook-action/aws.ecs_services"), so a call can be attributed to the
// action that made it.
func ActionName(ctx context.Context) string {
	s, _ := ctx.Value(actionKey{}).(string)
	return s
}
