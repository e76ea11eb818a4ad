// Package topology seeds an AWS endpoint (the emulator, a LocalStack) with the
// two-region Spacelift self-hosted installation of docs/dr-guide.md: an Aurora PostgreSQL global
// database with the writer in the primary region and a secondary in the DR region; per
// region a load balancer (with a target group and listener for the server service), an ECS cluster with the server, drain and scheduler services
// (running in the primary, at 0 in the DR region), an auto-scaling group of workers and
// five versioned buckets replicating to the other region's; a multi-region KMS key; a
// Route 53 zone whose server and IoT broker records point at the primary; and a
// CloudFront distribution whose origin is the primary load balancer.
//
// Nothing is hard-coded to the emulator: the account comes from STS, names and ARNs
// from the APIs' answers. Seed returns every id in a Topology and WriteFiles writes the
// installer's configs (config.json, config.dr.json) and topology.json.
package topology

import (
	"errors"
	"fmt"

	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/runbookhq/runbook/sim/emulator"
)

// Bucket purposes, in the installer's order. The config field of each is
// "<purpose>_bucket_arn".
var BucketPurposes = []string{"states", "run_logs", "modules", "policy_inputs", "workspaces"}

// ECS services of the installation.
var Services = []string{"server", "drain", "scheduler"}

// Variants are the named pairs of regions: "default" (eu-west-1 -> eu-west-3),
// and "us-east-1" (us-east-1 -> us-west-2), an installation whose primary is the
// region that serves the global services' control planes (Route 53's,
// CloudFront's, IAM's): when it goes dark, record changes go dark with it.
var Variants = map[string][2]string{
	"default":   {"eu-west-1", "eu-west-3"},
	"us-east-1": {"us-east-1", "us-west-2"},
}

// Variant returns o with the regions of a named variant (see Variants).
func Variant(name string, o Options) (Options, error) {
	v, ok := Variants[name]
	if !ok {
		return o, fmt.Errorf("topology: no variant %q (default, us-east-1)", name)
	}
	o.PrimaryRegion, o.DRRegion = v[0], v[1]
	return o, nil
}

// Options configures Seed. Only EndpointURL (or Config) is required.
type Options struct {
	// EndpointURL is where every client goes (AWS_ENDPOINT_URL), with the emulator's
	// static test credentials. Ignored if Config is set.
	EndpointURL string
	// Config returns the SDK configuration for a region (overrides EndpointURL).
	Config func(region string) aws.Config

	PrimaryRegion string // default eu-west-1
	DRRegion      string // default eu-west-3
	// Name prefixes every resource (default "spacelift").
	Name string
	// Domain is the hosted zone and server hostname (default spacelift.example.com);
	// the IoT broker domain is worker-iot.<Domain>.
	Domain string
	// DesiredCounts of the primary's services (default server 2, drain 1, scheduler 1).
	DesiredCounts map[string]int32
	// Workers per region's auto-scaling group (default 2 in each).
	Workers int32
	// Wait makes Seed return only once the primary's services are stable, the DNS
	// changes INSYNC and the distribution Deployed: a steady installation.
	Wait bool
	// WaitTimeout bounds that wait (default 5 minutes).
	WaitTimeout time.Duration
	// PollInterval is the waiters' delay between reads (default 250 ms).
	PollInterval time.Duration
	// DualStack makes the load balancers dual-stack (IP address type
	// dualstack, with IPv6 addresses) and gives the server hostname an AAAA
	// alias beside its A alias, as a dual-stack ALB's hostname has. Off by
	// default until the DR runbooks move both aliases (dns.route53_aliases):
	// today's runbooks move the A alias only.
	DualStack bool
}

func (o *Options) defaults() error {
	if o.Config == nil {
		if o.EndpointURL == "" {
			return errors.New("topology: EndpointURL or Config is required")
		}
		url := o.EndpointURL
		o.Config = func(region string) aws.Config { return emulator.ConfigFor(url, region) }
	}
	if o.PrimaryRegion == "" {
		o.PrimaryRegion = "eu-west-1"
	}
	if o.DRRegion == "" {
		o.DRRegion = "eu-west-3"
	}
	if o.PrimaryRegion == o.DRRegion {
		return errors.New("topology: the primary and DR regions must differ")
	}
	if o.Name == "" {
		o.Name = "spacelift"
	}
	if o.Domain == "" {
		o.Domain = "spacelift.example.com"
	}
	if o.DesiredCounts == nil {
		o.DesiredCounts = map[string]int32{"server": 2, "drain": 1, "scheduler": 1}
	}
	if o.Workers == 0 {
		o.Workers = 2
	}
	if o.WaitTimeout == 0 {
		o.WaitTimeout = 5 * time.Minute
	}
	if o.PollInterval == 0 {
		o.PollInterval = 250 * time.Millisecond
	}
	return nil
}

// Topology is every identifier of a seeded installation.
type Topology struct {
	AccountID string `json:"account_id"`
	Name      string `json:"name"`
	Primary   Region `json:"primary"`
	DR        Region `json:"dr"`

	// Aurora Global Database.
	GlobalClusterID  string `json:"global_cluster_id"`
	GlobalClusterARN string `json:"global_cluster_arn"`
	DBEngine         string `json:"db_engine"`
	DBEngineVersion  string `json:"db_engine_version"`

	// The multi-region KMS key: primary in the primary region, replica in the DR one.
	KMSPrimaryKeyARN string `json:"kms_primary_key_arn"`
	KMSReplicaKeyARN string `json:"kms_replica_key_arn"`

	// DNS.
	Domain           string `json:"domain"`
	HostedZoneID     string `json:"hosted_zone_id"`
	ServerRecordName string `json:"server_record_name"` // alias A record (and AAAA with DualStack) to the active LB
	// DualStack: the server hostname also has an AAAA alias, and the load
	// balancers IPv6 addresses.
	DualStack     bool   `json:"dual_stack,omitempty"`
	IoTRecordName string `json:"iot_record_name"` // CNAME to the active IoT ATS endpoint
	// DNSServer is the simulation's DNS server (sim/dnsserver, host:port on
	// loopback) serving the hosted zone, once one is started: the DR
	// runbooks' route53_nameservers and dns_resolver (RunbookInputs).
	DNSServer    string `json:"dns_server,omitempty"`
	IoTRecordTTL int64  `json:"iot_record_ttl"`

	// CloudFront (the alternative to switching the DNS record).
	DistributionID     string `json:"distribution_id"`
	DistributionARN    string `json:"distribution_arn"`
	DistributionDomain string `json:"distribution_domain"`
	DistributionOrigin string `json:"distribution_origin_id"`

	// Roles the replication and the batch replicate jobs run as.
	ReplicationRoleARN string `json:"replication_role_arn"`
	BatchRoleARN       string `json:"batch_operations_role_arn"`
}

// Region is one region's half of the installation.
type Region struct {
	Name string `json:"region"`

	DBClusterID  string `json:"db_cluster_id"`
	DBClusterARN string `json:"db_cluster_arn"`
	DBInstanceID string `json:"db_instance_id"`

	LoadBalancerARN    string `json:"load_balancer_arn"`
	LoadBalancerDNS    string `json:"load_balancer_dns"`
	LoadBalancerZoneID string `json:"load_balancer_zone_id"` // for alias records
	// The load balancer's addresses as the simulation's DNS server answers
	// them (fake, from the documentation ranges: RFC 5737, RFC 3849); IPv6
	// only for a dual-stack load balancer.
	LoadBalancerIPv4 []string `json:"load_balancer_ipv4"`
	LoadBalancerIPv6 []string `json:"load_balancer_ipv6,omitempty"`
	ListenerARN      string   `json:"listener_arn"`
	// TargetGroups by ECS service: the services behind the load balancer (server).
	TargetGroups map[string]string `json:"target_groups"`

	ECSCluster    string           `json:"ecs_cluster"`
	ECSServices   []string         `json:"ecs_services"`
	DesiredCounts map[string]int32 `json:"desired_counts"` // as seeded

	IoTEndpoint string `json:"iot_endpoint"` // iot:Data-ATS

	ASGName          string `json:"asg_name"`
	LaunchTemplateID string `json:"launch_template_id"`

	KMSKeyARN string `json:"kms_key_arn"`

	// Buckets by purpose (BucketPurposes).
	Buckets map[string]Bucket `json:"buckets"`
}

// Bucket is one S3 bucket.
type Bucket struct {
	Name string `json:"name"`
	ARN  string `json:"arn"`
}

// BucketNames lists the region's bucket names in BucketPurposes order.
func (r Region) BucketNames() []string {
	out := make([]string, 0, len(r.Buckets))
	for _, p := range BucketPurposes {
		out = append(out, r.Buckets[p].Name)
	}
	return out
}

// Addresses maps each load balancer's DNS name (with and without the
// "dualstack." prefix an alias may use) to its fake addresses: what the
// simulation's DNS server answers for an alias to it.
func (t *Topology) Addresses() map[string]Addresses {
	out := map[string]Addresses{}
	for _, r := range []Region{t.Primary, t.DR} {
		a := Addresses{IPv4: r.LoadBalancerIPv4, IPv6: r.LoadBalancerIPv6}
		name := strings.ToLower(strings.TrimSuffix(r.LoadBalancerDNS, "."))
		out[name] = a
		out["dualstack."+name] = a
	}
	return out
}

// Addresses are a name's IPv4 and IPv6 addresses.
type Addresses struct {
	IPv4 []string `json:"ipv4"`
	IPv6 []string `json:"ipv6,omitempty"`
}

// fakeAddresses gives the n-th region's load balancer two addresses from the
// documentation ranges: 192.0.2.10n and .10n+1 (RFC 5737 TEST-NET-1), and
// with IPv6 2001:db8:n::10 and ::11 (RFC 3849).
func fakeAddresses(n int, ipv6 bool) (v4, v6 []string) {
	v4 = []string{fmt.Sprintf("192.0.2.%d", 10*n), fmt.Sprintf("192.0.2.%d", 10*n+1)}
	if ipv6 {
		v6 = []string{fmt.Sprintf("2001:db8:%d::10", n), fmt.Sprintf("2001:db8:%d::11", n)}
	}
	return v4, v6
}

// Other returns the region that is not name (primary <-> DR).
func (t *Topology) Other(name string) Region {
	if name == t.Primary.Name {
		return t.DR
	}
	return t.Primary
}

// Region returns the half of the installation in region name.
func (t *Topology) Region(name string) (Region, bool) {
	switch name {
	case t.Primary.Name:
		return t.Primary, true
	case t.DR.Name:
		return t.DR, true
	}
	return Region{}, false
}

func bucketName(name, purpose, region, account string) string {
	return strings.ToLower(fmt.Sprintf("%s-%s-%s-%s", name, strings.ReplaceAll(purpose, "_", "-"), region, account))
}
