// Package actions holds the actions of runbook-plugin-aws: Aurora Global
// status (with a pre-flight verdict), switchover and failover, the old
// writer's health, ECS service counts, status and fencing, auto-scaling group
// instance replacement, the IoT Core endpoint, S3 replication checks and
// batch replication, CloudFront origin changes, and Route 53 ARC routing
// controls (their peacetime setup and their data-plane flips).
package actions

import "github.com/runbookhq/runbook/sdk/plugin"

// All returns every action of the plugin.
func All() []plugin.Action {
	return []plugin.Action{
		auroraGlobalStatus(),
		auroraGlobalSwitchover(),
		auroraGlobalFailover(),
		auroraWriterHealth(),
		ecsServices(),
		ecsFence(),
		ecsStatus(),
		ecsTargetHealth(),
		cloudfrontOrigin(),
		s3ReplicationCheck(),
		asgCycle(),
		asgStatus(),
		s3BatchReplicate(),
		s3ReplicationWait(),
		iotEndpoint(),
		arcRoutingControls(),
		arcSetup(),
	}
}
