package actions

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

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
	DoneEvidence             doneEvidence  `json:"done_evidence" doc:"What ended the wait, read in the target's region: the target is the global cluster's writer member, its cluster is available and so is its writer instance (the Aurora User Guide's \"as soon as the new primary Region's writer DB instance is available, you can connect\"). The global cluster's own status is recorded, not waited for."`
}

type failoverOutputs struct {
	promoteOutputs
	lagFields
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

// waitPromoted polls until the switchover or failover to target is done, by the
// Aurora User Guide's measure: read in the target's region (conn), the target is
// the global cluster's writer member, and its cluster is available with an
// available writer instance. The global cluster's own status is not waited for:
// after a failover it may stay failing-over for as long as the old primary's
// region is down (AWS re-adds it only "when it becomes available again").
// justStarted says the caller has just issued the operation (the first read then
// waits one poll interval); a joined operation is read at once.
func waitPromoted(ctx context.Context, req *plugin.Request[promoteParams], conn awscommon.Conn, id string, target globalMember, kind string, justStarted bool) (doneEvidence, error) {
	seen := awscommon.Changes{}
	started := time.Now()
	sawOperation := false
	poll := awscommon.Poll
	if justStarted {
		poll = awscommon.PollAfter
	}
	var done doneEvidence
	err := poll(ctx, req.Params.PollInterval, fmt.Sprintf("the %s of %s to %s", kind, id, target.ARN), func(ctx context.Context) (bool, error) {
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
		if w.ARN == target.ARN {
			d, err := readCluster(ctx, conn, target.ID)
			if err != nil {
				return false, err
			}
			if d.writable() {
				done = evidence(g, conn.Region, w, d)
				return true, nil
			}
			if seen.Changed("target", d.describe()) {
				req.Progress("the target is the writer member; waiting for its cluster and writer instance to be available", "cluster", target.ID, "seen", d.describe())
			}
			return false, nil
		}
		if g.busy() {
			sawOperation = true
			return false, nil
		}
		if sawOperation || time.Since(started) > startGrace {
			if g.Status != "available" {
				return false, nil
			}
			return false, plugin.FatalCode("PromotionFailed", "the %s of global cluster %s ended without promoting %s: the writer is %q (%s)", kind, id, target.ARN, w.ARN, g.describeOperation())
		}
		return false, nil
	})
	if err != nil {
		return doneEvidence{}, err
	}
	req.Progress(kind+" complete: "+done.Summary, done.progress()...)
	return done, nil
}

// checkTarget reads the target in its region before an operation starts: a
// headless secondary cannot be promoted (Aurora User Guide).
func checkTarget(ctx context.Context, conn awscommon.Conn, target globalMember) (clusterDetail, error) {
	d, err := readCluster(ctx, conn.WithRegion(target.Region), target.ID)
	if err != nil {
		return clusterDetail{}, err
	}
	if len(d.Instances) == 0 {
		return d, plugin.FatalCode("HeadlessTarget", "refusing the promotion, nothing was changed: %s", headlessFix(target.ID, target.Region))
	}
	return d, nil
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
		// Every read of the wait goes to the target's region.
		targetConn := p.Conn().WithRegion(target.Region)
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
			done, err := waitPromoted(ctx, &req, targetConn, g.ID, target, "switchover", false)
			if err != nil {
				return promoteOutputs{}, err
			}
			return promoteOutputs{WriterClusterARN: target.ARN, WriterRegion: target.Region, PreviousWriterClusterARN: prev, PreviousWriterRegion: prevRegion, Switched: true, Duration: time.Since(start), DoneEvidence: done}, nil
		}
		if !hasWriter {
			return promoteOutputs{}, plugin.FatalCode("NoWriter", "global cluster %s has no writer member (members: %s); a switchover needs a healthy writer, use aurora_global_failover", g.ID, g.describeMembers())
		}
		if writer.ARN == target.ARN {
			req.Progress("already the writer: confirming it is writable", "writer", writer.ARN, "writer_region", writer.Region)
			done, err := waitPromoted(ctx, &req, targetConn, g.ID, target, "switchover", false)
			if err != nil {
				return promoteOutputs{}, err
			}
			return promoteOutputs{WriterClusterARN: writer.ARN, WriterRegion: writer.Region, PreviousWriterClusterARN: writer.ARN, PreviousWriterRegion: writer.Region, Duration: time.Since(start), DoneEvidence: done}, nil
		}
		if g.Status != "available" {
			return promoteOutputs{}, plugin.RetryableCode("NotAvailable", "global cluster %s is %s, not available; a switchover needs it available", g.ID, g.Status)
		}
		if target.Synchronization == "pending-resync" {
			// After a failover the old writer resynchronizes before it can
			// be promoted again; that ends by itself (minutes to hours: the
			// runbook waits for it at pre-flight).
			return promoteOutputs{}, plugin.RetryableCode("TargetResyncing", "cluster %s is still resynchronizing (pending-resync) after a failover and cannot be promoted yet", target.ARN)
		}
		td, err := checkTarget(ctx, p.Conn(), target)
		if err != nil {
			return promoteOutputs{}, err
		}
		// The same major and minor engine version (Aurora User Guide); the
		// writer's region answers in a switchover.
		wd, err := readCluster(ctx, p.Conn().WithRegion(writer.Region), writer.ID)
		if err != nil {
			return promoteOutputs{}, err
		}
		tmm, tpatch := auroraVersion(td.EngineVersion)
		wmm, wpatch := auroraVersion(wd.EngineVersion)
		if tmm != wmm {
			return promoteOutputs{}, plugin.FatalCode("EngineVersionMismatch", "refusing the switchover, nothing was changed: %s runs %s and the writer %s runs %s; AWS switches over only between the same major and minor version: upgrade them to one version first", target.ID, td.EngineVersion, writer.ID, wd.EngineVersion)
		}
		if tpatch != wpatch {
			req.Progress("engine patch levels differ (AWS allows this for some engine versions only)", "target_version", td.EngineVersion, "writer_version", wd.EngineVersion)
		}
		// A switchover is issued in the current primary's region (Aurora User
		// Guide: switchover-global-cluster --region).
		cfg, err := p.Conn().WithRegion(writer.Region).Config(ctx)
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
		done, err := waitPromoted(ctx, &req, targetConn, g.ID, target, "switchover", true)
		if err != nil {
			return promoteOutputs{}, err
		}
		return promoteOutputs{WriterClusterARN: target.ARN, WriterRegion: target.Region, PreviousWriterClusterARN: writer.ARN, PreviousWriterRegion: writer.Region, Switched: true, Duration: time.Since(start), DoneEvidence: done}, nil
	}).
		Doc("Planned Aurora Global switchover (no data loss): makes the target member (target_cluster_arn, or the member in target_region) the writer. Reads the global cluster through `region`; refuses, changing nothing, a headless target (no DB instance) or engine versions whose major or minor differ; issues SwitchoverGlobalCluster in the current writer's region; and waits, reading the target's region, until the target is the writer member and its cluster and writer instance are available (done_evidence records that read). A target that already is the writer is a successful no-op (confirmed writable). Refuses while another switchover or failover is under way (a switchover to the same target is joined, which makes a resumed step safe).").
		Permissions(switchoverPermissions...).
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
		metric := lagMetric(g.Engine, g.EngineVersion)
		switch {
		case g.busy():
			op := g.Operation
			if op == nil || operationKind(op) != "failover" || aws.ToString(op.ToDbClusterArn) != target.ARN {
				return failoverOutputs{}, plugin.FatalCode("OperationInProgress", "global cluster %s is busy: %s; refusing to start a failover to %s until it ends", g.ID, g.describeOperation(), target.ARN)
			}
			// This step's own failover, interrupted and resumed, or done with
			// the old primary's region still down.
			out.PreviousWriterClusterARN = aws.ToString(op.FromDbClusterArn)
			out.PreviousWriterRegion, _ = awscommon.RegionOfARN(out.PreviousWriterClusterARN)
			out.lagFields = unknownLag(metric, "the failover was already under way when this step (re)started; see the first attempt's journal")
			req.Progress("joining the failover already under way", "from", out.PreviousWriterClusterARN, "to", target.ARN)
		case hasWriter && writer.ARN == target.ARN:
			req.Progress("already the writer: confirming it is writable", "writer", writer.ARN, "writer_region", writer.Region)
			done, err := waitPromoted(ctx, &req, conn, g.ID, target, "failover", false)
			if err != nil {
				return failoverOutputs{}, err
			}
			out.promoteOutputs = promoteOutputs{WriterClusterARN: writer.ARN, WriterRegion: writer.Region, PreviousWriterClusterARN: writer.ARN, PreviousWriterRegion: writer.Region, Duration: time.Since(start), DoneEvidence: done}
			out.lagFields = unknownLag(metric, "no failover was needed: the target already was the writer")
			return out, nil
		default:
			td, err := checkTarget(ctx, conn, target)
			if err != nil {
				return failoverOutputs{}, err
			}
			if tmm, _ := auroraVersion(td.EngineVersion); g.EngineVersion != "" && td.EngineVersion != "" {
				if gmm, _ := auroraVersion(g.EngineVersion); gmm != tmm {
					// The old primary's own version cannot be read here; AWS
					// decides, this is only a warning.
					req.Progress("the target's engine version differs from the global cluster's", "target_version", td.EngineVersion, "global_version", g.EngineVersion)
				}
			}
			metric = lagMetric(firstNonEmpty(td.Engine, g.Engine), firstNonEmpty(td.EngineVersion, g.EngineVersion))
			lag := readReplicationLag(ctx, conn, target.ID, metric)
			out.lagFields = lag.fields()
			if lag.Known {
				req.Progress("replication lag before failover", "metric", lag.Metric, "replication_lag_ms", lag.Millis, "at", out.ReplicationLagAt, "age", out.ReplicationLagAge)
			} else {
				req.Progress("replication lag before failover unknown", "metric", lag.Metric, "reason", lag.Reason)
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
		done, err := waitPromoted(ctx, &req, conn, g.ID, target, "failover", started)
		if err != nil {
			return failoverOutputs{}, err
		}
		out.WriterClusterARN, out.WriterRegion, out.Switched, out.Duration, out.DoneEvidence = target.ARN, target.Region, true, time.Since(start), done
		return out, nil
	}).
		Doc("Unplanned Aurora Global failover (FailoverGlobalCluster with AllowDataLoss=true): makes the member in the step's region (or target_cluster_arn, which must be in that region) the writer. Every call goes to the step's region, which must be the target's: the old primary's region is never called, so this works while it is down. Refuses, changing nothing, a headless target. Records the target's last lag datapoint before the failover (the metric the Aurora User Guide prescribes for the engine: AuroraGlobalDBRPOLag, or AuroraGlobalDBReplicationLag for older Aurora MySQL) with its age, as evidence of the writes that may be lost. Done when the target is the writer member and its cluster and writer instance are available (done_evidence); the global cluster's status is not waited for, since it may stay failing-over until the old primary's region returns. A target that already is the writer is a successful no-op (confirmed writable); a failover to the same target under way is joined.").
		Permissions(failoverPermissions...).
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
		lag := readReplicationLag(ctx, p.Conn(), target.ID, lagMetric(g.Engine, g.EngineVersion))
		lagText := lag.Metric + " unknown: " + lag.Reason
		if lag.Known {
			lagText = fmt.Sprintf("%s %.0f ms at %s (%s old)", lag.Metric, lag.Millis, lag.at(), lag.age())
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
