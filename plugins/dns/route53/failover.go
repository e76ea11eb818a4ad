package route53

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// FailoverTarget is one side of a failover pair.
type FailoverTarget struct {
	Value         string `json:"value" doc:"A CNAME's target host name (CNAME records)."`
	Alias         *Alias `json:"alias" doc:"An alias target (A and AAAA records): the region's load balancer."`
	HealthCheckID string `json:"health_check_id" required:"true" doc:"The health check that decides whether this side answers: the RECOVERY_CONTROL health check of the region's routing control (aws.arc_setup's health_check_ids)."`
	SetIdentifier string `json:"set_identifier" doc:"The record's set identifier; default primary / secondary."`
}

// FailoverRecord is one failover record set as read or written.
type FailoverRecord struct {
	Record
	SetIdentifier string `json:"set_identifier,omitempty"`
	Failover      string `json:"failover,omitempty" doc:"PRIMARY or SECONDARY; empty for a simple record this action replaced."`
	HealthCheckID string `json:"health_check_id,omitempty"`
}

// FailoverParams of route53_failover_records.
type FailoverParams struct {
	awscommon.GlobalParams
	ZoneID       string         `json:"zone_id" doc:"Hosted zone id (with or without /hostedzone/)."`
	ZoneName     string         `json:"zone_name" doc:"Instead of zone_id: the zone's domain name."`
	PrivateZone  *bool          `json:"private_zone" doc:"With zone_name, when a public and a private zone share the name: which one."`
	Name         string         `json:"name" required:"true" doc:"Record name: the server hostname or the IoT broker domain."`
	Type         string         `json:"type" required:"true" enum:"A,AAAA,CNAME" doc:"A and AAAA take aliases (a load balancer), CNAME takes values."`
	TTL          int64          `json:"ttl" default:"60" min:"0" doc:"TTL of CNAME records."`
	Primary      FailoverTarget `json:"primary" required:"true" doc:"The primary region's target and health check."`
	Secondary    FailoverTarget `json:"secondary" required:"true" doc:"The DR region's target and health check."`
	PollInterval time.Duration  `json:"poll_interval" default:"2s" doc:"How often to ask whether the change is INSYNC."`
}

// FailoverOutputs of route53_failover_records.
type FailoverOutputs struct {
	Previous []FailoverRecord `json:"previous" doc:"The records at the name and type before (a simple record, or failover records)."`
	Records  []FailoverRecord `json:"records" doc:"The PRIMARY and SECONDARY records after."`
	ChangeID string           `json:"change_id"`
	Changed  bool             `json:"changed"`
	Duration time.Duration    `json:"duration"`
}

// FailoverAction returns the route53_failover_records action.
func FailoverAction() plugin.Action {
	return plugin.NewAction("route53_failover_records", applyFailover).
		ControlPlane(controlPlane).
		Doc("Makes a name answer through a Route 53 failover pair: a PRIMARY record (the primary region's target) and a SECONDARY one (the DR region's), each bound to a health check, replacing a simple record of the name in the same atomic change. With the RECOVERY_CONTROL health checks of Route 53 ARC routing controls (aws.arc_setup), the answer then follows the routing controls, flipped on the data plane (aws.arc_routing_controls). Peacetime setup: this calls Route 53's control plane. Idempotent.").
		Permissions(FailoverRecordsPermissions...).
		Idempotent().
		Validate(validateFailover).
		Plan(planFailover)
}

func validateFailover(req plugin.ValidateRequest[FailoverParams]) []plugin.Diagnostic {
	p := req.Params
	var diags []plugin.Diagnostic
	if !req.Unknown("/zone_id") && !req.Unknown("/zone_name") && (p.ZoneID == "") == (p.ZoneName == "") {
		diags = append(diags, plugin.Errorf("", "give exactly one of zone_id and zone_name"))
	}
	if req.Unknown("/type") {
		return diags
	}
	for _, side := range []struct {
		path string
		t    FailoverTarget
	}{{"/primary", p.Primary}, {"/secondary", p.Secondary}} {
		if req.Unknown(side.path) {
			continue
		}
		if p.Type == "CNAME" && (side.t.Value == "" && !req.Unknown(side.path+"/value") || side.t.Alias != nil) {
			diags = append(diags, plugin.Errorf(side.path, "a CNAME takes value (and no alias)"))
		}
		if p.Type != "CNAME" && (side.t.Alias == nil && !req.Unknown(side.path+"/alias") || side.t.Value != "") {
			diags = append(diags, plugin.Errorf(side.path, "an %s record takes alias (the load balancer; and no value)", p.Type))
		}
	}
	return diags
}

func (p FailoverParams) wanted(z zone) []FailoverRecord {
	var out []FailoverRecord
	for _, side := range []struct {
		failover, sid string
		t             FailoverTarget
	}{{"PRIMARY", "primary", p.Primary}, {"SECONDARY", "secondary", p.Secondary}} {
		r := Record{Exists: true, ZoneID: z.ID, Name: normalizeName(p.Name), Type: p.Type}
		if side.t.Alias != nil {
			a := *side.t.Alias
			a.DNSName = strings.TrimSuffix(a.DNSName, ".")
			r.Alias = &a
		} else {
			r.TTL, r.Values = p.TTL, []string{side.t.Value}
		}
		sid := side.t.SetIdentifier
		if sid == "" {
			sid = side.sid
		}
		out = append(out, FailoverRecord{Record: r, SetIdentifier: sid, Failover: side.failover, HealthCheckID: side.t.HealthCheckID})
	}
	return out
}

func toFailoverSet(r FailoverRecord) types.ResourceRecordSet {
	rs := toRecordSet(r.Record)
	rs.SetIdentifier, rs.Failover, rs.HealthCheckId = aws.String(r.SetIdentifier), types.ResourceRecordSetFailover(r.Failover), aws.String(r.HealthCheckID)
	return rs
}

func fromFailoverSet(zoneID string, rs types.ResourceRecordSet) FailoverRecord {
	return FailoverRecord{Record: fromRecordSet(zoneID, rs), SetIdentifier: aws.ToString(rs.SetIdentifier), Failover: string(rs.Failover), HealthCheckID: aws.ToString(rs.HealthCheckId)}
}

func sameFailover(a, b FailoverRecord) bool {
	return same(a.Record, b.Record) && a.SetIdentifier == b.SetIdentifier && a.Failover == b.Failover && a.HealthCheckID == b.HealthCheckID
}

// failoverChanges reads the name and returns the zone, what is there, what is
// wanted and the changes (none when everything is as wanted).
func failoverChanges(ctx context.Context, c *r53.Client, p FailoverParams) (zone, []FailoverRecord, []FailoverRecord, []types.Change, error) {
	z, err := resolveZone(ctx, c, Params{ZoneID: p.ZoneID, ZoneName: p.ZoneName, PrivateZone: p.PrivateZone})
	if err != nil {
		return z, nil, nil, nil, err
	}
	name := normalizeName(p.Name)
	if name != z.Name && !strings.HasSuffix(name, "."+z.Name) {
		return z, nil, nil, nil, plugin.FatalCode("NameOutsideZone", "%s is not in hosted zone %s (%s)", name, z.ID, z.Name)
	}
	sets, err := recordSetsAt(ctx, c, z, name)
	if err != nil {
		return z, nil, nil, nil, err
	}
	want := p.wanted(z)
	var have []FailoverRecord
	var changes []types.Change
	matched := map[string]bool{}
	for i, rs := range sets {
		if !conflicts(string(rs.Type), p.Type) {
			continue
		}
		r := fromFailoverSet(z.ID, rs)
		have = append(have, r)
		sid := aws.ToString(rs.SetIdentifier)
		switch {
		case sid == "":
			// A simple record (or a CNAME where an alias goes): replaced by the pair.
			changes = append(changes, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: &sets[i]})
		case string(rs.Type) == p.Type && rs.Failover != "" && (sid == want[0].SetIdentifier || sid == want[1].SetIdentifier):
			// Ours: left alone if as wanted, else rewritten by an UPSERT below.
			for _, w := range want {
				if w.SetIdentifier == sid && sameFailover(r, w) {
					matched[sid] = true
				}
			}
		default:
			return z, nil, nil, nil, plugin.FatalCode("ConflictingRecords", "%s %s in zone %s has another routing policy or set identifier (%q); refusing to replace it", rs.Type, name, z.ID, sid)
		}
	}
	for _, w := range want {
		if !matched[w.SetIdentifier] {
			rs := toFailoverSet(w)
			changes = append(changes, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs})
		}
	}
	return z, have, want, changes, nil
}

func describeFailover(rs []FailoverRecord) string {
	if len(rs) == 0 {
		return "(none)"
	}
	var parts []string
	for _, r := range rs {
		s := describe(r.Record)
		if r.Failover != "" {
			s = r.Failover + " " + s + " health check " + r.HealthCheckID
		}
		parts = append(parts, s)
	}
	return strings.Join(parts, "; ")
}

func applyFailover(ctx context.Context, req plugin.Request[FailoverParams]) (FailoverOutputs, error) {
	start := time.Now()
	p := req.Params
	c, err := client(ctx, p.GlobalParams)
	if err != nil {
		return FailoverOutputs{}, err
	}
	z, have, want, changes, err := failoverChanges(ctx, c, p)
	if err != nil {
		return FailoverOutputs{}, err
	}
	req.Progress("current records: "+describeFailover(have), "zone", z.ID, "name", normalizeName(p.Name))
	out := FailoverOutputs{Previous: have, Records: want}
	if out.Previous == nil {
		out.Previous = []FailoverRecord{}
	}
	if len(changes) == 0 {
		out.Duration = time.Since(start)
		return out, nil
	}
	resp, err := c.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{HostedZoneId: aws.String(z.ID), ChangeBatch: &types.ChangeBatch{
		Comment: aws.String(fmt.Sprintf("runbook %s/%s", req.RunID, req.StepID)), Changes: changes}})
	if err != nil {
		return FailoverOutputs{}, classify(err, "writing the failover records of %s %s in hosted zone %s", p.Type, p.Name, z.ID)
	}
	id := strings.TrimPrefix(aws.ToString(resp.ChangeInfo.Id), "/change/")
	req.Progress("change submitted: "+describeFailover(want), "change_id", id)
	if err := waitInsync(ctx, c, req.Progress, id, resp.ChangeInfo.Status, p.PollInterval); err != nil {
		return FailoverOutputs{}, err
	}
	out.ChangeID, out.Changed, out.Duration = id, true, time.Since(start)
	return out, nil
}

func planFailover(ctx context.Context, req plugin.PlanRequest[FailoverParams]) (plugin.Plan, error) {
	p := req.Params
	resource := fmt.Sprintf("route53 failover records %s %s", p.Type, p.Name)
	for _, path := range []string{"/zone_id", "/zone_name", "/name", "/type", "/primary", "/secondary", "/region", "/endpoint_url", "/profile"} {
		if req.Unknown(path) {
			return plugin.Plan{Summary: "write failover records known only at run time", Changes: []plugin.Change{{Resource: resource, AfterUnknown: true, Kind: plugin.ChangeUpdate}}}, nil
		}
	}
	c, err := client(ctx, p.GlobalParams)
	if err != nil {
		return plugin.Plan{}, err
	}
	_, have, want, changes, err := failoverChanges(ctx, c, p)
	if err != nil {
		return plugin.Plan{}, err
	}
	ch := plugin.Change{Resource: resource, Before: have, After: want, Kind: plugin.ChangeUpdate}
	switch {
	case len(changes) == 0:
		ch.Kind = plugin.ChangeNoop
	case len(have) == 0:
		ch.Kind, ch.Before = plugin.ChangeCreate, nil
	case have[0].Failover == "":
		ch.Kind = plugin.ChangeReplace
	}
	return plugin.Plan{Summary: fmt.Sprintf("%s: %s -> %s", normalizeName(p.Name), describeFailover(have), describeFailover(want)), Changes: []plugin.Change{ch}}, nil
}

// FailoverRecordsPermissions are the IAM permissions of
// route53_failover_records: those of route53_record (no restore).
var FailoverRecordsPermissions = []plugin.Permission{
	{Actions: []string{"route53:ListHostedZonesByName"}, When: "zone_name"},
	{Actions: []string{"route53:GetHostedZone", "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"},
		Resources: []string{"arn:{partition}:route53:::hostedzone/${zone_id}"}},
	{Actions: []string{"route53:GetChange"}, Resources: []string{"arn:{partition}:route53:::change/*"}},
}
