package runbook

import (
	"fmt"
	"time"

	"github.com/runbookhq/runbook/sdk/schema"
	"github.com/runbookhq/runbook/sdk/spec"
)

// The fake plugins of the tests: small Go structs described with the same
// struct tags real plugins use.

type switchoverParams struct {
	GlobalCluster    string        `json:"global_cluster" required:"true" doc:"Global cluster identifier."`
	Region           string        `json:"region" doc:"Region to promote."`
	TargetClusterARN string        `json:"target_cluster_arn"`
	AllowDataLoss    bool          `json:"allow_data_loss"`
	PollInterval     time.Duration `json:"poll_interval" default:"2s"`
}

type switchoverOutputs struct {
	WriterRegion             string `json:"writer_region"`
	WriterClusterARN         string `json:"writer_cluster_arn"`
	PreviousWriterClusterARN string `json:"previous_writer_cluster_arn"`
	Status                   string `json:"status"`
}

type scaleParams struct {
	Cluster      string `json:"cluster" required:"true"`
	Service      string `json:"service" required:"true"`
	DesiredCount int    `json:"desired_count" required:"true" min:"0"`
	Region       string `json:"region"`
}

type scaleOutputs struct {
	PreviousDesiredCount int    `json:"previous_desired_count"`
	RunningCount         int    `json:"running_count"`
	Status               string `json:"status"`
}

type recordParams struct {
	Zone    string            `json:"zone" required:"true"`
	Name    string            `json:"name" required:"true"`
	Type    string            `json:"type" enum:"A,AAAA,CNAME,TXT" default:"CNAME"`
	Values  []string          `json:"values" required:"true" min:"1"`
	TTL     int               `json:"ttl" default:"60"`
	Weights map[string]int    `json:"weights"`
	Target  *recordTarget     `json:"target"`
	Tags    map[string]string `json:"tags"`
}

type recordTarget struct {
	DNSName string `json:"dns_name" required:"true"`
	ZoneID  string `json:"zone_id"`
}

type recordOutputs struct {
	PreviousValues []string `json:"previous_values"`
	ChangeID       string   `json:"change_id"`
}

type slackParams struct {
	Webhook string `json:"webhook" required:"true" secret:"true"`
	Text    string `json:"text" required:"true"`
}

type tokenOutputs struct {
	Token  string `json:"token" secret:"true"`
	Expiry string `json:"expiry"`
}

func action(name string, params, outputs *schema.Schema, idempotent bool) spec.ActionSpec {
	return spec.ActionSpec{Name: name, Params: params, Outputs: outputs, Idempotent: idempotent, SupportsPlan: true}
}

// fakeCatalog maps plugin names to descriptions; errs makes a plugin fail
// to describe.
type fakeCatalog struct {
	plugins map[string]*spec.Description
	errs    map[string]error
	asked   []string
}

func (c *fakeCatalog) Plugin(name string) (*spec.Description, error) {
	c.asked = append(c.asked, name)
	if err := c.errs[name]; err != nil {
		return nil, err
	}
	d, ok := c.plugins[name]
	if !ok {
		return nil, fmt.Errorf("runbook-plugin-%s not found in ./bin or PATH", name)
	}
	return d, nil
}

func newFakeCatalog() *fakeCatalog {
	return &fakeCatalog{plugins: map[string]*spec.Description{
		"aws": {Name: "aws", Version: "0.1.0", ProtocolVersion: 1, Actions: []spec.ActionSpec{
			action("aurora_global_switchover", schema.MustFor[switchoverParams](), schema.MustFor[switchoverOutputs](), true),
			action("ecs_service_scale", schema.MustFor[scaleParams](), schema.MustFor[scaleOutputs](), true),
			action("get_token", schema.MustFor[struct{}](), schema.MustFor[tokenOutputs](), true),
		}},
		"dns": {Name: "dns", Version: "0.1.0", ProtocolVersion: 1, Actions: []spec.ActionSpec{
			action("route53_record", schema.MustFor[recordParams](), schema.MustFor[recordOutputs](), true),
		}},
		"notify": {Name: "notify", Version: "0.1.0", ProtocolVersion: 1, Actions: []spec.ActionSpec{
			action("slack", schema.MustFor[slackParams](), nil, false),
		}},
	}}
}

// testOptions returns Options with a fresh fake catalog.
func testOptions() (Options, *fakeCatalog) {
	c := newFakeCatalog()
	return Options{Catalog: func([]*PluginRef) Catalog { return c }}, c
}
