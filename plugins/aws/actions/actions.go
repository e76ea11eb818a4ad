// Package actions holds the actions of runbook-plugin-aws: Aurora Global
// status, switchover and failover, ECS service counts, auto-scaling group
// instance replacement, the IoT Core endpoint, S3 replication checks and
// batch replication, and CloudFront origin changes.
package actions

import "github.com/runbookhq/runbook/sdk/plugin"

// All returns every action of the plugin.
func All() []plugin.Action {
	return []plugin.Action{
		auroraGlobalStatus(),
		auroraGlobalSwitchover(),
		auroraGlobalFailover(),
		ecsServices(),
		cloudfrontOrigin(),
		s3ReplicationCheck(),
		asgCycle(),
		s3BatchReplicate(),
		iotEndpoint(),
	}
}
