package actions

import "github.com/runbookhq/runbook/sdk/plugin"

// The IAM permissions of each action: every API call it may make, as the
// IAM action that authorizes it, on the resources its parameters name.
// IAM action names, resource types and ARN formats are those of the
// Service Authorization Reference ("Actions, resources, and condition keys
// for Amazon RDS / Amazon ECS / Amazon EC2 Auto Scaling / AWS IoT / Amazon
// CloudWatch / Amazon CloudFront / Amazon S3 / AWS Identity and Access
// Management"). An action whose API call has no resource type there gets
// "*". The simulation fails any call an action makes that these do not
// cover (sim/scenarios TestPermissionsCoverEveryCall).

func allow(resources []string, actions ...string) plugin.Permission {
	return plugin.Permission{Actions: actions, Resources: resources}
}

// Resource templates (spec.Permission).
var (
	arnGlobalCluster = "arn:{partition}:rds::{account}:global-cluster:${global_cluster}"
	// Members of a global cluster are in any region.
	arnAnyCluster = "arn:{partition}:rds:*:{account}:cluster:*"
	// Their DB instances, read by cluster (a filter, not an identifier).
	arnAnyDB      = "arn:{partition}:rds:*:{account}:db:*"
	arnASG        = "arn:{partition}:autoscaling:${region}:{account}:autoScalingGroup:*:autoScalingGroupName/${auto_scaling_group}"
	arnECSService = "arn:{partition}:ecs:${region}:{account}:service/${cluster}/*"
	arnDist       = "arn:{partition}:cloudfront::{account}:distribution/${distribution_id}"
	arnS3Job      = "arn:{partition}:s3:${region}:{account}:job/*"
)

// waitBuckets are the five source buckets of s3_replication_wait and,
// for its markers, the five destinations (any bucket: the destinations
// come from the rules), with suffix ("/*" for their objects).
func waitBuckets(suffix string) []string {
	var out []string
	for _, kind := range bucketKinds {
		out = append(out, "arn:{partition}:s3:::${buckets."+kind+"_bucket_arn}"+suffix)
	}
	if suffix != "" {
		out = append(out, "arn:{partition}:s3:::*"+suffix)
	}
	return out
}

// replicationCheckBuckets are the ten buckets s3_replication_check reads.
func replicationCheckBuckets() []string {
	var out []string
	for _, side := range []string{"buckets", "replica_buckets"} {
		for _, kind := range bucketKinds {
			out = append(out, "arn:{partition}:s3:::${"+side+"."+kind+"_bucket_arn}")
		}
	}
	return out
}

var (
	auroraStatusPermissions = []plugin.Permission{
		allow([]string{arnGlobalCluster}, "rds:DescribeGlobalClusters"),
		{Actions: []string{"rds:DescribeDBClusters"}, Resources: []string{arnAnyCluster}, When: "members"},
		{Actions: []string{"rds:DescribeDBInstances"}, Resources: []string{arnAnyDB}, When: "members"},
		// GetMetricStatistics has no resource type.
		{Actions: []string{"cloudwatch:GetMetricStatistics"}, When: "members"},
	}
	// SwitchoverGlobalCluster and FailoverGlobalCluster authorize on the
	// global cluster and on the member clusters (resource types
	// global-cluster and cluster). Both read the target cluster and its
	// instances before and after (headless target, done evidence).
	switchoverPermissions = []plugin.Permission{
		allow([]string{arnGlobalCluster}, "rds:DescribeGlobalClusters"),
		allow([]string{arnGlobalCluster, arnAnyCluster}, "rds:SwitchoverGlobalCluster"),
		allow([]string{arnAnyCluster}, "rds:DescribeDBClusters"),
		allow([]string{arnAnyDB}, "rds:DescribeDBInstances"),
	}
	failoverPermissions = []plugin.Permission{
		allow([]string{arnGlobalCluster}, "rds:DescribeGlobalClusters"),
		allow([]string{arnGlobalCluster, arnAnyCluster}, "rds:FailoverGlobalCluster"),
		allow([]string{arnAnyCluster}, "rds:DescribeDBClusters"),
		allow([]string{arnAnyDB}, "rds:DescribeDBInstances"),
		allow(nil, "cloudwatch:GetMetricStatistics"),
	}
	writerHealthPermissions = []plugin.Permission{
		allow([]string{arnGlobalCluster}, "rds:DescribeGlobalClusters"),
		allow([]string{arnAnyCluster}, "rds:DescribeDBClusters"),
		allow([]string{arnAnyDB}, "rds:DescribeDBInstances"),
	}
	ecsStatusPermissions = []plugin.Permission{
		allow([]string{arnECSService}, "ecs:DescribeServices"),
	}
	ecsFencePermissions = []plugin.Permission{
		allow([]string{arnECSService}, "ecs:DescribeServices", "ecs:UpdateService"),
	}
	// The split-brain guard reads the global cluster and, to accept the
	// failover that promoted this region's cluster while the old region is
	// dark, that cluster and its instances.
	ecsServicesPermissions = []plugin.Permission{
		allow([]string{arnECSService}, "ecs:DescribeServices", "ecs:UpdateService"),
		{Actions: []string{"rds:DescribeGlobalClusters"}, Resources: []string{"arn:{partition}:rds::{account}:global-cluster:${require_writer.global_cluster}"}, When: "require_writer"},
		{Actions: []string{"rds:DescribeDBClusters"}, Resources: []string{"arn:{partition}:rds:${region}:{account}:cluster:*"}, When: "require_writer"},
		{Actions: []string{"rds:DescribeDBInstances"}, Resources: []string{"arn:{partition}:rds:${region}:{account}:db:*"}, When: "require_writer"},
	}
	asgCyclePermissions = []plugin.Permission{
		// Describe* of Auto Scaling have no resource type.
		allow(nil, "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeInstanceRefreshes"),
		allow([]string{arnASG}, "autoscaling:StartInstanceRefresh", "autoscaling:TerminateInstanceInAutoScalingGroup"),
	}
	asgStatusPermissions = []plugin.Permission{
		allow(nil, "autoscaling:DescribeAutoScalingGroups", "autoscaling:DescribeInstanceRefreshes", "autoscaling:DescribeLifecycleHooks"),
	}
	iotEndpointPermissions = []plugin.Permission{
		allow(nil, "iot:DescribeEndpoint"),
	}
	s3ReplicationCheckPermissions = append([]plugin.Permission{
		// GetBucketReplication is authorized by s3:GetReplicationConfiguration.
		allow(replicationCheckBuckets(), "s3:GetBucketLocation", "s3:GetBucketVersioning", "s3:GetReplicationConfiguration"),
	}, s3ReplicationCheckExtra...)
	// S3 Batch Operations: the caller needs s3:CreateJob and iam:PassRole
	// for the job's role; the role, assumed by S3 Batch Operations, needs
	// what "Configuring an IAM role for S3 Batch Replication" (Amazon S3
	// User Guide) lists for a generated manifest that is not stored, a
	// supplied manifest and a completion report. STS GetCallerIdentity
	// (the account, when account_id is not given) needs no permission
	// (AWS STS API Reference, GetCallerIdentity).
	s3BatchReplicatePermissions = []plugin.Permission{
		allow(nil, "s3:CreateJob"),
		allow([]string{arnS3Job}, "s3:DescribeJob"),
		allow([]string{"arn:{partition}:s3:::${buckets}"}, "s3:GetReplicationConfiguration"),
		allow([]string{"${role_arn}"}, "iam:PassRole"),
		batchRole([]string{"arn:{partition}:s3:::${buckets}/*"}, "", "s3:InitiateReplication"),
		batchRole([]string{"arn:{partition}:s3:::${buckets}"}, "", "s3:GetReplicationConfiguration", "s3:PutInventoryConfiguration"),
		batchRole([]string{"${manifests.*.object_arn}"}, "manifests", "s3:GetObject", "s3:GetObjectVersion"),
		batchRole([]string{"arn:{partition}:s3:::${report_bucket}/*"}, "report_bucket", "s3:PutObject"),
	}
	// s3_replication_check also reads each bucket's default encryption
	// (GetBucketEncryption: s3:GetEncryptionConfiguration) and the role its
	// rules name (iam:GetRole).
	s3ReplicationCheckExtra = []plugin.Permission{
		allow(replicationCheckBuckets(), "s3:GetEncryptionConfiguration"),
		allow(nil, "iam:GetRole"),
	}
	// s3_replication_wait reads the rules and the replication metrics
	// (GetMetricData has no resource type), writes a marker object under the
	// marker prefix of each source bucket, looks for it (and its replica) by
	// version, and deletes both versions.
	s3ReplicationWaitPermissions = []plugin.Permission{
		allow(waitBuckets(""), "s3:GetBucketLocation", "s3:GetReplicationConfiguration"),
		allow(nil, "cloudwatch:GetMetricData"),
		allow(waitBuckets("/*"), "s3:PutObject", "s3:GetObject", "s3:GetObjectVersion", "s3:DeleteObjectVersion"),
	}
	// DescribeTargetHealth has no resource type.
	ecsTargetHealthPermissions = []plugin.Permission{
		allow([]string{arnECSService}, "ecs:DescribeServices"),
		allow(nil, "elasticloadbalancing:DescribeTargetHealth"),
	}
	// The routing controls' data plane (Service Authorization Reference,
	// "Actions, resources, and condition keys for Amazon Route 53 Recovery
	// Cluster"): states are read and updated on routing controls.
	arcRoutingControlsPermissions = []plugin.Permission{
		allow([]string{"arn:{partition}:route53-recovery-control::{account}:controlpanel/*/routingcontrol/*"},
			"route53-recovery-cluster:GetRoutingControlState", "route53-recovery-cluster:UpdateRoutingControlStates"),
	}
	// Peacetime setup through ARC's configuration API and Route 53's: the
	// resources are found by name or created, so their ARNs are not known
	// before ("*").
	arcSetupPermissions = []plugin.Permission{
		allow(nil, "route53-recovery-control-config:ListClusters", "route53-recovery-control-config:CreateCluster", "route53-recovery-control-config:DescribeCluster",
			"route53-recovery-control-config:ListControlPanels", "route53-recovery-control-config:CreateControlPanel", "route53-recovery-control-config:DescribeControlPanel",
			"route53-recovery-control-config:ListRoutingControls", "route53-recovery-control-config:CreateRoutingControl", "route53-recovery-control-config:DescribeRoutingControl",
			"route53-recovery-control-config:ListSafetyRules", "route53-recovery-control-config:CreateSafetyRule", "route53-recovery-control-config:DescribeSafetyRule"),
		{Actions: []string{"route53:ListHealthChecks", "route53:CreateHealthCheck"}, When: "health_checks"},
	}
	cloudfrontOriginPermissions = []plugin.Permission{
		allow([]string{arnDist}, "cloudfront:GetDistribution", "cloudfront:GetDistributionConfig", "cloudfront:UpdateDistribution"),
	}
)

func batchRole(resources []string, when string, actions ...string) plugin.Permission {
	return plugin.Permission{Actions: actions, Resources: resources, When: when, Role: "role_arn", AssumedBy: "batchoperations.s3.amazonaws.com"}
}
