package topology

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

// File names WriteFiles writes.
const (
	PrimaryConfigFile = "config.json"
	DRConfigFile      = "config.dr.json"
	TopologyFile      = "topology.json"
)

// InstallerConfig is the self-hosted installer's per-region config: the fields the
// runbooks read or change (docs/dr-guide.md, "Preparing the inputs"), and a few others an operator's file has, which the runbooks must ignore.
type InstallerConfig struct {
	AccountName      string           `json:"account_name"`
	AWSRegion        string           `json:"aws_region"`
	AWSPartition     string           `json:"aws_partition"`
	DisableServices  bool             `json:"disable_services"`
	Hostname         string           `json:"hostname"`
	IoTBrokerEnd     string           `json:"iot_broker_endpoint"`
	SpaceliftVersion string           `json:"spacelift_version"`
	LoadBalancer     map[string]any   `json:"load_balancer"`
	Database         map[string]any   `json:"database"`
	Tracing          map[string]any   `json:"tracing"`
	DisasterRecovery DisasterRecovery `json:"disaster_recovery"`
}

// DisasterRecovery is the installer config's disaster_recovery block.
type DisasterRecovery struct {
	IsDRInstance            bool              `json:"is_dr_instance"`
	ReplicaRegion           string            `json:"replica_region"`
	EncryptionPrimaryKeyARN string            `json:"encryption_primary_key_arn"`
	S3BucketReplication     BucketReplication `json:"s3_bucket_replication"`
}

// BucketReplication is disaster_recovery.s3_bucket_replication: where this region's
// buckets replicate to (the other region's buckets and key).
type BucketReplication struct {
	Enabled               bool   `json:"enabled"`
	ReplicaKMSKeyARN      string `json:"replica_kms_key_arn"`
	StatesBucketARN       string `json:"states_bucket_arn"`
	RunLogsBucketARN      string `json:"run_logs_bucket_arn"`
	ModulesBucketARN      string `json:"modules_bucket_arn"`
	PolicyInputsBucketARN string `json:"policy_inputs_bucket_arn"`
	WorkspacesBucketARN   string `json:"workspaces_bucket_arn"`
}

// InstallerConfig returns the installer config of region name (primary or DR).
func (t *Topology) InstallerConfig(name string) (InstallerConfig, error) {
	r, ok := t.Region(name)
	if !ok {
		return InstallerConfig{}, fmt.Errorf("topology: region %s is neither %s nor %s", name, t.Primary.Name, t.DR.Name)
	}
	other := t.Other(name)
	isDR := name == t.DR.Name
	return InstallerConfig{
		AccountName:      t.Name,
		AWSRegion:        r.Name,
		AWSPartition:     partitionOf(t.KMSPrimaryKeyARN),
		DisableServices:  isDR, // the DR installation is deployed with its services off
		Hostname:         t.ServerRecordName,
		IoTBrokerEnd:     t.IoTRecordName,
		SpaceliftVersion: "v3.0.0",
		LoadBalancer:     map[string]any{"scheme": "internet-facing", "ssl_policy": "ELBSecurityPolicy-TLS13-1-2-2021-06", "certificate_arn": ""},
		Database:         map[string]any{"delete_protection_enabled": true, "instance_class": "db.r6g.large", "connection_string_ssm_arn": "", "connection_string_ssm_kms_arn": ""},
		Tracing:          map[string]any{"enabled": false},
		DisasterRecovery: DisasterRecovery{
			IsDRInstance:            isDR,
			ReplicaRegion:           other.Name,
			EncryptionPrimaryKeyARN: t.KMSPrimaryKeyARN,
			S3BucketReplication: BucketReplication{
				Enabled:               true,
				ReplicaKMSKeyARN:      other.KMSKeyARN,
				StatesBucketARN:       other.Buckets["states"].ARN,
				RunLogsBucketARN:      other.Buckets["run_logs"].ARN,
				ModulesBucketARN:      other.Buckets["modules"].ARN,
				PolicyInputsBucketARN: other.Buckets["policy_inputs"].ARN,
				WorkspacesBucketARN:   other.Buckets["workspaces"].ARN,
			},
		},
	}, nil
}

func partitionOf(arn string) string {
	if parts := strings.SplitN(arn, ":", 3); len(parts) == 3 && parts[0] == "arn" {
		return parts[1]
	}
	return "aws"
}

// WriteFiles writes config.json (primary), config.dr.json (DR) and topology.json
// into dir, creating it.
func (t *Topology) WriteFiles(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	for file, region := range map[string]string{PrimaryConfigFile: t.Primary.Name, DRConfigFile: t.DR.Name} {
		c, err := t.InstallerConfig(region)
		if err != nil {
			return err
		}
		if err := writeJSON(filepath.Join(dir, file), c); err != nil {
			return err
		}
	}
	if err := writeInputs(dir, t); err != nil {
		return err
	}
	return writeJSON(filepath.Join(dir, TopologyFile), t)
}

// Load reads a topology.json.
func Load(path string) (*Topology, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var t Topology
	if err := json.Unmarshal(b, &t); err != nil {
		return nil, fmt.Errorf("topology: %s: %w", path, err)
	}
	return &t, nil
}

func writeJSON(path string, v any) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := path + ".tmp"
	if err := os.WriteFile(tmp, append(b, '\n'), 0o644); err != nil {
		return err
	}
	return os.Rename(tmp, path)
}
