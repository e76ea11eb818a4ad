// Package route53 is the route53_record action of runbook-plugin-dns: it
// points a DNS name at a new target in a Route 53 hosted zone (a CNAME, or
// an alias to a load balancer), waits until the change is INSYNC, and
// returns the previous record so that a rollback step can put it back.
package route53

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	smithyhttp "github.com/aws/smithy-go/transport/http"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sdk/plugin"
)

// Alias is an alias target (a load balancer, a CloudFront distribution...).
type Alias struct {
	DNSName              string `json:"dns_name" required:"true" doc:"DNS name of the target, e.g. the load balancer's (dualstack.)name."`
	HostedZoneID         string `json:"hosted_zone_id" required:"true" doc:"The target's own hosted zone id (the load balancer's canonical hosted zone id, Z2FDTNDATAQYW2 for CloudFront)."`
	EvaluateTargetHealth bool   `json:"evaluate_target_health" doc:"Answer only while the target is healthy."`
}

// Record is one record set as the action reads and writes it; it is also
// the shape of the previous and record outputs, so `restore` takes a
// previous output as it is.
type Record struct {
	Exists bool     `json:"exists" doc:"False when there was no such record."`
	ZoneID string   `json:"zone_id" doc:"Hosted zone id."`
	Name   string   `json:"name" doc:"Fully qualified name, without the trailing dot."`
	Type   string   `json:"type" doc:"CNAME, A, AAAA or TXT."`
	TTL    int64    `json:"ttl,omitempty" doc:"TTL in seconds (not for aliases)."`
	Values []string `json:"values,omitempty" doc:"Record values (not for aliases)."`
	Alias  *Alias   `json:"alias,omitempty" doc:"Alias target, for alias records."`
}

// Params of route53_record.
type Params struct {
	awscommon.GlobalParams
	ZoneID       string        `json:"zone_id" doc:"Hosted zone id (with or without /hostedzone/)."`
	ZoneName     string        `json:"zone_name" doc:"Instead of zone_id: the zone's domain name (e.g. myorg.com)."`
	PrivateZone  *bool         `json:"private_zone" doc:"With zone_name, when a public and a private zone share the name: which one."`
	Name         string        `json:"name" doc:"Record name, e.g. spacelift.myorg.com. Required unless restore gives it."`
	Type         string        `json:"type" enum:"CNAME,A,AAAA,TXT" doc:"Record type; default CNAME with value, A with alias."`
	Value        string        `json:"value" doc:"The record's value (a CNAME's target host name)."`
	TTL          int64         `json:"ttl" default:"60" min:"0" doc:"TTL in seconds, with value."`
	Alias        *Alias        `json:"alias" doc:"Instead of value: an alias target."`
	Delete       bool          `json:"delete" doc:"Delete the record (name, type) instead of writing it."`
	Restore      *Record       `json:"restore" doc:"Put back a record as an earlier step's previous output describes it: write it if it existed, delete the record if it did not."`
	PollInterval time.Duration `json:"poll_interval" default:"2s" doc:"How often to ask whether the change is INSYNC."`
}

// Outputs of route53_record.
type Outputs struct {
	Previous Record        `json:"previous" doc:"The record before the step (exists false if there was none); give it as restore to undo."`
	Record   Record        `json:"record" doc:"The record after the step (exists false after a delete)."`
	ChangeID string        `json:"change_id" doc:"Route 53 change id; empty when nothing needed changing."`
	Changed  bool          `json:"changed"`
	Duration time.Duration `json:"duration"`
}

// controlPlane is Route 53's (ChangeResourceRecordSets, GetChange), served
// from us-east-1 only ("AWS Fault Isolation Boundaries", Global services).
var controlPlane = plugin.ControlPlane{Service: "Route 53", Region: "us-east-1"}

// Action returns the route53_record action.
func Action() plugin.Action {
	return plugin.NewAction("route53_record", apply).
		Doc("Writes a Route 53 record (UPSERT of a CNAME value with a TTL, or of an alias target) in a hosted zone given by id or name, or deletes it, and waits until the change is INSYNC. A record of a conflicting type at the name (a CNAME replacing an A alias or the reverse) is replaced in the same atomic change. Outputs the full previous record (or exists: false), so a rollback is `restore: <previous>`. Idempotent: a record already as requested is left alone.").
		Permissions(Permissions...).
		Idempotent().
		ControlPlane(controlPlane).
		Validate(validate).
		Plan(plan)
}

// Permissions are the IAM permissions of route53_record (Service
// Authorization Reference, "Actions, resources, and condition keys for
// Amazon Route 53"): the zone is found by name only when zone_name is
// given (ListHostedZonesByName has no resource type), then read and
// changed by id; GetChange is on the change.
var Permissions = []plugin.Permission{
	{Actions: []string{"route53:ListHostedZonesByName"}, When: "zone_name"},
	{Actions: []string{"route53:GetHostedZone", "route53:ListResourceRecordSets", "route53:ChangeResourceRecordSets"},
		Resources: []string{"arn:{partition}:route53:::hostedzone/${zone_id}", "arn:{partition}:route53:::hostedzone/${restore.zone_id}"}},
	{Actions: []string{"route53:GetChange"}, Resources: []string{"arn:{partition}:route53:::change/*"}},
}

func validate(req plugin.ValidateRequest[Params]) []plugin.Diagnostic {
	p := req.Params
	var diags []plugin.Diagnostic
	modes := 0
	for _, set := range []bool{p.Value != "" || req.Unknown("/value"), p.Alias != nil, p.Delete, p.Restore != nil || req.Unknown("/restore")} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		diags = append(diags, plugin.Errorf("", "give exactly one of value, alias, delete: true, or restore"))
	}
	diags = append(diags, zoneDiags(p.Restore != nil || req.Unknown("/restore"), p.Name, p.ZoneID, p.ZoneName, req.Unknown)...)
	if p.Alias != nil && p.Type != "" && p.Type != "A" && p.Type != "AAAA" {
		diags = append(diags, plugin.Errorf("/type", "an alias record is of type A or AAAA, not %s", p.Type))
	}
	if p.Delete && p.Type == "" && !req.Unknown("/type") {
		diags = append(diags, plugin.Errorf("/type", "delete needs the record's type"))
	}
	return diags
}

// zoneDiags checks the name and zone parameters, which a restore may leave
// out (its record carries them).
func zoneDiags(restore bool, name, zoneID, zoneName string, unknown func(string) bool) []plugin.Diagnostic {
	var diags []plugin.Diagnostic
	if !restore {
		if name == "" && !unknown("/name") {
			diags = append(diags, plugin.Errorf("/name", "name is required"))
		}
		if zoneID == "" && zoneName == "" && !unknown("/zone_id") && !unknown("/zone_name") {
			diags = append(diags, plugin.Errorf("", "give zone_id or zone_name"))
		}
	}
	if zoneID != "" && zoneName != "" {
		diags = append(diags, plugin.Errorf("/zone_name", "give zone_id or zone_name, not both"))
	}
	return diags
}

// desired is what the step asks for: a record to write, or one to delete
// (Exists false).
func (p Params) desired() (Record, error) {
	switch {
	case p.Restore != nil:
		r := *p.Restore
		if r.Name == "" || r.Type == "" {
			return Record{}, plugin.FatalCode("InvalidParams", "restore needs at least name and type (give an earlier step's previous output)")
		}
		r.Name = normalizeName(r.Name)
		if r.Exists && r.Alias == nil && len(r.Values) == 0 {
			return Record{}, plugin.FatalCode("InvalidParams", "restore of %s %s has neither values nor alias", r.Type, r.Name)
		}
		return r, nil
	case p.Delete:
		return Record{Name: normalizeName(p.Name), Type: p.Type}, nil
	case p.Alias != nil:
		t := p.Type
		if t == "" {
			t = "A"
		}
		a := *p.Alias
		return Record{Exists: true, Name: normalizeName(p.Name), Type: t, Alias: &a}, nil
	default:
		t := p.Type
		if t == "" {
			t = "CNAME"
		}
		return Record{Exists: true, Name: normalizeName(p.Name), Type: t, TTL: p.TTL, Values: []string{p.Value}}, nil
	}
}

func (p Params) zoneRef() (id, name string) {
	id, name = p.ZoneID, p.ZoneName
	if id == "" && name == "" && p.Restore != nil {
		id = p.Restore.ZoneID
	}
	return strings.TrimPrefix(id, "/hostedzone/"), name
}

// normalizeName is the comparable form of a DNS name: lower case, no
// trailing dot, Route 53's octal escape for '*' undone.
func normalizeName(n string) string {
	n = strings.ReplaceAll(n, `\052`, "*")
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
}

func fqdn(n string) string { return normalizeName(n) + "." }

// zone is a resolved hosted zone.
type zone struct {
	ID, Name string
}

func resolveZone(ctx context.Context, c *r53.Client, p Params) (zone, error) {
	id, name := p.zoneRef()
	return findZone(ctx, c, id, name, p.PrivateZone)
}

// findZone resolves a hosted zone by id, or by name (private choosing between
// a public and a private zone of that name).
func findZone(ctx context.Context, c *r53.Client, id, name string, private *bool) (zone, error) {
	id = strings.TrimPrefix(id, "/hostedzone/")
	if id != "" {
		out, err := c.GetHostedZone(ctx, &r53.GetHostedZoneInput{Id: aws.String(id)})
		if err != nil {
			if awscommon.IsCode(err, "NoSuchHostedZone") {
				return zone{}, plugin.FatalCode("NoSuchHostedZone", "hosted zone %s not found", id)
			}
			return zone{}, classify(err, "reading hosted zone %s", id)
		}
		return zone{ID: strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/"), Name: normalizeName(aws.ToString(out.HostedZone.Name))}, nil
	}
	want := normalizeName(name)
	var matches []types.HostedZone
	in := &r53.ListHostedZonesByNameInput{DNSName: aws.String(fqdn(want))}
	for {
		out, err := c.ListHostedZonesByName(ctx, in)
		if err != nil {
			return zone{}, classify(err, "looking up hosted zone %s", want)
		}
		past := false
		for _, z := range out.HostedZones {
			zn := normalizeName(aws.ToString(z.Name))
			if zn != want {
				// Zones are listed in order from the name asked for.
				past = true
				break
			}
			if private != nil && (z.Config != nil && z.Config.PrivateZone) != *private {
				continue
			}
			matches = append(matches, z)
		}
		if past || !out.IsTruncated {
			break
		}
		in.DNSName, in.HostedZoneId = out.NextDNSName, out.NextHostedZoneId
	}
	switch len(matches) {
	case 0:
		return zone{}, plugin.FatalCode("NoSuchHostedZone", "no hosted zone named %s", want)
	case 1:
		return zone{ID: strings.TrimPrefix(aws.ToString(matches[0].Id), "/hostedzone/"), Name: want}, nil
	}
	var ids []string
	for _, z := range matches {
		kind := "public"
		if z.Config != nil && z.Config.PrivateZone {
			kind = "private"
		}
		ids = append(ids, strings.TrimPrefix(aws.ToString(z.Id), "/hostedzone/")+" ("+kind+")")
	}
	return zone{}, plugin.FatalCode("AmbiguousHostedZone", "%d hosted zones are named %s: %s; give zone_id or private_zone", len(matches), want, strings.Join(ids, ", "))
}

// conflicts reports whether records of types a and b cannot share a name.
func conflicts(a, b string) bool {
	if a == b {
		return true
	}
	return a == "CNAME" || b == "CNAME"
}

// current reads the record sets at name, returning the one the step
// replaces (same type, or of a type that cannot coexist with it) and the
// raw set, which a DELETE must match exactly.
func current(ctx context.Context, c *r53.Client, z zone, name, typ string) (Record, *types.ResourceRecordSet, error) {
	found, err := recordSetsAt(ctx, c, z, name)
	if err != nil {
		return Record{}, nil, err
	}
	var hits []types.ResourceRecordSet
	for _, rs := range found {
		if conflicts(string(rs.Type), typ) {
			hits = append(hits, rs)
		}
	}
	if len(hits) == 0 {
		return Record{ZoneID: z.ID, Name: name, Type: typ}, nil, nil
	}
	var kinds []string
	for _, rs := range hits {
		if aws.ToString(rs.SetIdentifier) != "" {
			return Record{}, nil, plugin.FatalCode("UnsupportedRecord", "%s %s in zone %s uses a routing policy (set identifier %q); this action manages simple records only", rs.Type, name, z.ID, aws.ToString(rs.SetIdentifier))
		}
		kinds = append(kinds, string(rs.Type))
	}
	if len(hits) > 1 {
		return Record{}, nil, plugin.FatalCode("ConflictingRecords", "%s in zone %s has %s records, which a %s record cannot coexist with; refusing to replace more than one record", name, z.ID, strings.Join(kinds, " and "), typ)
	}
	rs := hits[0]
	return fromRecordSet(z.ID, rs), &rs, nil
}

// recordSetsAt lists every record set at exactly name (all types, all set
// identifiers), reading from the name on (ListResourceRecordSets lists in
// name order from StartRecordName).
func recordSetsAt(ctx context.Context, c *r53.Client, z zone, name string) ([]types.ResourceRecordSet, error) {
	in := &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(z.ID), StartRecordName: aws.String(fqdn(name))}
	var found []types.ResourceRecordSet
	for {
		out, err := c.ListResourceRecordSets(ctx, in)
		if err != nil {
			if awscommon.IsCode(err, "NoSuchHostedZone") {
				return nil, plugin.FatalCode("NoSuchHostedZone", "hosted zone %s not found", z.ID)
			}
			return nil, classify(err, "listing records %s in hosted zone %s", name, z.ID)
		}
		past := false
		for _, rs := range out.ResourceRecordSets {
			if normalizeName(aws.ToString(rs.Name)) != name {
				past = true
				break
			}
			found = append(found, rs)
		}
		if past || !out.IsTruncated {
			break
		}
		in.StartRecordName, in.StartRecordType, in.StartRecordIdentifier = out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier
	}
	return found, nil
}

func fromRecordSet(zoneID string, rs types.ResourceRecordSet) Record {
	r := Record{Exists: true, ZoneID: zoneID, Name: normalizeName(aws.ToString(rs.Name)), Type: string(rs.Type)}
	if rs.AliasTarget != nil {
		r.Alias = &Alias{
			DNSName:              strings.TrimSuffix(aws.ToString(rs.AliasTarget.DNSName), "."),
			HostedZoneID:         aws.ToString(rs.AliasTarget.HostedZoneId),
			EvaluateTargetHealth: rs.AliasTarget.EvaluateTargetHealth,
		}
		return r
	}
	r.TTL = aws.ToInt64(rs.TTL)
	for _, v := range rs.ResourceRecords {
		r.Values = append(r.Values, aws.ToString(v.Value))
	}
	return r
}

func toRecordSet(r Record) types.ResourceRecordSet {
	rs := types.ResourceRecordSet{Name: aws.String(fqdn(r.Name)), Type: types.RRType(r.Type)}
	if r.Alias != nil {
		rs.AliasTarget = &types.AliasTarget{
			DNSName: aws.String(r.Alias.DNSName), HostedZoneId: aws.String(r.Alias.HostedZoneID), EvaluateTargetHealth: r.Alias.EvaluateTargetHealth,
		}
		return rs
	}
	rs.TTL = aws.Int64(r.TTL)
	for _, v := range r.Values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs
}

// same reports whether two records answer the same (existence, type, TTL,
// values in any order, alias target).
func same(a, b Record) bool {
	if a.Exists != b.Exists {
		return false
	}
	if !a.Exists {
		return true
	}
	if a.Type != b.Type || (a.Alias == nil) != (b.Alias == nil) {
		return false
	}
	if a.Alias != nil {
		return normalizeName(a.Alias.DNSName) == normalizeName(b.Alias.DNSName) &&
			a.Alias.HostedZoneID == b.Alias.HostedZoneID && a.Alias.EvaluateTargetHealth == b.Alias.EvaluateTargetHealth
	}
	if a.TTL != b.TTL || len(a.Values) != len(b.Values) {
		return false
	}
	norm := func(vs []string) []string {
		out := make([]string, len(vs))
		for i, v := range vs {
			out[i] = strings.TrimSuffix(strings.ToLower(v), ".")
		}
		sort.Strings(out)
		return out
	}
	av, bv := norm(a.Values), norm(b.Values)
	for i := range av {
		if av[i] != bv[i] {
			return false
		}
	}
	return true
}

// changeBatch turns (current, desired) into Route 53 changes: an UPSERT
// for the same type, DELETE+CREATE when the type changes, DELETE to remove.
func changeBatch(cur Record, curSet *types.ResourceRecordSet, want Record) []types.Change {
	var changes []types.Change
	if !want.Exists {
		if curSet != nil && cur.Type == want.Type {
			changes = append(changes, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: curSet})
		}
		return changes
	}
	if curSet != nil && cur.Type != want.Type {
		changes = append(changes, types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: curSet})
		rs := toRecordSet(want)
		return append(changes, types.Change{Action: types.ChangeActionCreate, ResourceRecordSet: &rs})
	}
	rs := toRecordSet(want)
	return append(changes, types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs})
}

func describe(r Record) string {
	if !r.Exists {
		return "(none)"
	}
	if r.Alias != nil {
		return fmt.Sprintf("%s alias -> %s (zone %s)", r.Type, r.Alias.DNSName, r.Alias.HostedZoneID)
	}
	return fmt.Sprintf("%s %s (ttl %d)", r.Type, strings.Join(r.Values, ","), r.TTL)
}

func client(ctx context.Context, p awscommon.GlobalParams) (*r53.Client, error) {
	cfg, err := p.Conn().Config(ctx)
	if err != nil {
		return nil, err
	}
	return r53.NewFromConfig(cfg), nil
}

// read resolves the zone, the wanted record and the record it replaces.
func read(ctx context.Context, c *r53.Client, p Params) (zone, Record, Record, *types.ResourceRecordSet, error) {
	want, err := p.desired()
	if err != nil {
		return zone{}, Record{}, Record{}, nil, err
	}
	z, err := resolveZone(ctx, c, p)
	if err != nil {
		return zone{}, Record{}, Record{}, nil, err
	}
	if want.Name != z.Name && !strings.HasSuffix(want.Name, "."+z.Name) {
		return zone{}, Record{}, Record{}, nil, plugin.FatalCode("NameOutsideZone", "%s is not in hosted zone %s (%s)", want.Name, z.ID, z.Name)
	}
	want.ZoneID = z.ID
	cur, curSet, err := current(ctx, c, z, want.Name, want.Type)
	if err != nil {
		return zone{}, Record{}, Record{}, nil, err
	}
	return z, want, cur, curSet, nil
}

func apply(ctx context.Context, req plugin.Request[Params]) (Outputs, error) {
	start := time.Now()
	p := req.Params
	c, err := client(ctx, p.GlobalParams)
	if err != nil {
		return Outputs{}, err
	}
	z, want, cur, curSet, err := read(ctx, c, p)
	if err != nil {
		return Outputs{}, err
	}
	// Journaled before anything changes, so the old record survives even
	// an interruption between the change and the step's outputs.
	req.Progress("current record: "+describe(cur), "zone", z.ID, "name", want.Name)
	out := Outputs{Previous: cur}
	if !want.Exists && cur.Exists && cur.Type != want.Type {
		// Deleting a record that is not there (a conflicting type is).
		out.Previous = Record{ZoneID: z.ID, Name: want.Name, Type: want.Type}
		cur, curSet = out.Previous, nil
	}
	if same(cur, want) {
		req.Progress("record already as requested: nothing to do", "record", describe(want))
		out.Record, out.Duration = cur, time.Since(start)
		if !out.Record.Exists {
			out.Record = Record{ZoneID: z.ID, Name: want.Name, Type: want.Type}
		}
		return out, nil
	}
	changes := changeBatch(cur, curSet, want)
	resp, err := c.ChangeResourceRecordSets(ctx, &r53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(z.ID),
		ChangeBatch: &types.ChangeBatch{
			Comment: aws.String(fmt.Sprintf("runbook %s/%s", req.RunID, req.StepID)),
			Changes: changes,
		},
	})
	if err != nil {
		return Outputs{}, classify(err, "changing %s in hosted zone %s from %s to %s", want.Name, z.ID, describe(cur), describe(want))
	}
	id := strings.TrimPrefix(aws.ToString(resp.ChangeInfo.Id), "/change/")
	req.Progress("change submitted: "+describe(cur)+" -> "+describe(want), "change_id", id, "status", string(resp.ChangeInfo.Status))
	if err := waitInsync(ctx, c, req.Progress, id, resp.ChangeInfo.Status, p.PollInterval); err != nil {
		return Outputs{}, err
	}
	out.Record = want
	if !want.Exists {
		out.Record = Record{ZoneID: z.ID, Name: want.Name, Type: want.Type}
	}
	out.ChangeID, out.Changed, out.Duration = id, true, time.Since(start)
	return out, nil
}

// waitInsync waits until a submitted change is INSYNC, reporting each new
// status.
func waitInsync(ctx context.Context, c *r53.Client, progress func(string, ...any), id string, status types.ChangeStatus, interval time.Duration) error {
	// A change just submitted is PENDING: the first GetChange waits one
	// interval (an answer already INSYNC is taken at once).
	poll := awscommon.PollAfter
	if status == types.ChangeStatusInsync {
		poll = awscommon.Poll
	}
	return poll(ctx, interval, "Route 53 change "+id+" to be INSYNC", func(ctx context.Context) (bool, error) {
		if status == types.ChangeStatusInsync {
			return true, nil
		}
		g, err := c.GetChange(ctx, &r53.GetChangeInput{Id: aws.String(id)})
		if err != nil {
			return false, classify(err, "reading Route 53 change %s", id)
		}
		if g.ChangeInfo.Status != status {
			status = g.ChangeInfo.Status
			progress("change "+strings.ToLower(string(status)), "change_id", id)
		}
		return status == types.ChangeStatusInsync, nil
	})
}

func plan(ctx context.Context, req plugin.PlanRequest[Params]) (plugin.Plan, error) {
	p := req.Params
	resource := fmt.Sprintf("route53 record %s %s", p.Type, p.Name)
	for _, path := range []string{"/zone_id", "/zone_name", "/name", "/type", "/restore", "/region", "/endpoint_url", "/profile"} {
		if req.Unknown(path) {
			return plugin.Plan{Summary: "write a Route 53 record known only at run time", Changes: []plugin.Change{{Resource: resource, AfterUnknown: true}}}, nil
		}
	}
	c, err := client(ctx, p.GlobalParams)
	if err != nil {
		return plugin.Plan{}, err
	}
	z, want, cur, _, err := read(ctx, c, p)
	if err != nil {
		return plugin.Plan{}, err
	}
	if !want.Exists && cur.Exists && cur.Type != want.Type {
		cur = Record{ZoneID: z.ID, Name: want.Name, Type: want.Type}
	}
	ch := plugin.Change{Resource: fmt.Sprintf("route53 record %s %s (zone %s)", want.Type, want.Name, z.ID), Before: recordValue(cur), After: recordValue(want)}
	if req.Unknown("/value") || req.Unknown("/alias") {
		ch.After, ch.AfterUnknown = nil, true
	}
	switch {
	case ch.AfterUnknown:
		ch.Kind = plugin.ChangeUpdate
	case same(cur, want):
		ch.Kind = plugin.ChangeNoop
	case !cur.Exists:
		ch.Kind = plugin.ChangeCreate
	case !want.Exists:
		ch.Kind = plugin.ChangeDelete
	case cur.Type != want.Type:
		ch.Kind = plugin.ChangeReplace
	default:
		ch.Kind = plugin.ChangeUpdate
	}
	summary := fmt.Sprintf("%s: %s -> %s", want.Name, describe(cur), describe(want))
	if ch.AfterUnknown {
		summary = fmt.Sprintf("%s: %s -> (known at run time)", want.Name, describe(cur))
	}
	return plugin.Plan{Summary: summary, Changes: []plugin.Change{ch}}, nil
}

// recordValue is a record's plan form: nil when it does not exist.
func recordValue(r Record) any {
	if !r.Exists {
		return nil
	}
	return r
}

// classify is awscommon.Classify for Route 53's API, which is its control
// plane, served from us-east-1 only ("AWS Fault Isolation Boundaries",
// Global services: during an impairment there, changes may fail while DNS
// answers keep working). A request that got no answer (no API error: a
// connection refused or reset, or no response within the response timeout)
// says so, so that a run against a dark us-east-1 fails naming the cause.
// Only a failure to send the request or to get its answer counts (the SDK's
// RequestSendError), not one before it (credentials, signing).
func classify(err error, format string, args ...any) error {
	out := awscommon.Classify(err, format, args...)
	var pe *plugin.Error
	var send *smithyhttp.RequestSendError
	if err == nil || awscommon.ErrorCode(err) != "" || !errors.As(err, &send) || !errors.As(out, &pe) || pe.Code != "" {
		return out
	}
	return &plugin.Error{Code: "ControlPlaneUnreachable", Retryable: pe.Retryable, Err: err,
		Message: fmt.Sprintf("the Route 53 control plane (%s) is unreachable: %s; DNS answers (the data plane) are not affected, but no record can be read or changed until it answers (traffic: route53_arc moves traffic without it)", controlPlane.Region, pe.Message)}
}
