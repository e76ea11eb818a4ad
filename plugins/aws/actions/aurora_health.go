package actions

import (
	"context"
	"fmt"
	"time"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// ---- aurora_writer_health ----

type writerHealthParams struct {
	awscommon.Params
	GlobalCluster string        `json:"global_cluster" required:"true" doc:"Global cluster identifier, read through region (a region that answers: the DR region in an unplanned failover)."`
	ClusterARN    string        `json:"cluster_arn" doc:"The cluster to check; default: the global cluster's current writer member."`
	Within        time.Duration `json:"within" default:"15s" doc:"Bound on the reads in the writer's region: a region that does not answer by then is reported unreachable, not as a failure."`
}

type writerHealthOutputs struct {
	WriterClusterARN     string `json:"writer_cluster_arn" doc:"The cluster checked."`
	WriterRegion         string `json:"writer_region"`
	IsWriter             bool   `json:"is_writer" doc:"Whether it is the global cluster's writer member (read through region)."`
	Reachable            bool   `json:"reachable" doc:"Its region answered within the bound."`
	WriterHealthy        bool   `json:"writer_healthy" doc:"Reachable, the writer member, its cluster available and its writer instance available: it still takes writes, and a planned switchover is possible."`
	ClusterStatus        string `json:"cluster_status" doc:"\"unknown\" when unreachable."`
	WriterInstance       string `json:"writer_instance"`
	WriterInstanceStatus string `json:"writer_instance_status"`
	Seen                 string `json:"seen" doc:"One sentence: what was read, where, when, or why nothing was."`
	ReadAt               string `json:"read_at" doc:"When (RFC 3339)."`
	Error                string `json:"error" doc:"The error of the read in the writer's region, if any."`
}

func auroraWriterHealth() plugin.Action {
	return plugin.NewAction("aurora_writer_health", func(ctx context.Context, req plugin.Request[writerHealthParams]) (writerHealthOutputs, error) {
		p := req.Params
		g, err := describeGlobalCluster(ctx, p.Conn(), p.GlobalCluster)
		if err != nil {
			return writerHealthOutputs{}, err
		}
		var m globalMember
		if p.ClusterARN != "" {
			var ok bool
			if m, ok = g.member(p.ClusterARN); !ok {
				return writerHealthOutputs{}, plugin.FatalCode("NotAMember", "cluster %s is not a member of global cluster %s (members: %s)", p.ClusterARN, g.ID, g.describeMembers())
			}
		} else {
			var ok bool
			if m, ok = g.writer(); !ok {
				now := time.Now().UTC().Format(time.RFC3339)
				return writerHealthOutputs{ClusterStatus: "unknown", ReadAt: now,
					Seen: fmt.Sprintf("read in %s at %s: global cluster %s has no writer member (%s)", p.Region, now, g.ID, g.describeOperation())}, nil
			}
		}
		out := writerHealthOutputs{WriterClusterARN: m.ARN, WriterRegion: m.Region, IsWriter: m.IsWriter, ClusterStatus: "unknown"}
		rctx, cancel := context.WithTimeout(ctx, p.Within)
		d, err := readCluster(rctx, p.Conn().WithRegion(m.Region), m.ID)
		cancel()
		if ctx.Err() != nil {
			return writerHealthOutputs{}, ctx.Err()
		}
		out.ReadAt = time.Now().UTC().Format(time.RFC3339)
		if err != nil {
			out.Error = err.Error()
			if answered(err) {
				// The region answered, with a refusal: reachable, not healthy.
				out.Reachable = true
				out.Seen = fmt.Sprintf("read in %s at %s: %s answered with an error: %v", m.Region, out.ReadAt, m.ID, err)
			} else {
				out.Seen = fmt.Sprintf("read in %s at %s: the region did not answer within %s (%v)", m.Region, out.ReadAt, p.Within, err)
			}
			req.Progress("writer not read", "cluster", m.ID, "region", m.Region, "reachable", out.Reachable)
			return out, nil
		}
		w, _ := d.writer()
		out.Reachable, out.ClusterStatus, out.WriterInstance, out.WriterInstanceStatus = true, d.Status, w.ID, w.Status
		out.WriterHealthy = m.IsWriter && d.writable()
		out.Seen = fmt.Sprintf("read in %s at %s: %s (%s) %s", m.Region, out.ReadAt, m.ID, map[bool]string{true: "the writer member", false: "not the writer member"}[m.IsWriter], d.describe())
		req.Progress("writer read", "cluster", m.ID, "region", m.Region, "writer_healthy", out.WriterHealthy, "seen", d.describe())
		return out, nil
	}).
		Doc("Bounded read of an Aurora global database's writer in its own region (or of cluster_arn): reachable, writer_healthy (the writer member, its cluster available with an available writer instance) and what was seen. Made for an unplanned failover's first step: if the old writer still answers as healthy, a planned switchover (no data loss) is possible instead. A region that does not answer within `within` is reported as unreachable, not as a failure. Read-only.").
		Permissions(writerHealthPermissions...).
		ReadOnly().
		Validate(func(req plugin.ValidateRequest[writerHealthParams]) []plugin.Diagnostic {
			if !req.Unknown("/within") && req.Params.Within <= 0 {
				return []plugin.Diagnostic{plugin.Errorf("/within", "within must be a positive duration such as 15s")}
			}
			if !req.Unknown("/cluster_arn") && req.Params.ClusterARN != "" {
				if err := checkClusterARN(req.Params.ClusterARN); err != nil {
					return []plugin.Diagnostic{plugin.Errorf("/cluster_arn", "%v", err)}
				}
			}
			return nil
		}).
		Plan(func(ctx context.Context, req plugin.PlanRequest[writerHealthParams]) (plugin.Plan, error) {
			return plugin.Plan{Summary: fmt.Sprintf("read the writer of Aurora global cluster %s in its region, within %s (read-only)", req.Params.GlobalCluster, req.Params.Within)}, nil
		})
}
