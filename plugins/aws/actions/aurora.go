package actions

import (
	"context"
	"fmt"
	"sort"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// globalMember is one cluster of an Aurora global database.
type globalMember struct {
	ARN             string
	ID              string
	Region          string
	IsWriter        bool
	Synchronization string
}

// globalCluster is an Aurora global database as DescribeGlobalClusters
// shows it.
type globalCluster struct {
	ID            string
	ARN           string
	Status        string
	Engine        string
	EngineVersion string
	Members       []globalMember
	// Operation is the switchover or failover in progress, if any.
	Operation *rdstypes.FailoverState
}

func (g globalCluster) writer() (globalMember, bool) {
	for _, m := range g.Members {
		if m.IsWriter {
			return m, true
		}
	}
	return globalMember{}, false
}

func (g globalCluster) member(arn string) (globalMember, bool) {
	for _, m := range g.Members {
		if m.ARN == arn {
			return m, true
		}
	}
	return globalMember{}, false
}

func (g globalCluster) memberInRegion(region string) (globalMember, bool) {
	for _, m := range g.Members {
		if m.Region == region {
			return m, true
		}
	}
	return globalMember{}, false
}

func (g globalCluster) describeMembers() string {
	var parts []string
	for _, m := range g.Members {
		role := "reader"
		if m.IsWriter {
			role = "writer"
		}
		parts = append(parts, fmt.Sprintf("%s (%s, %s)", m.ARN, m.Region, role))
	}
	if len(parts) == 0 {
		return "no members"
	}
	return strings.Join(parts, ", ")
}

// busy reports whether a switchover or failover is under way.
func (g globalCluster) busy() bool {
	if g.Operation != nil && g.Operation.Status != "" {
		return true
	}
	return g.Status == "switching-over" || g.Status == "failing-over"
}

// operationKind names the operation under way: a failover allows data
// loss, a switchover does not.
func operationKind(op *rdstypes.FailoverState) string {
	if op != nil && aws.ToBool(op.IsDataLossAllowed) {
		return "failover"
	}
	return "switchover"
}

func (g globalCluster) describeOperation() string {
	if g.Operation == nil || g.Operation.Status == "" {
		return fmt.Sprintf("status %s", g.Status)
	}
	return fmt.Sprintf("%s (global status %s)", g.operationText(), g.Status)
}

// operationText is the operation under way: "failover failing-over from A to B".
func (g globalCluster) operationText() string {
	if g.Operation == nil || g.Operation.Status == "" {
		return ""
	}
	return fmt.Sprintf("%s %s from %s to %s", operationKind(g.Operation), g.Operation.Status,
		aws.ToString(g.Operation.FromDbClusterArn), aws.ToString(g.Operation.ToDbClusterArn))
}

// describeGlobalCluster reads a global cluster through region's endpoint.
func describeGlobalCluster(ctx context.Context, conn awscommon.Conn, id string) (globalCluster, error) {
	cfg, err := conn.Config(ctx)
	if err != nil {
		return globalCluster{}, err
	}
	client := rds.NewFromConfig(cfg)
	out, err := client.DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String(id)})
	if err != nil {
		if awscommon.IsCode(err, "GlobalClusterNotFoundFault") {
			return globalCluster{}, plugin.FatalCode("GlobalClusterNotFound", "global cluster %q not found (looked up in %s)", id, conn.Region)
		}
		return globalCluster{}, awscommon.Classify(err, "describing global cluster %s in %s", id, conn.Region)
	}
	for _, gc := range out.GlobalClusters {
		// Some implementations ignore the identifier filter; match it here.
		if !strings.EqualFold(aws.ToString(gc.GlobalClusterIdentifier), id) {
			continue
		}
		g := globalCluster{ID: aws.ToString(gc.GlobalClusterIdentifier), ARN: aws.ToString(gc.GlobalClusterArn), Status: aws.ToString(gc.Status),
			Engine: aws.ToString(gc.Engine), EngineVersion: aws.ToString(gc.EngineVersion)}
		if gc.FailoverState != nil && gc.FailoverState.Status != "" {
			g.Operation = gc.FailoverState
		}
		for _, m := range gc.GlobalClusterMembers {
			arn := aws.ToString(m.DBClusterArn)
			region, err := awscommon.RegionOfARN(arn)
			if err != nil {
				return globalCluster{}, fmt.Errorf("global cluster %s: member %w", id, err)
			}
			g.Members = append(g.Members, globalMember{
				ARN: arn, ID: awscommon.ResourceName(arn), Region: region,
				IsWriter: aws.ToBool(m.IsWriter), Synchronization: string(m.SynchronizationStatus),
			})
		}
		sort.Slice(g.Members, func(i, j int) bool { return g.Members[i].ARN < g.Members[j].ARN })
		return g, nil
	}
	return globalCluster{}, plugin.FatalCode("GlobalClusterNotFound", "global cluster %q not found (looked up in %s)", id, conn.Region)
}
