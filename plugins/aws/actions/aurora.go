package actions

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/smithy-go/transport/http/protocol/awsjson"

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
	ID      string
	ARN     string
	Status  string
	Members []globalMember
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
	return fmt.Sprintf("%s %s from %s to %s (global status %s)", operationKind(g.Operation), g.Operation.Status,
		aws.ToString(g.Operation.FromDbClusterArn), aws.ToString(g.Operation.ToDbClusterArn), g.Status)
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
		g := globalCluster{ID: aws.ToString(gc.GlobalClusterIdentifier), ARN: aws.ToString(gc.GlobalClusterArn), Status: aws.ToString(gc.Status)}
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

// replicationLag is the newest AuroraGlobalDBReplicationLag datapoint of a
// secondary cluster, read from CloudWatch in the secondary's region.
type replicationLag struct {
	Known  bool
	Millis float64
	At     time.Time
	Reason string
}

// lagLookback bounds how old a lag datapoint may be to count as "the lag
// seen before the failover".
const lagLookback = 10 * time.Minute

func readReplicationLag(ctx context.Context, conn awscommon.Conn, clusterID string) replicationLag {
	cfg, err := conn.Config(ctx)
	if err != nil {
		return replicationLag{Reason: err.Error()}
	}
	// CloudWatch speaks CBOR, JSON 1.0 and query; JSON is the one every
	// implementation we run against (AWS, emulators, proxies) understands.
	client := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
	})
	end := time.Now()
	out, err := client.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace:  aws.String("AWS/RDS"),
		MetricName: aws.String("AuroraGlobalDBReplicationLag"),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("DBClusterIdentifier"), Value: aws.String(clusterID)}},
		StartTime:  aws.Time(end.Add(-lagLookback)),
		// EndTime is exclusive and compared at second precision: reach past
		// now so that a datapoint stamped this very second counts.
		EndTime:    aws.Time(end.Add(time.Minute)),
		Period:     aws.Int32(60),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum},
	})
	if err != nil {
		return replicationLag{Reason: "reading AuroraGlobalDBReplicationLag from CloudWatch in " + conn.Region + ": " + awscommon.Describe(err)}
	}
	var best *cwtypes.Datapoint
	for i := range out.Datapoints {
		d := &out.Datapoints[i]
		if d.Timestamp == nil || d.Maximum == nil {
			continue
		}
		if best == nil || d.Timestamp.After(*best.Timestamp) {
			best = d
		}
	}
	if best == nil {
		return replicationLag{Reason: fmt.Sprintf("no AuroraGlobalDBReplicationLag datapoint for %s in %s in the last %s", clusterID, conn.Region, lagLookback)}
	}
	return replicationLag{Known: true, Millis: *best.Maximum, At: best.Timestamp.UTC()}
}

// lagValue is the output form of a lag: milliseconds, or "unknown".
func (l replicationLag) value() any {
	if l.Known {
		return l.Millis
	}
	return "unknown"
}

func (l replicationLag) at() string {
	if l.Known {
		return l.At.Format(time.RFC3339)
	}
	return ""
}

// ---- aurora_global_status ----

type auroraStatusParams struct {
	awscommon.Params
	GlobalCluster string        `json:"global_cluster" required:"true" doc:"Global cluster identifier."`
	Members       bool          `json:"members" default:"true" doc:"Also read each member cluster's status and replication lag in its own region. A member region that does not answer within member_timeout is reported as unreachable, not as a failure."`
	MemberTimeout time.Duration `json:"member_timeout" default:"10s" doc:"Bound on the calls to each member's region."`
}

type auroraMemberStatus struct {
	ClusterARN           string `json:"cluster_arn"`
	ClusterID            string `json:"cluster_id"`
	Region               string `json:"region"`
	IsWriter             bool   `json:"is_writer"`
	Status               string `json:"status" doc:"The member cluster's own status (available, ...), \"unknown\" when it was not read or its region did not answer."`
	StatusError          string `json:"status_error" doc:"Why status is unknown."`
	Synchronization      string `json:"synchronization_status" doc:"connected or pending-resync, when the API reports it."`
	ReplicationLagMs     any    `json:"replication_lag_ms" doc:"Secondaries: the newest AuroraGlobalDBReplicationLag (ms) from CloudWatch, or \"unknown\"."`
	ReplicationLagReason string `json:"replication_lag_reason" doc:"Why the lag is unknown."`
	ReplicationLagAt     string `json:"replication_lag_at" doc:"Time of the lag datapoint (RFC 3339)."`
}

type auroraStatusOutputs struct {
	GlobalCluster    string               `json:"global_cluster"`
	GlobalClusterARN string               `json:"global_cluster_arn"`
	Status           string               `json:"status" doc:"Global cluster status (available, switching-over, failing-over, ...)."`
	Members          []auroraMemberStatus `json:"members"`
	WriterClusterARN string               `json:"writer_cluster_arn" doc:"Empty when no member is the writer."`
	WriterRegion     string               `json:"writer_region"`
	Operation        string               `json:"operation" doc:"The switchover or failover under way, or empty."`
	OperationTarget  string               `json:"operation_target" doc:"The cluster ARN the operation under way promotes."`
}

func auroraGlobalStatus() plugin.Action {
	return plugin.NewAction("aurora_global_status", func(ctx context.Context, req plugin.Request[auroraStatusParams]) (auroraStatusOutputs, error) {
		p := req.Params
		g, err := describeGlobalCluster(ctx, p.Conn(), p.GlobalCluster)
		if err != nil {
			return auroraStatusOutputs{}, err
		}
		out := auroraStatusOutputs{GlobalCluster: g.ID, GlobalClusterARN: g.ARN, Status: g.Status, Members: []auroraMemberStatus{}}
		if w, ok := g.writer(); ok {
			out.WriterClusterARN, out.WriterRegion = w.ARN, w.Region
		}
		if g.busy() {
			out.Operation = operationKind(g.Operation) + " " + g.Status
			if g.Operation != nil {
				out.Operation = operationKind(g.Operation) + " " + string(g.Operation.Status)
				out.OperationTarget = aws.ToString(g.Operation.ToDbClusterArn)
			}
		}
		req.Progress("global cluster read", "status", g.Status, "writer_region", out.WriterRegion)
		for _, m := range g.Members {
			ms := auroraMemberStatus{
				ClusterARN: m.ARN, ClusterID: m.ID, Region: m.Region, IsWriter: m.IsWriter,
				Status: "unknown", Synchronization: m.Synchronization, ReplicationLagMs: "unknown",
			}
			if !p.Members {
				ms.StatusError = "member status not requested"
				ms.ReplicationLagReason = "member status not requested"
			} else {
				mctx, cancel := context.WithTimeout(ctx, p.MemberTimeout)
				ms.Status, ms.StatusError = memberClusterStatus(mctx, p.Conn().WithRegion(m.Region), m.ID)
				if m.IsWriter {
					ms.ReplicationLagReason = "the writer does not replicate from another region"
				} else {
					lag := readReplicationLag(mctx, p.Conn().WithRegion(m.Region), m.ID)
					ms.ReplicationLagMs, ms.ReplicationLagReason, ms.ReplicationLagAt = lag.value(), lag.Reason, lag.at()
				}
				cancel()
				if ctx.Err() != nil {
					return auroraStatusOutputs{}, ctx.Err()
				}
				req.Progress("member read", "cluster", m.ID, "region", m.Region, "status", ms.Status)
			}
			out.Members = append(out.Members, ms)
		}
		return out, nil
	}).
		Doc("Reads an Aurora global database: its status, its members (cluster ARN, region, writer or not, own status, replication lag from CloudWatch where available), the writer's region, and any switchover or failover under way. Read-only.").
		ReadOnly().
		Plan(func(ctx context.Context, req plugin.PlanRequest[auroraStatusParams]) (plugin.Plan, error) {
			return plugin.Plan{Summary: fmt.Sprintf("read Aurora global cluster %s (read-only)", req.Params.GlobalCluster)}, nil
		})
}

func memberClusterStatus(ctx context.Context, conn awscommon.Conn, id string) (status, problem string) {
	cfg, err := conn.Config(ctx)
	if err != nil {
		return "unknown", err.Error()
	}
	out, err := rds.NewFromConfig(cfg).DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(id)})
	if err != nil {
		return "unknown", fmt.Sprintf("describing cluster %s in %s: %s", id, conn.Region, awscommon.Describe(err))
	}
	if len(out.DBClusters) == 0 {
		return "unknown", fmt.Sprintf("cluster %s not found in %s", id, conn.Region)
	}
	return aws.ToString(out.DBClusters[0].Status), ""
}

// ---- switchover and failover ----

type promoteParams struct {
	awscommon.Params
	GlobalCluster    string        `json:"global_cluster" required:"true" doc:"Global cluster identifier."`
	TargetClusterARN string        `json:"target_cluster_arn" doc:"Full ARN of the member cluster to make the writer."`
	TargetRegion     string        `json:"target_region" doc:"Instead of target_cluster_arn: the region whose member cluster becomes the writer."`
	PollInterval     time.Duration `json:"poll_interval" default:"2s" doc:"How often to read the global cluster while waiting."`
}

type promoteOutputs struct {
	WriterClusterARN         string        `json:"writer_cluster_arn" doc:"The writer at the end: the target."`
	WriterRegion             string        `json:"writer_region"`
	PreviousWriterClusterARN string        `json:"previous_writer_cluster_arn" doc:"The writer before; pass it back as target_cluster_arn to undo."`
	PreviousWriterRegion     string        `json:"previous_writer_region"`
	Switched                 bool          `json:"switched" doc:"False when the target already was the writer (nothing was done)."`
	Duration                 time.Duration `json:"duration"`
}

type failoverOutputs struct {
	promoteOutputs
	ReplicationLagMs     any    `json:"replication_lag_ms" doc:"The target's last AuroraGlobalDBReplicationLag (ms) before the failover: the writes it may have lost. \"unknown\" when CloudWatch had none."`
	ReplicationLagReason string `json:"replication_lag_reason" doc:"Why the lag is unknown."`
	ReplicationLagAt     string `json:"replication_lag_at" doc:"Time of that datapoint (RFC 3339)."`
}

func validatePromote(req plugin.ValidateRequest[promoteParams], failover bool) []plugin.Diagnostic {
	p := req.Params
	arnKnown := !req.Unknown("/target_cluster_arn")
	regionKnown := !req.Unknown("/target_region")
	var diags []plugin.Diagnostic
	if arnKnown && regionKnown && p.TargetClusterARN != "" && p.TargetRegion != "" {
		diags = append(diags, plugin.Errorf("/target_region", "give target_cluster_arn or target_region, not both"))
	}
	if !failover && arnKnown && regionKnown && p.TargetClusterARN == "" && p.TargetRegion == "" {
		diags = append(diags, plugin.Errorf("", "give target_cluster_arn (the member to promote) or target_region"))
	}
	if arnKnown && p.TargetClusterARN != "" {
		if err := checkClusterARN(p.TargetClusterARN); err != nil {
			diags = append(diags, plugin.Errorf("/target_cluster_arn", "%v", err))
		}
	}
	if failover && !req.Unknown("/region") {
		if regionKnown && p.TargetRegion != "" && p.TargetRegion != p.Region {
			diags = append(diags, plugin.Errorf("/target_region", "a failover is issued in the target region: region (%s) and target_region (%s) must be the same", p.Region, p.TargetRegion))
		}
		if arnKnown && p.TargetClusterARN != "" {
			if r, err := awscommon.RegionOfARN(p.TargetClusterARN); err == nil && r != p.Region {
				diags = append(diags, plugin.Errorf("/target_cluster_arn", "a failover is issued in the target region: region (%s) must be the target cluster's region (%s)", p.Region, r))
			}
		}
	}
	return diags
}

func checkClusterARN(s string) error {
	if _, err := awscommon.RegionOfARN(s); err != nil {
		return err
	}
	if !strings.Contains(s, ":rds:") || !strings.Contains(s, ":cluster:") {
		return fmt.Errorf("%q is not an Aurora cluster ARN (arn:aws:rds:<region>:<account>:cluster:<name>)", s)
	}
	return nil
}

// resolveTarget finds the member the step promotes.
func resolveTarget(g globalCluster, arn, region string) (globalMember, error) {
	if arn != "" {
		m, ok := g.member(arn)
		if !ok {
			return globalMember{}, plugin.FatalCode("NotAMember", "cluster %s is not a member of global cluster %s (members: %s)", arn, g.ID, g.describeMembers())
		}
		return m, nil
	}
	m, ok := g.memberInRegion(region)
	if !ok {
		return globalMember{}, plugin.FatalCode("NotAMember", "global cluster %s has no member in %s (members: %s)", g.ID, region, g.describeMembers())
	}
	return m, nil
}

// startGrace is how long a wait tolerates seeing the old writer with no
// operation under way right after the call, before concluding that the
// operation ended without promoting the target.
const startGrace = 60 * time.Second

// waitForWriter polls the global cluster through conn until it is
// available, idle, and target is the writer.
// justStarted says the caller has just issued the operation (the first read
// then waits one poll interval); a joined operation is read at once.
func waitForWriter(ctx context.Context, req *plugin.Request[promoteParams], conn awscommon.Conn, id, target, kind string, justStarted bool) error {
	seen := awscommon.Changes{}
	started := time.Now()
	sawOperation := false
	poll := awscommon.Poll
	if justStarted {
		poll = awscommon.PollAfter
	}
	return poll(ctx, req.Params.PollInterval, fmt.Sprintf("the %s of %s to %s", kind, id, target), func(ctx context.Context) (bool, error) {
		g, err := describeGlobalCluster(ctx, conn, id)
		if err != nil {
			return false, err
		}
		w, _ := g.writer()
		state := g.Status
		if g.Operation != nil {
			state += "/" + string(g.Operation.Status)
		}
		if seen.Changed("state", state) || seen.Changed("writer", w.ARN) {
			req.Progress("global cluster "+g.Status, "status", g.Status, "operation", g.describeOperation(), "writer", w.ARN, "writer_region", w.Region)
		}
		if g.busy() {
			sawOperation = true
			return false, nil
		}
		if g.Status == "available" && w.ARN == target {
			return true, nil
		}
		if sawOperation || time.Since(started) > startGrace {
			if g.Status != "available" {
				return false, nil
			}
			return false, plugin.FatalCode("PromotionFailed", "the %s of global cluster %s ended without promoting %s: the writer is %q (%s)", kind, id, target, w.ARN, g.describeOperation())
		}
		return false, nil
	})
}

func auroraGlobalSwitchover() plugin.Action {
	return plugin.NewAction("aurora_global_switchover", func(ctx context.Context, req plugin.Request[promoteParams]) (promoteOutputs, error) {
		start := time.Now()
		p := req.Params
		g, err := describeGlobalCluster(ctx, p.Conn(), p.GlobalCluster)
		if err != nil {
			return promoteOutputs{}, err
		}
		target, err := resolveTarget(g, p.TargetClusterARN, p.TargetRegion)
		if err != nil {
			return promoteOutputs{}, err
		}
		writer, hasWriter := g.writer()
		if g.busy() {
			// A switchover to the same target is this step's own, interrupted
			// and resumed: wait for it rather than refuse.
			op := g.Operation
			if op == nil || operationKind(op) != "switchover" || aws.ToString(op.ToDbClusterArn) != target.ARN {
				return promoteOutputs{}, plugin.FatalCode("OperationInProgress", "global cluster %s is busy: %s; refusing to start a switchover to %s until it ends", g.ID, g.describeOperation(), target.ARN)
			}
			prev := aws.ToString(op.FromDbClusterArn)
			prevRegion, _ := awscommon.RegionOfARN(prev)
			req.Progress("joining the switchover already under way", "from", prev, "to", target.ARN)
			if err := waitForWriter(ctx, &req, p.Conn(), g.ID, target.ARN, "switchover", false); err != nil {
				return promoteOutputs{}, err
			}
			return promoteOutputs{WriterClusterARN: target.ARN, WriterRegion: target.Region, PreviousWriterClusterARN: prev, PreviousWriterRegion: prevRegion, Switched: true, Duration: time.Since(start)}, nil
		}
		if !hasWriter {
			return promoteOutputs{}, plugin.FatalCode("NoWriter", "global cluster %s has no writer member (members: %s); a switchover needs a healthy writer, use aurora_global_failover", g.ID, g.describeMembers())
		}
		if writer.ARN == target.ARN {
			req.Progress("already the writer: nothing to do", "writer", writer.ARN, "writer_region", writer.Region)
			return promoteOutputs{WriterClusterARN: writer.ARN, WriterRegion: writer.Region, PreviousWriterClusterARN: writer.ARN, PreviousWriterRegion: writer.Region, Duration: time.Since(start)}, nil
		}
		if g.Status != "available" {
			return promoteOutputs{}, plugin.RetryableCode("NotAvailable", "global cluster %s is %s, not available; a switchover needs it available", g.ID, g.Status)
		}
		if target.Synchronization == "pending-resync" {
			// After a failover the old writer resynchronizes before it can
			// be promoted again; that ends by itself.
			return promoteOutputs{}, plugin.RetryableCode("TargetResyncing", "cluster %s is still resynchronizing (pending-resync) after a failover and cannot be promoted yet", target.ARN)
		}
		// A switchover is issued in the current primary's region.
		primary := p.Conn().WithRegion(writer.Region)
		cfg, err := primary.Config(ctx)
		if err != nil {
			return promoteOutputs{}, err
		}
		req.Progress("starting switchover", "from", writer.ARN, "to", target.ARN, "issued_in", writer.Region)
		_, err = rds.NewFromConfig(cfg).SwitchoverGlobalCluster(ctx, &rds.SwitchoverGlobalClusterInput{
			GlobalClusterIdentifier:   aws.String(g.ID),
			TargetDbClusterIdentifier: aws.String(target.ARN),
		})
		if err != nil {
			return promoteOutputs{}, awscommon.Classify(err, "switching global cluster %s over to %s (in %s)", g.ID, target.ARN, writer.Region)
		}
		if err := waitForWriter(ctx, &req, p.Conn(), g.ID, target.ARN, "switchover", true); err != nil {
			return promoteOutputs{}, err
		}
		req.Progress("switchover complete", "writer", target.ARN, "writer_region", target.Region)
		return promoteOutputs{WriterClusterARN: target.ARN, WriterRegion: target.Region, PreviousWriterClusterARN: writer.ARN, PreviousWriterRegion: writer.Region, Switched: true, Duration: time.Since(start)}, nil
	}).
		Doc("Planned Aurora Global switchover (no data loss): makes the target member (target_cluster_arn, or the member in target_region) the writer. Reads the global cluster through `region`, issues SwitchoverGlobalCluster in the current writer's region, and waits until the global cluster is available with the target as writer. A target that already is the writer is a successful no-op. Refuses while another switchover or failover is under way (a switchover to the same target is joined, which makes a resumed step safe).").
		Idempotent().
		Validate(func(req plugin.ValidateRequest[promoteParams]) []plugin.Diagnostic {
			return validatePromote(req, false)
		}).
		Plan(func(ctx context.Context, req plugin.PlanRequest[promoteParams]) (plugin.Plan, error) {
			return planPromote(ctx, req, "switchover")
		})
}

func auroraGlobalFailover() plugin.Action {
	return plugin.NewAction("aurora_global_failover", func(ctx context.Context, req plugin.Request[promoteParams]) (failoverOutputs, error) {
		start := time.Now()
		p := req.Params
		// Everything happens in the target region: the old primary's region
		// may not answer at all.
		conn := p.Conn()
		g, err := describeGlobalCluster(ctx, conn, p.GlobalCluster)
		if err != nil {
			return failoverOutputs{}, err
		}
		target, err := resolveTarget(g, p.TargetClusterARN, firstNonEmpty(p.TargetRegion, p.Region))
		if err != nil {
			return failoverOutputs{}, err
		}
		if target.Region != p.Region {
			return failoverOutputs{}, plugin.FatalCode("WrongRegion", "a failover is issued in the target region: the target %s is in %s, but the step's region is %s", target.ARN, target.Region, p.Region)
		}
		writer, hasWriter := g.writer()
		out := failoverOutputs{}
		started := false
		if hasWriter {
			out.PreviousWriterClusterARN, out.PreviousWriterRegion = writer.ARN, writer.Region
		}
		if g.busy() {
			op := g.Operation
			if op == nil || operationKind(op) != "failover" || aws.ToString(op.ToDbClusterArn) != target.ARN {
				return failoverOutputs{}, plugin.FatalCode("OperationInProgress", "global cluster %s is busy: %s; refusing to start a failover to %s until it ends", g.ID, g.describeOperation(), target.ARN)
			}
			out.PreviousWriterClusterARN = aws.ToString(op.FromDbClusterArn)
			out.PreviousWriterRegion, _ = awscommon.RegionOfARN(out.PreviousWriterClusterARN)
			out.ReplicationLagMs, out.ReplicationLagReason = "unknown", "the failover was already under way when this step (re)started; see the first attempt's journal"
			req.Progress("joining the failover already under way", "from", out.PreviousWriterClusterARN, "to", target.ARN)
		} else if hasWriter && writer.ARN == target.ARN {
			req.Progress("already the writer: nothing to do", "writer", writer.ARN, "writer_region", writer.Region)
			out.promoteOutputs = promoteOutputs{WriterClusterARN: writer.ARN, WriterRegion: writer.Region, PreviousWriterClusterARN: writer.ARN, PreviousWriterRegion: writer.Region, Duration: time.Since(start)}
			out.ReplicationLagMs, out.ReplicationLagReason = "unknown", "no failover was needed: the target already was the writer"
			return out, nil
		} else {
			lag := readReplicationLag(ctx, conn, target.ID)
			out.ReplicationLagMs, out.ReplicationLagReason, out.ReplicationLagAt = lag.value(), lag.Reason, lag.at()
			if lag.Known {
				req.Progress("replication lag before failover", "replication_lag_ms", lag.Millis, "at", out.ReplicationLagAt)
			} else {
				req.Progress("replication lag before failover unknown", "reason", lag.Reason)
			}
			cfg, err := conn.Config(ctx)
			if err != nil {
				return failoverOutputs{}, err
			}
			req.Progress("starting failover (data loss allowed)", "from", out.PreviousWriterClusterARN, "to", target.ARN, "issued_in", p.Region)
			_, err = rds.NewFromConfig(cfg).FailoverGlobalCluster(ctx, &rds.FailoverGlobalClusterInput{
				GlobalClusterIdentifier:   aws.String(g.ID),
				TargetDbClusterIdentifier: aws.String(target.ARN),
				AllowDataLoss:             aws.Bool(true),
			})
			if err != nil {
				return failoverOutputs{}, awscommon.Classify(err, "failing global cluster %s over to %s (in %s)", g.ID, target.ARN, p.Region)
			}
			started = true
		}
		if err := waitForWriter(ctx, &req, conn, g.ID, target.ARN, "failover", started); err != nil {
			return failoverOutputs{}, err
		}
		req.Progress("failover complete", "writer", target.ARN, "writer_region", target.Region)
		out.WriterClusterARN, out.WriterRegion, out.Switched, out.Duration = target.ARN, target.Region, true, time.Since(start)
		return out, nil
	}).
		Doc("Unplanned Aurora Global failover (FailoverGlobalCluster with AllowDataLoss=true): makes the member in the step's region (or target_cluster_arn, which must be in that region) the writer. Every call goes to the step's region, which must be the target's: the old primary's region is never called, so this works while it is down. Records the target's last replication lag (CloudWatch AuroraGlobalDBReplicationLag) before the failover as evidence of the writes that may be lost. A target that already is the writer is a successful no-op; a failover to the same target already under way is joined.").
		Idempotent().
		Validate(func(req plugin.ValidateRequest[promoteParams]) []plugin.Diagnostic { return validatePromote(req, true) }).
		Plan(func(ctx context.Context, req plugin.PlanRequest[promoteParams]) (plugin.Plan, error) {
			return planPromote(ctx, req, "failover")
		})
}

func planPromote(ctx context.Context, req plugin.PlanRequest[promoteParams], kind string) (plugin.Plan, error) {
	p := req.Params
	resource := "aurora global cluster " + p.GlobalCluster
	if req.Unknown("/global_cluster") || req.Unknown("/region") || req.Unknown("/endpoint_url") || req.Unknown("/profile") {
		return plugin.Plan{Summary: kind + " of an Aurora global cluster known only at run time", Changes: []plugin.Change{{Resource: resource, Field: "writer", AfterUnknown: true, Kind: plugin.ChangeUpdate}}}, nil
	}
	g, err := describeGlobalCluster(ctx, p.Conn(), p.GlobalCluster)
	if err != nil {
		return plugin.Plan{}, err
	}
	writer, _ := g.writer()
	change := plugin.Change{Resource: resource, Field: "writer", Before: writer.ARN, Kind: plugin.ChangeUpdate}
	targetRegion := p.TargetRegion
	if kind == "failover" && targetRegion == "" {
		targetRegion = p.Region
	}
	if req.Unknown("/target_cluster_arn") || req.Unknown("/target_region") {
		change.AfterUnknown = true
		return plugin.Plan{Summary: fmt.Sprintf("%s of %s: target known only at run time (writer now %s in %s)", kind, g.ID, writer.ARN, writer.Region), Changes: []plugin.Change{change}}, nil
	}
	target, err := resolveTarget(g, p.TargetClusterARN, targetRegion)
	if err != nil {
		return plugin.Plan{Summary: kind + " of " + g.ID, Diagnostics: []plugin.Diagnostic{plugin.Errorf("", "%v", err)}}, nil
	}
	change.After = target.ARN
	plan := plugin.Plan{Changes: []plugin.Change{change}}
	switch {
	case g.busy():
		plan.Summary = fmt.Sprintf("%s of %s to %s: a %s", kind, g.ID, target.Region, g.describeOperation())
		op := g.Operation
		if op == nil || operationKind(op) != kind || aws.ToString(op.ToDbClusterArn) != target.ARN {
			plan.Diagnostics = []plugin.Diagnostic{plugin.Errorf("", "global cluster %s is busy (%s): the %s would be refused", g.ID, g.describeOperation(), kind)}
		}
	case writer.ARN == target.ARN:
		plan.Changes[0].Kind = plugin.ChangeNoop
		plan.Summary = fmt.Sprintf("%s of %s: %s already is the writer (no-op)", kind, g.ID, target.ARN)
	case kind == "switchover":
		plan.Summary = fmt.Sprintf("switch %s over from %s to %s (SwitchoverGlobalCluster issued in %s, no data loss)", g.ID, writer.Region, target.Region, writer.Region)
	default:
		lag := readReplicationLag(ctx, p.Conn(), target.ID)
		lagText := "replication lag unknown: " + lag.Reason
		if lag.Known {
			lagText = fmt.Sprintf("replication lag %.0f ms at %s", lag.Millis, lag.at())
		}
		plan.Summary = fmt.Sprintf("fail %s over from %s to %s (FailoverGlobalCluster in %s, data loss allowed; %s)", g.ID, firstNonEmpty(writer.Region, "no writer"), target.Region, target.Region, lagText)
	}
	return plan, nil
}

func firstNonEmpty(s ...string) string {
	for _, v := range s {
		if v != "" {
			return v
		}
	}
	return ""
}
