package actions

import (
	"context"
	"fmt"
	"strconv"
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

// What the Aurora actions read of one member cluster, in the member's own region,
// and the rules they apply to it. Sources: Aurora User Guide, "Using switchover or
// failover in Amazon Aurora Global Database" (below: the User Guide), and the RDS
// API reference.

// instanceDetail is one DB instance of a cluster.
type instanceDetail struct {
	ID     string `json:"id"`
	Status string `json:"status" doc:"DBInstanceStatus (available, modifying, ...)."`
	Role   string `json:"role" doc:"writer or reader (DBClusterMembers IsClusterWriter)."`
}

// clusterDetail is a DB cluster as DescribeDBClusters and DescribeDBInstances show
// it in its own region.
type clusterDetail struct {
	ID, Region    string
	Status        string
	Engine        string
	EngineVersion string
	Instances     []instanceDetail
}

// writer is the cluster's writer instance, if it has one.
func (c clusterDetail) writer() (instanceDetail, bool) {
	for _, i := range c.Instances {
		if i.Role == "writer" {
			return i, true
		}
	}
	return instanceDetail{}, false
}

// writable is the User Guide's "as soon as the new primary Region's writer DB
// instance is available, you can connect": the cluster is available and so is its
// writer instance.
func (c clusterDetail) writable() bool {
	w, ok := c.writer()
	return c.Status == "available" && ok && w.Status == "available"
}

func (c clusterDetail) availableInstances() int {
	n := 0
	for _, i := range c.Instances {
		if i.Status == "available" {
			n++
		}
	}
	return n
}

// describe says what was seen: "status available, writer instance db-1 available".
func (c clusterDetail) describe() string {
	s := "status " + c.Status
	if w, ok := c.writer(); ok {
		return s + ", writer instance " + w.ID + " " + w.Status
	}
	if len(c.Instances) == 0 {
		return s + ", no DB instance"
	}
	return s + fmt.Sprintf(", no writer instance (%d reader(s))", len(c.Instances))
}

// readCluster reads a cluster and its instances through conn (its region).
func readCluster(ctx context.Context, conn awscommon.Conn, id string) (clusterDetail, error) {
	cfg, err := conn.Config(ctx)
	if err != nil {
		return clusterDetail{}, err
	}
	client := rds.NewFromConfig(cfg)
	out, err := client.DescribeDBClusters(ctx, &rds.DescribeDBClustersInput{DBClusterIdentifier: aws.String(id)})
	if err != nil {
		if awscommon.IsCode(err, "DBClusterNotFoundFault") {
			return clusterDetail{}, plugin.FatalCode("ClusterNotFound", "DB cluster %s not found in %s", id, conn.Region)
		}
		return clusterDetail{}, awscommon.Classify(err, "describing DB cluster %s in %s", id, conn.Region)
	}
	if len(out.DBClusters) == 0 {
		return clusterDetail{}, plugin.FatalCode("ClusterNotFound", "DB cluster %s not found in %s", id, conn.Region)
	}
	cl := out.DBClusters[0]
	d := clusterDetail{ID: id, Region: conn.Region, Status: aws.ToString(cl.Status), Engine: aws.ToString(cl.Engine), EngineVersion: aws.ToString(cl.EngineVersion)}
	if len(cl.DBClusterMembers) == 0 {
		return d, nil
	}
	status := map[string]string{}
	in := &rds.DescribeDBInstancesInput{Filters: []rdstypes.Filter{{Name: aws.String("db-cluster-id"), Values: []string{id}}}}
	for p := rds.NewDescribeDBInstancesPaginator(client, in); p.HasMorePages(); {
		page, err := p.NextPage(ctx)
		if err != nil {
			return clusterDetail{}, awscommon.Classify(err, "describing the DB instances of cluster %s in %s", id, conn.Region)
		}
		for _, i := range page.DBInstances {
			status[aws.ToString(i.DBInstanceIdentifier)] = aws.ToString(i.DBInstanceStatus)
		}
	}
	for _, m := range cl.DBClusterMembers {
		i := instanceDetail{ID: aws.ToString(m.DBInstanceIdentifier), Role: "reader", Status: "unknown"}
		if aws.ToBool(m.IsClusterWriter) {
			i.Role = "writer"
		}
		if s, ok := status[i.ID]; ok {
			i.Status = s
		}
		d.Instances = append(d.Instances, i)
	}
	return d, nil
}

// headlessFix names what to do about a target without a DB instance.
func headlessFix(id, region string) string {
	return fmt.Sprintf("cluster %s in %s has no DB instance: AWS cannot switch over or fail over to a headless secondary "+
		"(Aurora User Guide). Add a DB instance to it first (CreateDBInstance with DBClusterIdentifier %s in %s, or "+
		"\"Add reader\" in the console), wait until it is available, then run again", id, region, id, region)
}

// auroraVersion splits an engine version into the part AWS requires to match
// across members (major and minor) and the rest (the patch level, which must
// match only for some engine versions): "15.4" -> "15.4", "";
// "8.0.mysql_aurora.3.04.0" -> "3.04", "0".
func auroraVersion(v string) (majorMinor, patch string) {
	if i := strings.Index(v, "mysql_aurora."); i >= 0 {
		v = v[i+len("mysql_aurora."):]
	}
	parts := strings.SplitN(v, ".", 3)
	if len(parts) < 2 {
		return v, ""
	}
	majorMinor = parts[0] + "." + parts[1]
	if len(parts) == 3 {
		patch = parts[2]
	}
	return majorMinor, patch
}

// The CloudWatch metrics of an Aurora global database's lag (AWS/RDS namespace,
// dimension DBClusterIdentifier, published in the secondary's region).
const (
	metricRPOLag         = "AuroraGlobalDBRPOLag"
	metricReplicationLag = "AuroraGlobalDBReplicationLag"
)

// lagMetric is the metric the User Guide prescribes for a global database's RPO:
// AuroraGlobalDBRPOLag for every Aurora PostgreSQL version and for Aurora MySQL
// 3.04.0 and higher or 2.12.0 and higher; AuroraGlobalDBReplicationLag for lower
// Aurora MySQL versions.
func lagMetric(engine, version string) string {
	if strings.EqualFold(engine, "aurora") { // Aurora MySQL 5.6-compatible: Aurora version 1
		return metricReplicationLag
	}
	if !strings.EqualFold(engine, "aurora-mysql") && !strings.Contains(version, "mysql_aurora.") {
		return metricRPOLag
	}
	mm, _ := auroraVersion(version)
	parts := strings.SplitN(mm, ".", 2)
	if len(parts) != 2 {
		return metricReplicationLag
	}
	major, err1 := strconv.Atoi(parts[0])
	minor, err2 := strconv.Atoi(parts[1])
	if err1 != nil || err2 != nil {
		return metricReplicationLag
	}
	if major > 3 || (major == 3 && minor >= 4) || (major == 2 && minor >= 12) {
		return metricRPOLag
	}
	return metricReplicationLag
}

// replicationLag is the newest datapoint of a secondary's lag metric, read from
// CloudWatch in the secondary's region.
type replicationLag struct {
	Metric string
	Known  bool
	Millis float64
	At     time.Time
	// Age is how old the datapoint was when read: during an outage the newest
	// one may predate the failure.
	Age    time.Duration
	Reason string
}

// lagLookback bounds how old a lag datapoint may be and still be reported (with
// its age): an outage may have stopped the metric hours before the failover.
const lagLookback = 3 * time.Hour

func readReplicationLag(ctx context.Context, conn awscommon.Conn, clusterID, metric string) replicationLag {
	lag := replicationLag{Metric: metric}
	cfg, err := conn.Config(ctx)
	if err != nil {
		lag.Reason = err.Error()
		return lag
	}
	// CloudWatch speaks CBOR, JSON 1.0 and query; JSON is the one every
	// implementation we run against (AWS, emulators, proxies) understands.
	client := cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsjson.New10(schemas.GraniteServiceVersion20100801)
	})
	end := time.Now()
	out, err := client.GetMetricStatistics(ctx, &cloudwatch.GetMetricStatisticsInput{
		Namespace:  aws.String("AWS/RDS"),
		MetricName: aws.String(metric),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("DBClusterIdentifier"), Value: aws.String(clusterID)}},
		StartTime:  aws.Time(end.Add(-lagLookback)),
		// EndTime is exclusive and compared at second precision: reach past
		// now so that a datapoint stamped this very second counts.
		EndTime:    aws.Time(end.Add(time.Minute)),
		Period:     aws.Int32(60),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum},
	})
	if err != nil {
		lag.Reason = "reading " + metric + " from CloudWatch in " + conn.Region + ": " + awscommon.Describe(err)
		return lag
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
		lag.Reason = fmt.Sprintf("no %s datapoint for %s in %s in the last %s", metric, clusterID, conn.Region, lagLookback)
		return lag
	}
	lag.Known, lag.Millis, lag.At = true, *best.Maximum, best.Timestamp.UTC()
	lag.Age = max(0, time.Since(lag.At)).Round(time.Second)
	return lag
}

// value is the output form of a lag: milliseconds, or "unknown".
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

func (l replicationLag) age() string {
	if l.Known {
		return l.Age.String()
	}
	return ""
}

// lagFields are a lag's outputs, shared by the status and failover actions.
type lagFields struct {
	ReplicationLagMs     any    `json:"replication_lag_ms" doc:"The newest datapoint (ms) of replication_lag_metric from CloudWatch in the secondary's region, or \"unknown\"."`
	ReplicationLagMetric string `json:"replication_lag_metric" doc:"The metric read: AuroraGlobalDBRPOLag (Aurora PostgreSQL; Aurora MySQL 3.04.0/2.12.0 and higher) or AuroraGlobalDBReplicationLag (older Aurora MySQL), as the Aurora User Guide prescribes."`
	ReplicationLagAt     string `json:"replication_lag_at" doc:"Time of that datapoint (RFC 3339)."`
	ReplicationLagAge    string `json:"replication_lag_age" doc:"How old the datapoint was when read (\"2m10s\"): during an outage the newest one may predate the failure."`
	ReplicationLagReason string `json:"replication_lag_reason" doc:"Why the lag is unknown."`
}

func (l replicationLag) fields() lagFields {
	return lagFields{ReplicationLagMs: l.value(), ReplicationLagMetric: l.Metric, ReplicationLagAt: l.at(), ReplicationLagAge: l.age(), ReplicationLagReason: l.Reason}
}

func unknownLag(metric, reason string) lagFields {
	return lagFields{ReplicationLagMs: "unknown", ReplicationLagMetric: metric, ReplicationLagReason: reason}
}

// ---- the end of a switchover or failover ----

// doneEvidence is what ended a switchover's or failover's wait, as read then.
type doneEvidence struct {
	Summary              string `json:"summary" doc:"One sentence: what was read, where and when."`
	ReadAt               string `json:"read_at" doc:"When (RFC 3339)."`
	ReadInRegion         string `json:"read_in_region" doc:"The target's region, where every read of the wait went."`
	TargetClusterARN     string `json:"target_cluster_arn"`
	TargetIsWriter       bool   `json:"target_is_writer" doc:"The global cluster's member flag IsWriter of the target."`
	TargetClusterStatus  string `json:"target_cluster_status" doc:"The target cluster's status (DescribeDBClusters)."`
	WriterInstance       string `json:"writer_instance" doc:"The target's writer instance (DBClusterMembers IsClusterWriter)."`
	WriterInstanceStatus string `json:"writer_instance_status" doc:"Its DBInstanceStatus."`
	GlobalStatus         string `json:"global_status" doc:"The global cluster's status then; not waited for (after a failover it stays failing-over until the old primary's region returns)."`
	Operation            string `json:"operation" doc:"The operation still under way then, if any (a failover whose old primary has not rejoined)."`
}

// evidence records a done read: g read in region, the target's detail.
func evidence(g globalCluster, region string, target globalMember, d clusterDetail) doneEvidence {
	w, _ := d.writer()
	e := doneEvidence{
		ReadAt: time.Now().UTC().Format(time.RFC3339), ReadInRegion: region, TargetClusterARN: target.ARN,
		TargetIsWriter: target.IsWriter, TargetClusterStatus: d.Status, WriterInstance: w.ID, WriterInstanceStatus: w.Status,
		GlobalStatus: g.Status,
	}
	if g.busy() {
		e.Operation = firstNonEmpty(g.operationText(), g.describeOperation())
	}
	e.Summary = fmt.Sprintf("read in %s at %s: %s is the writer of global cluster %s; its status is %s and its writer instance %s is %s",
		region, e.ReadAt, target.ID, g.ID, d.Status, w.ID, w.Status)
	if e.Operation != "" {
		e.Summary += fmt.Sprintf(" (global cluster %s, not waited for: %s)", g.Status, e.Operation)
	} else {
		e.Summary += fmt.Sprintf(" (global cluster %s)", g.Status)
	}
	return e
}

func (e doneEvidence) progress() []any {
	return []any{"read_at", e.ReadAt, "read_in_region", e.ReadInRegion, "target_is_writer", e.TargetIsWriter,
		"target_cluster_status", e.TargetClusterStatus, "writer_instance", e.WriterInstance,
		"writer_instance_status", e.WriterInstanceStatus, "global_status", e.GlobalStatus, "operation", e.Operation}
}
