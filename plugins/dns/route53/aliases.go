package route53

import (
	"context"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// AliasesParams of route53_aliases.
type AliasesParams struct {
	awscommon.GlobalParams
	ZoneID       string        `json:"zone_id" doc:"Hosted zone id (with or without /hostedzone/)."`
	ZoneName     string        `json:"zone_name" doc:"Instead of zone_id: the zone's domain name (e.g. myorg.com)."`
	PrivateZone  *bool         `json:"private_zone" doc:"With zone_name, when a public and a private zone share the name: which one."`
	Name         string        `json:"name" doc:"The host name whose alias records move, e.g. spacelift.myorg.com. Required unless restore gives it."`
	Alias        *Alias        `json:"alias" doc:"The target every A and AAAA alias record of the name is pointed at (the load balancer's dualstack name serves both)."`
	Require      []string      `json:"require" default:"[\"A\"]" doc:"Alias record types the name must have (A, AAAA); the step refuses if one is missing. Give [A, AAAA] for a dual-stack hostname."`
	Restore      []Record      `json:"restore" doc:"Instead of alias: put back the alias records an earlier step's previous output lists, in one change."`
	PollInterval time.Duration `json:"poll_interval" default:"2s" doc:"How often to ask whether the change is INSYNC."`
}

// AliasesOutputs of route53_aliases.
type AliasesOutputs struct {
	Previous []Record      `json:"previous" doc:"The name's alias records before the step, one per type (A, then AAAA); give it as restore to undo."`
	Records  []Record      `json:"records" doc:"The name's alias records after the step."`
	Types    []string      `json:"types" doc:"The types of the alias records the name has (and the step pointed at the target), e.g. [A, AAAA]."`
	Left     []string      `json:"left_alone" doc:"Other record sets at the name, which do not carry its traffic and were not touched (e.g. TXT, MX, CAA)."`
	ChangeID string        `json:"change_id" doc:"Route 53 change id; empty when nothing needed changing."`
	Changed  bool          `json:"changed"`
	Duration time.Duration `json:"duration"`
}

// AliasesAction returns the route53_aliases action.
func AliasesAction() plugin.Action {
	return plugin.NewAction("route53_aliases", applyAliases).
		Doc("Points every alias record of a name (its A alias and, on a dual-stack hostname, its AAAA alias) at one target in a single atomic Route 53 change, and waits until it is INSYNC. " +
			"It lists every record set the zone has at the name and refuses, naming it, what it cannot move safely: a CNAME, a non-alias A/AAAA record, an HTTPS/SVCB record, or a record with a routing policy (failover, weighted, latency, geolocation, ...). " +
			"Outputs the previous alias records per type, so a rollback is `restore: <previous>` (or the same action pointed back). Idempotent: records already at the target are left alone.").
		Permissions(AliasesPermissions...).
		Idempotent().
		ControlPlane(controlPlane).
		Validate(validateAliases).
		Plan(planAliases)
}

// AliasesPermissions are the IAM permissions of route53_aliases: those of
// route53_record, the zone named by zone_id or by the restored records.
var AliasesPermissions = []plugin.Permission{
	{Actions: []string{"route53:ListHostedZonesByName"}, When: "zone_name"},
	{Actions: []string{"route53:GetHostedZone", "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"},
		Resources: []string{"arn:{partition}:route53:::hostedzone/${zone_id}", "arn:{partition}:route53:::hostedzone/${restore.*.zone_id}"}},
	{Actions: []string{"route53:GetChange"}, Resources: []string{"arn:{partition}:route53:::change/*"}},
}

func validateAliases(req plugin.ValidateRequest[AliasesParams]) []plugin.Diagnostic {
	p := req.Params
	var diags []plugin.Diagnostic
	hasAlias, hasRestore := p.Alias != nil || req.Unknown("/alias"), p.Restore != nil || req.Unknown("/restore")
	if hasAlias == hasRestore {
		diags = append(diags, plugin.Errorf("", "give exactly one of alias or restore"))
	}
	diags = append(diags, zoneDiags(hasRestore, p.Name, p.ZoneID, p.ZoneName, req.Unknown)...)
	for i, t := range p.Require {
		if t != "A" && t != "AAAA" {
			diags = append(diags, plugin.Errorf(fmt.Sprintf("/require/%d", i), "an alias record that carries traffic is of type A or AAAA, not %q", t))
		}
	}
	return diags
}

// aliasState is what the zone has at the name, and what the step wants.
type aliasState struct {
	zone      zone
	name      string
	cur, want []Record
	sets      map[string]types.ResourceRecordSet // current alias record sets by type
	left      []string
}

// routingPolicy names the routing policy of a record set with a set
// identifier (Route 53 API reference, ResourceRecordSet).
func routingPolicy(rs types.ResourceRecordSet) string {
	switch {
	case rs.Failover != "":
		return "failover routing (" + string(rs.Failover) + ")"
	case rs.Weight != nil:
		return "weighted routing"
	case rs.Region != "":
		return "latency routing (" + string(rs.Region) + ")"
	case rs.GeoLocation != nil:
		return "geolocation routing"
	case rs.GeoProximityLocation != nil:
		return "geoproximity routing"
	case rs.CidrRoutingConfig != nil:
		return "IP-based routing"
	case aws.ToBool(rs.MultiValueAnswer):
		return "multivalue answer routing"
	}
	return "a routing policy"
}

// readAliases lists the name's record sets and sorts them into alias records
// to move and others to leave alone, refusing what it cannot move safely.
func readAliases(ctx context.Context, c *r53.Client, p AliasesParams) (aliasState, error) {
	name := p.Name
	zoneID := p.ZoneID
	if len(p.Restore) > 0 {
		name, zoneID = p.Restore[0].Name, p.Restore[0].ZoneID
		if p.ZoneID != "" || p.ZoneName != "" {
			zoneID = p.ZoneID
		}
		for _, r := range p.Restore {
			if normalizeName(r.Name) != normalizeName(name) || !r.Exists || r.Alias == nil || (r.Type != "A" && r.Type != "AAAA") {
				return aliasState{}, plugin.FatalCode("InvalidParams", "restore lists %s, which is not an A or AAAA alias record of %s (give an earlier route53_aliases step's previous output)", describe(r), name)
			}
		}
	}
	z, err := findZone(ctx, c, zoneID, p.ZoneName, p.PrivateZone)
	if err != nil {
		return aliasState{}, err
	}
	st := aliasState{zone: z, name: normalizeName(name), sets: map[string]types.ResourceRecordSet{}}
	if st.name != z.Name && !strings.HasSuffix(st.name, "."+z.Name) {
		return aliasState{}, plugin.FatalCode("NameOutsideZone", "%s is not in hosted zone %s (%s)", st.name, z.ID, z.Name)
	}
	sets, err := recordSetsAt(ctx, c, z, st.name)
	if err != nil {
		return aliasState{}, err
	}
	var refuse []string
	for _, rs := range sets {
		t := string(rs.Type)
		switch {
		case t != "A" && t != "AAAA" && t != "CNAME" && t != "HTTPS" && t != "SVCB":
			st.left = append(st.left, t)
		case aws.ToString(rs.SetIdentifier) != "":
			refuse = append(refuse, fmt.Sprintf("%s record with %s (set identifier %q)", t, routingPolicy(rs), aws.ToString(rs.SetIdentifier)))
		case t == "CNAME":
			refuse = append(refuse, "a CNAME record ("+describe(fromRecordSet(z.ID, rs))+")")
		case t == "HTTPS" || t == "SVCB":
			refuse = append(refuse, fmt.Sprintf("an %s record (its address hints may name the old region)", t))
		case rs.AliasTarget == nil:
			refuse = append(refuse, "a non-alias "+describe(fromRecordSet(z.ID, rs)))
		default:
			st.sets[t] = rs
			st.cur = append(st.cur, fromRecordSet(z.ID, rs))
		}
	}
	if len(refuse) > 0 {
		return aliasState{}, plugin.FatalCode("UnsupportedRecord", "%s in hosted zone %s has %s; this action moves simple A/AAAA alias records only: change the zone by hand or with route53_record", st.name, z.ID, strings.Join(refuse, ", "))
	}
	sort.Slice(st.cur, func(i, j int) bool { return st.cur[i].Type < st.cur[j].Type })
	sort.Strings(st.left)
	require := p.Require
	if len(p.Restore) > 0 {
		require = nil
	}
	for _, t := range require {
		if _, ok := st.sets[t]; !ok {
			return aliasState{}, plugin.FatalCode("MissingAlias", "%s in hosted zone %s has no %s alias record (it has %s); nothing would move its %s traffic", st.name, z.ID, t, typesOf(st.cur), t)
		}
	}
	if len(st.cur) == 0 && len(p.Restore) == 0 {
		return aliasState{}, plugin.FatalCode("MissingAlias", "%s in hosted zone %s has no A or AAAA alias record to move", st.name, z.ID)
	}
	if len(p.Restore) > 0 {
		for _, r := range p.Restore {
			r.Name, r.ZoneID = st.name, z.ID
			st.want = append(st.want, r)
		}
		sort.Slice(st.want, func(i, j int) bool { return st.want[i].Type < st.want[j].Type })
		return st, nil
	}
	for _, r := range st.cur {
		w := r
		a := *p.Alias
		w.Alias = &a
		st.want = append(st.want, w)
	}
	return st, nil
}

func typesOf(rs []Record) string {
	if len(rs) == 0 {
		return "none"
	}
	var out []string
	for _, r := range rs {
		out = append(out, r.Type)
	}
	return strings.Join(out, " and ")
}

func (st aliasState) types() []string {
	out := []string{}
	for _, r := range st.want {
		out = append(out, r.Type)
	}
	return out
}

// curOf returns the current alias record of a type (exists false if none).
func (st aliasState) curOf(typ string) Record {
	for _, r := range st.cur {
		if r.Type == typ {
			return r
		}
	}
	return Record{ZoneID: st.zone.ID, Name: st.name, Type: typ}
}

// changes are the UPSERTs of the records not yet as wanted; the health check
// of a record (if any) stays with it.
func (st aliasState) changes() []types.Change {
	var out []types.Change
	for _, w := range st.want {
		if same(st.curOf(w.Type), w) {
			continue
		}
		rs := toRecordSet(w)
		if old, ok := st.sets[w.Type]; ok {
			rs.HealthCheckId = old.HealthCheckId
		}
		out = append(out, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs})
	}
	return out
}

func describeAll(rs []Record) string {
	if len(rs) == 0 {
		return "(none)"
	}
	var out []string
	for _, r := range rs {
		out = append(out, describe(r))
	}
	return strings.Join(out, "; ")
}

func applyAliases(ctx context.Context, req plugin.Request[AliasesParams]) (AliasesOutputs, error) {
	start := time.Now()
	p := req.Params
	c, err := client(ctx, p.GlobalParams)
	if err != nil {
		return AliasesOutputs{}, err
	}
	st, err := readAliases(ctx, c, p)
	if err != nil {
		return AliasesOutputs{}, err
	}
	// Journaled before anything changes (see route53_record).
	req.Progress("current alias records: "+describeAll(st.cur), "zone", st.zone.ID, "name", st.name)
	out := AliasesOutputs{Previous: st.cur, Types: st.types(), Left: st.left}
	if out.Previous == nil {
		out.Previous = []Record{}
	}
	if len(st.left) > 0 {
		req.Progress("left alone: "+strings.Join(st.left, ", ")+" (they do not carry the name's traffic)", "name", st.name)
	}
	changes := st.changes()
	if len(changes) == 0 {
		req.Progress("alias records already as requested: nothing to do", "records", describeAll(st.want))
		out.Records, out.Duration = st.want, time.Since(start)
		return out, nil
	}
	resp, err := c.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(st.zone.ID),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String(fmt.Sprintf("runbook %s/%s", req.RunID, req.StepID)),
			Changes: changes,
		},
	})
	if err != nil {
		return AliasesOutputs{}, classify(err, "changing the alias records of %s in hosted zone %s from %s to %s", st.name, st.zone.ID, describeAll(st.cur), describeAll(st.want))
	}
	id := strings.TrimPrefix(aws.ToString(resp.ChangeInfo.Id), "/change/")
	req.Progress("change submitted: "+describeAll(st.cur)+" -> "+describeAll(st.want), "change_id", id, "status", string(resp.ChangeInfo.Status))
	if err := waitInsync(ctx, c, req.Progress, id, resp.ChangeInfo.Status, p.PollInterval); err != nil {
		return AliasesOutputs{}, err
	}
	out.Records, out.ChangeID, out.Changed, out.Duration = st.want, id, true, time.Since(start)
	return out, nil
}

func planAliases(ctx context.Context, req plugin.PlanRequest[AliasesParams]) (plugin.Plan, error) {
	p := req.Params
	resource := "route53 alias records " + p.Name
	for _, path := range []string{"/zone_id", "/zone_name", "/name", "/restore", "/region", "/endpoint_url", "/profile"} {
		if req.Unknown(path) {
			return plugin.Plan{Summary: "point alias records known only at run time", Changes: []plugin.Change{{Resource: resource, AfterUnknown: true, Kind: plugin.ChangeUpdate}}}, nil
		}
	}
	if req.Unknown("/alias") {
		p.Alias = &Alias{}
	}
	c, err := client(ctx, p.GlobalParams)
	if err != nil {
		return plugin.Plan{}, err
	}
	st, err := readAliases(ctx, c, p)
	if err != nil {
		return plugin.Plan{}, err
	}
	var changes []plugin.Change
	var parts []string
	for _, w := range st.want {
		cur := st.curOf(w.Type)
		ch := plugin.Change{Resource: fmt.Sprintf("route53 record %s %s (zone %s)", w.Type, st.name, st.zone.ID), Before: recordValue(cur), After: recordValue(w), Kind: plugin.ChangeUpdate}
		switch {
		case req.Unknown("/alias"):
			ch.After, ch.AfterUnknown = nil, true
			parts = append(parts, describe(cur)+" -> (known at run time)")
		case same(cur, w):
			ch.Kind = plugin.ChangeNoop
			parts = append(parts, describe(cur)+" (unchanged)")
		case !cur.Exists:
			ch.Kind = plugin.ChangeCreate
			parts = append(parts, "(none) -> "+describe(w))
		default:
			parts = append(parts, describe(cur)+" -> "+describe(w))
		}
		changes = append(changes, ch)
	}
	return plugin.Plan{Summary: st.name + ": " + strings.Join(parts, "; "), Changes: changes}, nil
}
