package emulator

import (
	"context"
	"net/http"
	"time"
)

// Advance fast-forwards the simulation's clock: every in-flight transition (a
// switchover, a service stabilising, a Route 53 change, ...) behaves as if d had
// passed. Timestamps moto writes itself are not shifted.
func (e *Emulator) Advance(ctx context.Context, d time.Duration) error {
	return e.call(ctx, http.MethodPost, "clock", map[string]float64{"advance": d.Seconds()}, nil)
}

// AuroraState is the emulator's view of the Aurora global clusters (GET /_sim/aurora).
type AuroraState struct {
	GlobalClusters []AuroraGlobalCluster `json:"global_clusters"`
	// History lists completed switchovers and failovers, oldest first.
	History      []AuroraOperation `json:"history"`
	DefaultLagMs float64           `json:"default_lag_ms"`
}

// AuroraGlobalCluster is one global cluster.
type AuroraGlobalCluster struct {
	AccountID     string           `json:"account_id"`
	GlobalCluster string           `json:"global_cluster"`
	ARN           string           `json:"arn"`
	Status        string           `json:"status"`
	Operation     *AuroraOperation `json:"operation"`
	Members       []AuroraMember   `json:"members"`
}

// AuroraMember is a member cluster. The lags are nil for the writer, RPOLagMs also
// for an engine without AuroraGlobalDBRPOLag.
type AuroraMember struct {
	ClusterARN      string `json:"cluster_arn"`
	ClusterID       string `json:"cluster_id"`
	Region          string `json:"region"`
	RegionDark      bool   `json:"region_dark"`
	IsWriter        bool   `json:"is_writer"`
	EngineVersion   string `json:"engine_version"`
	Instances       int    `json:"instances"`
	Synchronization string `json:"synchronization"`
	// ResyncCompletes is when a pending-resync ends (RFC 3339), "" while the
	// member waits for its region to return.
	ResyncCompletes  string   `json:"resync_completes"`
	ReplicationLagMs *float64 `json:"replication_lag_ms"`
	RPOLagMs         *float64 `json:"rpo_lag_ms"`
}

// AuroraOperation is a switchover or failover, in flight or completed.
type AuroraOperation struct {
	Kind           string  `json:"kind"` // "switchover" | "failover"
	GlobalCluster  string  `json:"global_cluster"`
	FromClusterARN string  `json:"from_cluster_arn"`
	ToClusterARN   string  `json:"to_cluster_arn"`
	CalledInRegion string  `json:"called_in_region"`
	AllowDataLoss  bool    `json:"allow_data_loss"`
	LagAtStartMs   float64 `json:"replication_lag_ms_at_start"`
	LostWritesMs   float64 `json:"lost_writes_ms"`
	Started        string  `json:"started"`
	Completes      string  `json:"completes"`
	Seconds        float64 `json:"seconds"`
	// Phase: pending, promoting, or what the operation waits for (a dark region).
	Phase      string `json:"phase"`
	PromotedAt string `json:"promoted_at"`
	Completed  bool   `json:"completed"`
	Finished   string `json:"finished"`
}

// Aurora returns the emulator's view of the Aurora global clusters.
func (e *Emulator) Aurora(ctx context.Context) (AuroraState, error) {
	var s AuroraState
	err := e.call(ctx, http.MethodGet, "aurora", nil, &s)
	return s, err
}

// The CloudWatch metrics of an Aurora global database's replication lag.
const (
	MetricReplicationLag = "AuroraGlobalDBReplicationLag"
	MetricRPOLag         = "AuroraGlobalDBRPOLag"
)

// SetReplicationLag sets the replication lag (ms) of one secondary cluster (ARN or
// identifier), or of every secondary if cluster is "": both AuroraGlobalDBReplicationLag
// and AuroraGlobalDBRPOLag (where the engine publishes it).
func (e *Emulator) SetReplicationLag(ctx context.Context, cluster string, ms float64) error {
	return e.SetLagMetric(ctx, cluster, "", ms)
}

// SetLagMetric sets one lag metric (MetricReplicationLag or MetricRPOLag; "" for
// both) of one secondary cluster, or of every secondary if cluster is "".
func (e *Emulator) SetLagMetric(ctx context.Context, cluster, metric string, ms float64) error {
	body := map[string]any{"lag_ms": ms}
	if cluster != "" {
		body["cluster"] = cluster
	}
	if metric != "" {
		body["metric"] = metric
	}
	return e.call(ctx, http.MethodPost, "aurora/lag", body, nil)
}

// SetRegionDark starts (dark) or ends a regional outage as AWS's own state sees it:
// an Aurora global cluster with a member there does not become available again
// until it returns, a failover's old primary rejoins and resynchronises only then,
// and the lag metrics stop while the primary's region is dark. The emulator still
// answers requests signed for the region: black-hole it in the fault proxy too
// (sim/outage does both).
func (e *Emulator) SetRegionDark(ctx context.Context, region string, dark bool) error {
	return e.call(ctx, http.MethodPost, "regions", map[string]any{"region": region, "dark": dark}, nil)
}

// DarkRegions returns the dark regions, each with the simulation clock's time (Unix
// seconds) it went dark.
func (e *Emulator) DarkRegions(ctx context.Context) (map[string]float64, error) {
	var out struct {
		Dark map[string]float64 `json:"dark"`
	}
	err := e.call(ctx, http.MethodGet, "regions", nil, &out)
	return out.Dark, err
}

// SetUnhealthyTargets makes the first n targets of a target group (ARN or name)
// that are past their initial health checks report unhealthy, with reason (an ELB
// reason code, default Target.ResponseCodeMismatch); n = 0 heals them.
func (e *Emulator) SetUnhealthyTargets(ctx context.Context, targetGroup string, n int, reason string) error {
	body := map[string]any{"target_group": targetGroup, "unhealthy": n}
	if reason != "" {
		body["reason"] = reason
	}
	return e.call(ctx, http.MethodPost, "elb/target-health", body, nil)
}

// S3ReplicationOp is one replication operation the emulator queued: an object
// version on its way to one destination bucket.
type S3ReplicationOp struct {
	Source      string  `json:"source"`
	Key         string  `json:"key"`
	Destination string  `json:"destination"`
	Rule        string  `json:"rule"`
	State       string  `json:"state"` // pending, completed, failed
	Queued      float64 `json:"queued"`
	Due         float64 `json:"due"`
	Reason      string  `json:"reason"` // why it failed (S3's failure reason code)
}

// S3Replication lists the replication operations of the last hour.
func (e *Emulator) S3Replication(ctx context.Context) ([]S3ReplicationOp, error) {
	var out struct {
		Operations []S3ReplicationOp `json:"operations"`
	}
	err := e.call(ctx, http.MethodGet, "s3/replication", nil, &out)
	return out.Operations, err
}

// Route53Answer is what Route 53's name servers would answer for a name and type
// (POST /_sim/route53/answer): the data plane, following failover records'
// health checks (a RECOVERY_CONTROL check is healthy while its routing control
// is On). Never faulted by the fault proxy.
type Route53Answer struct {
	Name         string   `json:"name"`
	Type         string   `json:"type"` // the type answered: CNAME when a CNAME is at the name
	ZoneID       string   `json:"zone_id"`
	ResponseCode string   `json:"response_code"` // NOERROR, NXDOMAIN, REFUSED (no zone), SERVFAIL
	Records      []string `json:"records"`
	// Alias is the target of an alias record outside the zone (a load balancer),
	// which the emulator does not resolve further.
	Alias *struct {
		DNSName              string `json:"dns_name"`
		HostedZoneID         string `json:"hosted_zone_id"`
		EvaluateTargetHealth bool   `json:"evaluate_target_health"`
	} `json:"alias"`
	TTL           *int64 `json:"ttl"`
	SetIdentifier string `json:"set_identifier,omitempty"`
	// Failover is PRIMARY or SECONDARY when the name has failover records.
	Failover         string `json:"failover,omitempty"`
	PrimaryHealthy   *bool  `json:"primary_healthy,omitempty"`
	SecondaryHealthy *bool  `json:"secondary_healthy,omitempty"`
	HealthCheckID    string `json:"health_check_id,omitempty"`
}

// Route53Answer resolves name/rtype in the emulator's public hosted zones (the
// most specific zone that holds the name; zoneID to choose one).
func (e *Emulator) Route53Answer(ctx context.Context, zoneID, name, rtype string) (Route53Answer, error) {
	var a Route53Answer
	err := e.call(ctx, http.MethodPost, "route53/answer", map[string]string{"zone_id": zoneID, "name": name, "type": rtype}, &a)
	return a, err
}

// ARCState is the emulator's view of Route 53 ARC (GET /_sim/arc).
type ARCState struct {
	RoutingControls []struct {
		ARN, Name, State, Status string
		ControlPanel             string `json:"control_panel"`
	} `json:"routing_controls"`
	// Updates lists the routing-control updates that took effect, oldest first,
	// with the endpoint region that served each.
	Updates []struct {
		Cluster        string            `json:"cluster"`
		EndpointRegion string            `json:"endpoint_region"`
		States         map[string]string `json:"states"`
		Changed        []string          `json:"changed"`
		Overridden     []string          `json:"overridden"`
	} `json:"updates"`
	UnavailableEndpointRegions []string `json:"unavailable_endpoint_regions"`
}

// ARC returns the emulator's view of Route 53 ARC.
func (e *Emulator) ARC(ctx context.Context) (ARCState, error) {
	var s ARCState
	err := e.call(ctx, http.MethodGet, "arc", nil, &s)
	return s, err
}

// SetARCEndpointsUnavailable makes the clusters' endpoints in regions answer
// EndpointTemporarilyUnavailableException (AWS cycles endpoints through
// maintenance); none: every endpoint answers again.
func (e *Emulator) SetARCEndpointsUnavailable(ctx context.Context, regions ...string) error {
	if regions == nil {
		regions = []string{}
	}
	return e.call(ctx, http.MethodPost, "arc/endpoints", map[string][]string{"unavailable": regions}, nil)
}
