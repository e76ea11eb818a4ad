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

// AuroraMember is a member cluster. ReplicationLagMs is nil for the writer.
type AuroraMember struct {
	ClusterARN       string   `json:"cluster_arn"`
	ClusterID        string   `json:"cluster_id"`
	Region           string   `json:"region"`
	IsWriter         bool     `json:"is_writer"`
	Synchronization  string   `json:"synchronization"`
	ReplicationLagMs *float64 `json:"replication_lag_ms"`
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
	Completed      bool    `json:"completed"`
}

// Aurora returns the emulator's view of the Aurora global clusters.
func (e *Emulator) Aurora(ctx context.Context) (AuroraState, error) {
	var s AuroraState
	err := e.call(ctx, http.MethodGet, "aurora", nil, &s)
	return s, err
}

// SetReplicationLag sets the replication lag (AuroraGlobalDBReplicationLag, ms) of
// one secondary cluster (ARN or identifier), or of every secondary if cluster is "".
func (e *Emulator) SetReplicationLag(ctx context.Context, cluster string, ms float64) error {
	body := map[string]any{"lag_ms": ms}
	if cluster != "" {
		body["cluster"] = cluster
	}
	return e.call(ctx, http.MethodPost, "aurora/lag", body, nil)
}
