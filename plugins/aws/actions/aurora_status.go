package actions

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// ---- aurora_global_status ----

type auroraStatusParams struct {
	awscommon.Params
	GlobalCluster string        `json:"global_cluster" required:"true" doc:"Global cluster identifier."`
	Members       bool          `json:"members" default:"true" doc:"Also read each member cluster (status, engine version, instances) and each secondary's replication lag in its own region. A member region that does not answer within member_timeout is reported as unreachable, not as a failure."`
	MemberTimeout time.Duration `json:"member_timeout" default:"10s" doc:"Bound on the calls to each member's region."`
	TargetRegion  string        `json:"target_region" doc:"The region whose member a switchover or failover (kind) would promote: adds the pre-flight verdict (ready, verdict, reasons, warnings). Needs members."`
	Kind          string        `json:"kind" enum:"switchover,failover" default:"switchover" doc:"What the verdict is for. switchover: every cluster must be healthy (Aurora User Guide); failover: the writer's region may be down."`
}

type auroraMemberStatus struct {
	ClusterARN      string           `json:"cluster_arn"`
	ClusterID       string           `json:"cluster_id"`
	Region          string           `json:"region"`
	IsWriter        bool             `json:"is_writer"`
	Status          string           `json:"status" doc:"The member cluster's own status (available, failing-over, ...), \"unknown\" when it was not read or its region did not answer."`
	StatusError     string           `json:"status_error" doc:"Why status is unknown."`
	EngineVersion   string           `json:"engine_version" doc:"The member's engine version, read in its region (\"\" when unknown)."`
	Instances       []instanceDetail `json:"instances" doc:"Its DB instances: id, status, role (writer or reader). None: a headless cluster."`
	WriterInstance  string           `json:"writer_instance" doc:"Its writer instance, \"\" when it has none (a secondary's instances are all readers)."`
	Synchronization string           `json:"synchronization_status" doc:"Secondaries: connected, or pending-resync while it is rebuilt after a failover."`
	lagFields
}

type auroraStatusOutputs struct {
	GlobalCluster    string               `json:"global_cluster"`
	GlobalClusterARN string               `json:"global_cluster_arn"`
	Status           string               `json:"status" doc:"Global cluster status (available, switching-over, failing-over, ...). After a failover it may stay failing-over for as long as the old primary's region is down."`
	Engine           string               `json:"engine"`
	EngineVersion    string               `json:"engine_version" doc:"The global cluster's engine version."`
	Members          []auroraMemberStatus `json:"members"`
	WriterClusterARN string               `json:"writer_cluster_arn" doc:"Empty when no member is the writer."`
	WriterRegion     string               `json:"writer_region"`
	Operation        string               `json:"operation" doc:"The switchover or failover under way, or empty."`
	OperationTarget  string               `json:"operation_target" doc:"The cluster ARN the operation under way promotes."`
	ResyncPending    bool                 `json:"resync_pending" doc:"Some secondary is still resynchronising after a failover (SynchronizationStatus pending-resync): no switchover or failover to it until it is connected. Wait with until: !outputs.resync_pending."`
	Resyncing        []string             `json:"resyncing_members" doc:"The ARNs of the members in pending-resync."`
	TargetClusterARN string               `json:"target_cluster_arn" doc:"With target_region: the member it names."`
	Ready            bool                 `json:"ready" doc:"With target_region: nothing that AWS documents as blocking the switchover or failover was seen."`
	Verdict          string               `json:"verdict" doc:"With target_region: one sentence, ready or what blocks it."`
	Reasons          []string             `json:"reasons" doc:"With target_region: each thing that blocks it, with the fix."`
	Warnings         []string             `json:"warnings" doc:"What does not block it but should be known (an unknown or old lag datapoint, patch levels that differ, a writer region that does not answer in a failover)."`
	// The target's lag, repeated from its member entry for approval prompts.
	TargetLagMs     any    `json:"target_replication_lag_ms" doc:"With target_region: the target's replication_lag_ms (what an unplanned failover now would lose), or \"unknown\"."`
	TargetLagMetric string `json:"target_replication_lag_metric"`
	TargetLagAge    string `json:"target_replication_lag_age" doc:"How old that datapoint was."`
}

// memberRead is what was read of one member in its region.
type memberRead struct {
	member globalMember
	detail clusterDetail
	err    error // the region did not answer, or refused
	read   bool
}

func auroraGlobalStatus() plugin.Action {
	return plugin.NewAction("aurora_global_status", func(ctx context.Context, req plugin.Request[auroraStatusParams]) (auroraStatusOutputs, error) {
		p := req.Params
		g, err := describeGlobalCluster(ctx, p.Conn(), p.GlobalCluster)
		if err != nil {
			return auroraStatusOutputs{}, err
		}
		out := auroraStatusOutputs{GlobalCluster: g.ID, GlobalClusterARN: g.ARN, Status: g.Status, Engine: g.Engine, EngineVersion: g.EngineVersion,
			Members: []auroraMemberStatus{}, Resyncing: []string{}, Reasons: []string{}, Warnings: []string{}}
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
		reads := map[string]memberRead{}
		for _, m := range g.Members {
			ms := auroraMemberStatus{
				ClusterARN: m.ARN, ClusterID: m.ID, Region: m.Region, IsWriter: m.IsWriter,
				Status: "unknown", Synchronization: m.Synchronization, Instances: []instanceDetail{},
			}
			if m.Synchronization == "pending-resync" {
				out.ResyncPending = true
				out.Resyncing = append(out.Resyncing, m.ARN)
			}
			switch {
			case !p.Members:
				ms.StatusError = "member status not requested"
				ms.lagFields = unknownLag("", "member status not requested")
			default:
				mctx, cancel := context.WithTimeout(ctx, p.MemberTimeout)
				conn := p.Conn().WithRegion(m.Region)
				d, err := readCluster(mctx, conn, m.ID)
				r := memberRead{member: m, detail: d, err: err, read: true}
				if err != nil {
					ms.StatusError = err.Error()
				} else {
					ms.Status, ms.EngineVersion = d.Status, d.EngineVersion
					if d.Instances != nil {
						ms.Instances = d.Instances
					}
					if w, ok := d.writer(); ok {
						ms.WriterInstance = w.ID
					}
				}
				metric := lagMetric(firstNonEmpty(d.Engine, g.Engine), firstNonEmpty(d.EngineVersion, g.EngineVersion))
				if m.IsWriter {
					ms.lagFields = unknownLag(metric, "the writer does not replicate from another region")
				} else {
					ms.lagFields = readReplicationLag(mctx, conn, m.ID, metric).fields()
				}
				cancel()
				if ctx.Err() != nil {
					return auroraStatusOutputs{}, ctx.Err()
				}
				reads[m.ARN] = r
				req.Progress("member read", "cluster", m.ID, "region", m.Region, "status", ms.Status, "instances", len(ms.Instances))
			}
			out.Members = append(out.Members, ms)
		}
		if p.TargetRegion != "" {
			target, ok := g.memberInRegion(p.TargetRegion)
			if ok {
				out.TargetClusterARN = target.ARN
			}
			out.TargetLagMs = "unknown"
			for _, m := range out.Members {
				if m.ClusterARN == out.TargetClusterARN {
					out.TargetLagMs, out.TargetLagMetric, out.TargetLagAge = m.ReplicationLagMs, m.ReplicationLagMetric, m.ReplicationLagAge
				}
			}
			out.Reasons, out.Warnings = statusVerdict(g, reads, out.Members, p.Kind, p.TargetRegion)
			out.Ready = len(out.Reasons) == 0
			if out.Ready {
				out.Verdict = fmt.Sprintf("ready: nothing blocks a %s of global cluster %s to %s", p.Kind, g.ID, p.TargetRegion)
			} else {
				out.Verdict = fmt.Sprintf("blocked: a %s of global cluster %s to %s cannot start: %s", p.Kind, g.ID, p.TargetRegion, strings.Join(out.Reasons, "; "))
			}
			req.Progress("pre-flight verdict", "ready", out.Ready, "reasons", len(out.Reasons), "warnings", len(out.Warnings))
		}
		return out, nil
	}).
		Doc("Reads an Aurora global database: its status and engine, its members (cluster ARN, region, writer or not, own status, engine version, DB instances and their roles, synchronization status, replication lag from CloudWatch with the metric the Aurora User Guide prescribes for the engine and the datapoint's age), the writer's region, any switchover or failover under way, and whether a secondary is still resynchronising. With target_region it also gives a pre-flight verdict for a switchover or failover (kind) to that region's member: ready, or the reasons it cannot start (a headless target, engine versions that differ, an operation under way, a target resynchronising or unavailable, and for a switchover any cluster not healthy). Read-only; a member region that does not answer is reported, not a failure.").
		Permissions(auroraStatusPermissions...).
		ReadOnly().
		Validate(func(req plugin.ValidateRequest[auroraStatusParams]) []plugin.Diagnostic {
			if !req.Unknown("/target_region") && !req.Unknown("/members") && req.Params.TargetRegion != "" && !req.Params.Members {
				return []plugin.Diagnostic{plugin.Errorf("/members", "a verdict for target_region needs members: true (it reads each member cluster)")}
			}
			return nil
		}).
		Plan(func(ctx context.Context, req plugin.PlanRequest[auroraStatusParams]) (plugin.Plan, error) {
			return plugin.Plan{Summary: fmt.Sprintf("read Aurora global cluster %s (read-only)", req.Params.GlobalCluster)}, nil
		})
}

// statusVerdict lists what blocks a switchover or failover (kind) to the member in
// targetRegion, and what should be known about it. The rules are the Aurora User
// Guide's ("Using switchover or failover in Amazon Aurora Global Database").
func statusVerdict(g globalCluster, reads map[string]memberRead, members []auroraMemberStatus, kind, targetRegion string) (reasons, warnings []string) {
	reasons, warnings = []string{}, []string{}
	target, ok := g.memberInRegion(targetRegion)
	if !ok {
		return append(reasons, fmt.Sprintf("global cluster %s has no member in %s (members: %s)", g.ID, targetRegion, g.describeMembers())), warnings
	}
	tr := reads[target.ARN]
	if target.IsWriter {
		// A re-run after the promotion, possibly with the failover's old primary
		// not yet back: the action is a no-op, or joins and confirms.
		if tr.err == nil && !tr.detail.writable() {
			reasons = append(reasons, fmt.Sprintf("%s already is the writer but is not writable yet (%s)", target.ID, tr.detail.describe()))
		}
		return reasons, append(warnings, fmt.Sprintf("%s already is the writer: the %s has nothing to do", target.ID, kind))
	}
	if g.busy() {
		reasons = append(reasons, fmt.Sprintf("a %s is under way; wait for it to end (or be cancelled) rather than start another", g.describeOperation()))
	}
	if tr.err != nil {
		reasons = append(reasons, fmt.Sprintf("the target cluster %s could not be read in %s: %v", target.ID, target.Region, tr.err))
	} else {
		switch {
		case len(tr.detail.Instances) == 0:
			reasons = append(reasons, headlessFix(target.ID, target.Region))
		case tr.detail.availableInstances() == 0:
			reasons = append(reasons, fmt.Sprintf("cluster %s in %s has no available DB instance (%s); wait until one is available", target.ID, target.Region, tr.detail.describe()))
		}
		if tr.detail.Status != "available" {
			reasons = append(reasons, fmt.Sprintf("the target cluster %s is %s, not available", target.ID, tr.detail.Status))
		}
	}
	if target.Synchronization == "pending-resync" {
		reasons = append(reasons, fmt.Sprintf("%s is still resynchronising after a failover (SynchronizationStatus pending-resync): AWS refuses to promote it until it is connected, which can take a few minutes to several hours; wait for it (until: !outputs.resync_pending)", target.ID))
	}
	// Engine versions: the same major and minor version everywhere; the same patch
	// level too for some engine versions.
	versions := map[string][]string{}
	var mms, patches []string
	for _, m := range g.Members {
		r := reads[m.ARN]
		if r.err != nil || r.detail.EngineVersion == "" {
			continue
		}
		versions[r.detail.EngineVersion] = append(versions[r.detail.EngineVersion], m.ID)
		mm, patch := auroraVersion(r.detail.EngineVersion)
		mms, patches = appendUnique(mms, mm), appendUnique(patches, mm+"/"+patch)
	}
	if len(versions) > 1 {
		var parts []string
		for v, ids := range versions {
			parts = append(parts, v+" ("+strings.Join(ids, ", ")+")")
		}
		sort.Strings(parts)
		msg := "engine versions differ: " + strings.Join(parts, ", ")
		if len(mms) > 1 {
			reasons = append(reasons, msg+"; AWS switches over and fails over only between the same major and minor version: upgrade the clusters to one version first")
		} else if len(patches) > 1 {
			warnings = append(warnings, msg+"; only the patch levels differ, which AWS allows for some engine versions only (Aurora User Guide, patch level compatibility)")
		}
	}
	w, hasWriter := g.writer()
	switch kind {
	case "switchover":
		if !hasWriter {
			reasons = append(reasons, fmt.Sprintf("global cluster %s has no writer member: a switchover needs a healthy primary; an unplanned failover does not", g.ID))
		}
		if g.Status != "available" && !g.busy() {
			reasons = append(reasons, fmt.Sprintf("global cluster %s is %s, not available", g.ID, g.Status))
		}
		for _, m := range g.Members {
			if m.ARN == target.ARN {
				continue
			}
			r := reads[m.ARN]
			switch {
			case r.err != nil:
				reasons = append(reasons, fmt.Sprintf("a switchover needs every cluster healthy (Aurora User Guide), but %s could not be read in %s: %v", m.ID, m.Region, r.err))
			case r.detail.Status != "available":
				reasons = append(reasons, fmt.Sprintf("a switchover needs every cluster healthy, but %s in %s is %s", m.ID, m.Region, r.detail.Status))
			case m.IsWriter && !r.detail.writable():
				reasons = append(reasons, fmt.Sprintf("the writer %s in %s is not writable (%s)", m.ID, m.Region, r.detail.describe()))
			}
		}
	case "failover":
		if hasWriter {
			if r := reads[w.ARN]; r.err != nil {
				warnings = append(warnings, fmt.Sprintf("the writer's region %s did not answer (%v): expected in an outage, the failover does not need it", w.Region, r.err))
			}
		}
	}
	for _, m := range members {
		if m.ClusterARN == target.ARN && m.ReplicationLagMs == "unknown" {
			warnings = append(warnings, fmt.Sprintf("the RPO lag of %s is unknown: %s", target.ID, m.ReplicationLagReason))
		}
	}
	return reasons, warnings
}

func appendUnique(list []string, s string) []string {
	for _, v := range list {
		if v == s {
			return list
		}
	}
	return append(list, s)
}
