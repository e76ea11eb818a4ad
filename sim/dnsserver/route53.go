package dnsserver

import (
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"
)

// Route53 answers for the public hosted zones of a Route 53 API (the
// emulator's, read directly: the data plane keeps answering when the control
// plane, which the fault proxy impairs, does not).
//
// Modelled: simple records (values as they are; a CNAME as a CNAME, chased
// within the zone), alias records (answered with the target's addresses: a
// load balancer's from Targets, or another record of the same zone), failover
// routing with health checks (HealthStatus), NXDOMAIN against NODATA with the
// zone's SOA, and a change's propagation: while a change is PENDING, the name
// servers still answer the record sets as they were before it (Pending).
// Not modelled: wildcard records, the other routing policies (weighted,
// latency, geolocation, geoproximity, IP-based, multivalue: answered
// SERVFAIL, naming the policy), DNSSEC, private zones (answered only inside a
// VPC), and the health of an alias target with EvaluateTargetHealth
// (TargetHealthy, healthy unless given).
type Route53 struct {
	// Client reads the hosted zones, record sets and health check status.
	Client *route53.Client
	// Targets gives alias targets' addresses.
	Targets Targets
	// Pending returns, per zone id, the record sets whose change is not
	// INSYNC yet and what the name servers still answer for them (nil: every
	// change has propagated at once). PendingFromEmulator reads the emulator's.
	Pending func(ctx context.Context) (map[string][]PendingSet, error)
	// HealthStatus says whether a health check is healthy. Nil:
	// HealthFromAPI, which reads GetHealthCheckStatus through Client.
	HealthStatus func(ctx context.Context, id string) (bool, error)
	// TargetHealthy says whether an alias target evaluated with
	// EvaluateTargetHealth is healthy. Nil: always.
	TargetHealthy func(ctx context.Context, target string) (bool, error)
}

// PendingSet is a record set whose newest change is not INSYNC.
type PendingSet struct {
	Name          string                   `json:"name"`
	Type          string                   `json:"type"`
	SetIdentifier string                   `json:"set_identifier"`
	Before        *types.ResourceRecordSet `json:"-"`
	RawBefore     json.RawMessage          `json:"before"`
}

// PendingFromEmulator reads GET <url>/_sim/route53/pending of the emulator.
func PendingFromEmulator(url string) func(ctx context.Context) (map[string][]PendingSet, error) {
	return func(ctx context.Context) (map[string][]PendingSet, error) {
		req, err := http.NewRequestWithContext(ctx, http.MethodGet, strings.TrimSuffix(url, "/")+"/_sim/route53/pending", nil)
		if err != nil {
			return nil, err
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			return nil, err
		}
		defer resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			return nil, fmt.Errorf("emulator: GET /_sim/route53/pending: HTTP %d", resp.StatusCode)
		}
		var doc struct {
			Zones map[string][]PendingSet `json:"zones"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&doc); err != nil {
			return nil, err
		}
		for _, sets := range doc.Zones {
			for i := range sets {
				if b := sets[i].RawBefore; len(b) > 0 && string(b) != "null" {
					rs, err := decodeRecordSet(b)
					if err != nil {
						return nil, err
					}
					sets[i].Before = rs
				}
			}
		}
		return doc.Zones, nil
	}
}

// decodeRecordSet reads a record set in the API's field names.
func decodeRecordSet(b []byte) (*types.ResourceRecordSet, error) {
	var raw struct {
		Name, Type, SetIdentifier, Failover, HealthCheckID string
		TTL                                                *int64
		ResourceRecords                                    []struct{ Value string }
		AliasTarget                                        *struct {
			HostedZoneID         string `json:"HostedZoneId"`
			DNSName              string
			EvaluateTargetHealth bool
		}
		Weight *int64
		Region string
	}
	if err := json.Unmarshal(b, &raw); err != nil { // field names match case-insensitively
		return nil, err
	}
	rs := &types.ResourceRecordSet{Name: aws.String(raw.Name), Type: types.RRType(raw.Type), TTL: raw.TTL, Weight: raw.Weight,
		Failover: types.ResourceRecordSetFailover(raw.Failover), Region: types.ResourceRecordSetRegion(raw.Region)}
	if raw.SetIdentifier != "" {
		rs.SetIdentifier = aws.String(raw.SetIdentifier)
	}
	if raw.HealthCheckID != "" {
		rs.HealthCheckId = aws.String(raw.HealthCheckID)
	}
	for _, v := range raw.ResourceRecords {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v.Value)})
	}
	if a := raw.AliasTarget; a != nil {
		rs.AliasTarget = &types.AliasTarget{HostedZoneId: aws.String(a.HostedZoneID), DNSName: aws.String(a.DNSName), EvaluateTargetHealth: a.EvaluateTargetHealth}
	}
	return rs, nil
}

// HealthFromAPI reads a health check's status with GetHealthCheckStatus:
// healthy when more than 18% of the health checkers report success (Route 53
// Developer Guide, "How Amazon Route 53 determines whether a health check is
// healthy"). A checker's report is a success when its status starts with
// "Success" (the API's StatusReport.Status, e.g. "Success: HTTP Status Code
// 200..." or "Failure: ...").
func HealthFromAPI(c *route53.Client) func(ctx context.Context, id string) (bool, error) {
	return func(ctx context.Context, id string) (bool, error) {
		out, err := c.GetHealthCheckStatus(ctx, &route53.GetHealthCheckStatusInput{HealthCheckId: aws.String(id)})
		if err != nil {
			return false, fmt.Errorf("health check %s: %w", id, err)
		}
		obs := out.HealthCheckObservations
		if len(obs) == 0 {
			return false, nil
		}
		ok := 0
		for _, o := range obs {
			if o.StatusReport != nil && strings.HasPrefix(aws.ToString(o.StatusReport.Status), "Success") {
				ok++
			}
		}
		return float64(ok) > 0.18*float64(len(obs)), nil
	}
}

// Name is "route53".
func (r *Route53) Name() string { return "route53" }

type r53zone struct {
	id, name string // name fully qualified, lower case
	sets     []types.ResourceRecordSet
}

func fq(name string) string {
	name = strings.ToLower(strings.ReplaceAll(name, `\052`, "*"))
	if !strings.HasSuffix(name, ".") {
		name += "."
	}
	return name
}

// zoneFor finds the public hosted zone holding name (the longest match).
func (r *Route53) zoneFor(ctx context.Context, name string) (*r53zone, error) {
	var best *r53zone
	p := route53.NewListHostedZonesPaginator(r.Client, &route53.ListHostedZonesInput{})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("listing hosted zones: %w", err)
		}
		for _, z := range out.HostedZones {
			if z.Config != nil && z.Config.PrivateZone {
				continue
			}
			zn := fq(aws.ToString(z.Name))
			if inZone(name, zn) && (best == nil || len(zn) > len(best.name)) {
				best = &r53zone{id: strings.TrimPrefix(aws.ToString(z.Id), "/hostedzone/"), name: zn}
			}
		}
	}
	if best == nil {
		return nil, nil
	}
	in := &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(best.id)}
	for {
		out, err := r.Client.ListResourceRecordSets(ctx, in)
		if err != nil {
			return nil, fmt.Errorf("listing the records of hosted zone %s: %w", best.id, err)
		}
		best.sets = append(best.sets, out.ResourceRecordSets...)
		if !out.IsTruncated {
			break
		}
		in.StartRecordName, in.StartRecordType, in.StartRecordIdentifier = out.NextRecordName, out.NextRecordType, out.NextRecordIdentifier
	}
	if r.Pending != nil {
		pend, err := r.Pending(ctx)
		if err != nil {
			return nil, fmt.Errorf("reading pending changes: %w", err)
		}
		best.sets = overlay(best.sets, pend[best.id])
	}
	return best, nil
}

// overlay replaces the record sets of pending changes by what the name
// servers still answer (removing those the change created).
func overlay(sets []types.ResourceRecordSet, pend []PendingSet) []types.ResourceRecordSet {
	if len(pend) == 0 {
		return sets
	}
	key := func(name, typ, id string) string { return fq(name) + " " + typ + " " + id }
	served := map[string]*types.ResourceRecordSet{}
	for _, p := range pend {
		served[key(p.Name, p.Type, p.SetIdentifier)] = p.Before
	}
	var out []types.ResourceRecordSet
	for _, rs := range sets {
		k := key(aws.ToString(rs.Name), string(rs.Type), aws.ToString(rs.SetIdentifier))
		if before, ok := served[k]; ok {
			delete(served, k)
			if before != nil {
				out = append(out, *before)
			}
			continue
		}
		out = append(out, rs)
	}
	for _, before := range served {
		if before != nil { // deleted by a change not yet INSYNC
			out = append(out, *before)
		}
	}
	return out
}

// Answer implements Source.
func (r *Route53) Answer(ctx context.Context, name string, qtype uint16) (Answer, bool, error) {
	z, err := r.zoneFor(ctx, name)
	if err != nil || z == nil {
		return Answer{}, false, err
	}
	a := Answer{Zone: z.name, SOA: z.soa()}
	recs, nx, err := r.resolve(ctx, z, name, name, qtype, 0)
	if err != nil {
		return Answer{}, true, err
	}
	a.Records, a.NXDomain = recs, nx
	return a, true, nil
}

func (z *r53zone) soa() dns.RR {
	for _, rs := range z.sets {
		if rs.Type == types.RRTypeSoa && fq(aws.ToString(rs.Name)) == z.name && len(rs.ResourceRecords) > 0 {
			if rr, err := dns.NewRR(z.name + " " + fmt.Sprint(aws.ToInt64(rs.TTL)) + " IN SOA " + aws.ToString(rs.ResourceRecords[0].Value)); err == nil {
				return rr
			}
		}
	}
	return nil
}

// resolve answers qtype at name, naming the answer owner (the queried name
// for an alias to a record of the zone).
func (r *Route53) resolve(ctx context.Context, z *r53zone, name, owner string, qtype uint16, depth int) ([]dns.RR, bool, error) {
	if depth > 8 {
		return nil, false, fmt.Errorf("%s: alias or CNAME chain longer than 8", name)
	}
	var at []types.ResourceRecordSet
	exists := false
	for _, rs := range z.sets {
		n := fq(aws.ToString(rs.Name))
		if n == name {
			at = append(at, rs)
		}
		if inZone(n, name) {
			exists = true // the name, or an empty non-terminal above a record
		}
	}
	if !exists {
		return nil, true, nil
	}
	want := dns.TypeToString[qtype]
	pick := func(typ string) ([]types.ResourceRecordSet, error) {
		var group []types.ResourceRecordSet
		for _, rs := range at {
			if string(rs.Type) == typ {
				group = append(group, rs)
			}
		}
		return r.route(ctx, z, name, typ, group)
	}
	if qtype != dns.TypeCNAME {
		cn, err := pick("CNAME")
		if err != nil {
			return nil, false, err
		}
		if len(cn) > 0 {
			rs := cn[0]
			target := fq(aws.ToString(rs.ResourceRecords[0].Value))
			rr := &dns.CNAME{Hdr: dns.RR_Header{Name: owner, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: uint32(aws.ToInt64(rs.TTL))}, Target: target}
			out := []dns.RR{rr}
			if inZone(target, z.name) {
				more, _, err := r.resolve(ctx, z, target, target, qtype, depth+1)
				if err != nil {
					return nil, false, err
				}
				out = append(out, more...)
			}
			return out, false, nil
		}
	}
	sets, err := pick(want)
	if err != nil {
		return nil, false, err
	}
	var out []dns.RR
	for _, rs := range sets {
		if rs.AliasTarget != nil {
			rrs, err := r.alias(ctx, z, owner, qtype, rs.AliasTarget, depth)
			if err != nil {
				return nil, false, err
			}
			out = append(out, rrs...)
			continue
		}
		for _, v := range rs.ResourceRecords {
			rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", owner, aws.ToInt64(rs.TTL), want, aws.ToString(v.Value)))
			if err != nil {
				return nil, false, fmt.Errorf("%s %s value %q: %w", name, want, aws.ToString(v.Value), err)
			}
			out = append(out, rr)
		}
	}
	return out, false, nil
}

// aliasTTL is the TTL of an alias answer: Route 53 uses the target's TTL
// (Route 53 Developer Guide, "Choosing between alias and non-alias records":
// for an ELB load balancer, 60 seconds).
const aliasTTL = 60

func (r *Route53) alias(ctx context.Context, z *r53zone, owner string, qtype uint16, t *types.AliasTarget, depth int) ([]dns.RR, error) {
	target := fq(aws.ToString(t.DNSName))
	if strings.TrimPrefix(aws.ToString(t.HostedZoneId), "/hostedzone/") == z.id && inZone(target, z.name) {
		rrs, _, err := r.resolve(ctx, z, target, owner, qtype, depth+1)
		return rrs, err
	}
	if qtype != dns.TypeA && qtype != dns.TypeAAAA {
		return nil, nil
	}
	addrs, ok := lookupTarget(r.Targets, target)
	if !ok {
		return nil, fmt.Errorf("alias target %s has no addresses in the simulation", strings.TrimSuffix(target, "."))
	}
	return addressRRs(owner, qtype, aliasTTL, addrs)
}

// route chooses among the record sets of one name and type as Route 53's
// routing policies do: a simple record set answers as it is; failover
// records answer per the Route 53 API reference (ResourceRecordSet,
// Failover): the primary while it is healthy; the secondary when the primary
// is unhealthy and the secondary healthy; the primary when the secondary is
// unhealthy too. A record without a health check (and not an alias
// evaluating its target's health) is healthy.
func (r *Route53) route(ctx context.Context, z *r53zone, name, typ string, group []types.ResourceRecordSet) ([]types.ResourceRecordSet, error) {
	if len(group) == 0 {
		return nil, nil
	}
	var primary, secondary *types.ResourceRecordSet
	for i, rs := range group {
		switch {
		case aws.ToString(rs.SetIdentifier) == "":
			return group[i : i+1], nil
		case rs.Failover == types.ResourceRecordSetFailoverPrimary:
			primary = &group[i]
		case rs.Failover == types.ResourceRecordSetFailoverSecondary:
			secondary = &group[i]
		default:
			return nil, fmt.Errorf("%s %s uses a routing policy the simulation does not model (set identifier %q)", name, typ, aws.ToString(rs.SetIdentifier))
		}
	}
	switch {
	case primary == nil && secondary == nil:
		return nil, nil
	case secondary == nil:
		return []types.ResourceRecordSet{*primary}, nil
	case primary == nil:
		return []types.ResourceRecordSet{*secondary}, nil
	}
	ph, err := r.healthy(ctx, *primary)
	if err != nil || ph {
		return []types.ResourceRecordSet{*primary}, err
	}
	sh, err := r.healthy(ctx, *secondary)
	if err != nil {
		return nil, err
	}
	if sh {
		return []types.ResourceRecordSet{*secondary}, nil
	}
	return []types.ResourceRecordSet{*primary}, nil
}

func (r *Route53) healthy(ctx context.Context, rs types.ResourceRecordSet) (bool, error) {
	if id := aws.ToString(rs.HealthCheckId); id != "" {
		status := r.HealthStatus
		if status == nil {
			status = HealthFromAPI(r.Client)
		}
		ok, err := status(ctx, id)
		if err != nil || !ok {
			return false, err
		}
	}
	if rs.AliasTarget != nil && rs.AliasTarget.EvaluateTargetHealth && r.TargetHealthy != nil {
		return r.TargetHealthy(ctx, strings.TrimSuffix(aws.ToString(rs.AliasTarget.DNSName), "."))
	}
	return true, nil
}
