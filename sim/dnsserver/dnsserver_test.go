package dnsserver_test

import (
	"context"
	"fmt"
	"slices"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/miekg/dns"

	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/fakes/cloudflareapi"
)

const (
	primaryLB = "spacelift-server-1.eu-west-1.elb.amazonaws.com"
	drLB      = "spacelift-server-2.eu-west-3.elb.amazonaws.com"
	// The load balancers' canonical hosted zones, one per region (AWS General
	// Reference, "Elastic Load Balancing endpoints and quotas"): Route 53
	// refuses an alias that names another region's.
	primaryLBZone = "Z32O12XQLNTSW2"
	drLBZone      = "Z3Q77PNBQS71R4"
)

var targets = dnsserver.StaticTargets(map[string]dnsserver.Addresses{
	primaryLB:                {IPv4: []string{"192.0.2.10", "192.0.2.11"}, IPv6: []string{"2001:db8:1::10"}},
	"dualstack." + primaryLB: {IPv4: []string{"192.0.2.10", "192.0.2.11"}, IPv6: []string{"2001:db8:1::10"}},
	drLB:                     {IPv4: []string{"192.0.2.20"}, IPv6: []string{"2001:db8:2::10"}},
})

// query asks the server one question and returns the rcode, whether the
// answer is authoritative, and the answer (and, if empty, authority) records
// as "TYPE value" strings, sorted.
func query(t *testing.T, addr, network, name string, qtype uint16) (string, bool, []string) {
	t.Helper()
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), qtype)
	c := &dns.Client{Net: network, Timeout: 5 * time.Second}
	r, _, err := c.Exchange(m, addr)
	if err != nil {
		t.Fatalf("%s %s over %s: %v", name, dns.TypeToString[qtype], network, err)
	}
	var out []string
	for _, rr := range r.Answer {
		out = append(out, rrText(rr))
	}
	if len(r.Answer) == 0 {
		for _, rr := range r.Ns {
			out = append(out, "authority "+dns.TypeToString[rr.Header().Rrtype])
		}
	}
	sort.Strings(out)
	return dns.RcodeToString[r.Rcode], r.Authoritative, out
}

func rrText(rr dns.RR) string {
	switch v := rr.(type) {
	case *dns.A:
		return "A " + v.A.String()
	case *dns.AAAA:
		return "AAAA " + v.AAAA.String()
	case *dns.CNAME:
		return "CNAME " + v.Target
	}
	return strings.Join(strings.Fields(rr.String())[3:], " ")
}

type r53fixture struct {
	emu  *emulator.Emulator
	c    *route53.Client
	zone string
}

func (f *r53fixture) change(t *testing.T, changes ...types.Change) string {
	t.Helper()
	out, err := f.c.ChangeResourceRecordSets(context.Background(), &route53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(f.zone), ChangeBatch: &types.ChangeBatch{Changes: changes}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.ChangeInfo.Id)
}

func upsert(rs types.ResourceRecordSet) types.Change {
	return types.Change{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs}
}

func alias(name string, typ types.RRType, target string) types.ResourceRecordSet {
	return types.ResourceRecordSet{Name: aws.String(name), Type: typ,
		AliasTarget: &types.AliasTarget{DNSName: aws.String(target), HostedZoneId: aws.String(lbZoneOf(target)), EvaluateTargetHealth: true}}
}

func lbZoneOf(target string) string {
	if target == drLB {
		return drLBZone
	}
	return primaryLBZone
}

func plain(name string, typ types.RRType, ttl int64, values ...string) types.ResourceRecordSet {
	rs := types.ResourceRecordSet{Name: aws.String(name), Type: typ, TTL: aws.Int64(ttl)}
	for _, v := range values {
		rs.ResourceRecords = append(rs.ResourceRecords, types.ResourceRecord{Value: aws.String(v)})
	}
	return rs
}

func startRoute53(t *testing.T, domain string) *r53fixture {
	t.Helper()
	e := emulator.StartForTest(t, emulator.Options{IgnoreExternal: true, Timing: emulator.Timing{emulator.Route53InSync: 30}})
	f := &r53fixture{emu: e, c: route53.NewFromConfig(e.Config("us-east-1"))}
	out, err := f.c.CreateHostedZone(context.Background(), &route53.CreateHostedZoneInput{Name: aws.String(domain), CallerReference: aws.String("dnsserver-test")})
	if err != nil {
		t.Fatal(err)
	}
	f.zone = strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/")
	return f
}

func TestRoute53Zones(t *testing.T) {
	t.Parallel()
	f := startRoute53(t, "spacelift.example.com")
	ctx := context.Background()
	const apex, iot = "spacelift.example.com", "worker-iot.spacelift.example.com"
	f.change(t,
		upsert(alias(apex, types.RRTypeA, "dualstack."+primaryLB)),
		upsert(alias(apex, types.RRTypeAaaa, "dualstack."+primaryLB)),
		upsert(plain(iot, types.RRTypeCname, 60, "abc-ats.iot.eu-west-1.amazonaws.com")),
		upsert(plain("www.spacelift.example.com", types.RRTypeCname, 300, apex)),
		upsert(plain("deep.a.spacelift.example.com", types.RRTypeTxt, 300, `"x"`)),
	)
	// Every change so far propagated.
	if err := f.emu.Advance(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	srv, err := dnsserver.Start(&dnsserver.Route53{Client: f.c, Targets: targets, Pending: dnsserver.PendingFromEmulator(f.emu.URL)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	addr := srv.Addr()

	cases := []struct {
		name   string
		qtype  uint16
		rcode  string
		answer []string
	}{
		{apex, dns.TypeA, "NOERROR", []string{"A 192.0.2.10", "A 192.0.2.11"}},
		{apex, dns.TypeAAAA, "NOERROR", []string{"AAAA 2001:db8:1::10"}},
		{iot, dns.TypeCNAME, "NOERROR", []string{"CNAME abc-ats.iot.eu-west-1.amazonaws.com."}},
		// The CNAME's target is outside the zone: not chased.
		{iot, dns.TypeA, "NOERROR", []string{"CNAME abc-ats.iot.eu-west-1.amazonaws.com."}},
		// Within the zone it is.
		{"www.spacelift.example.com", dns.TypeA, "NOERROR", []string{"A 192.0.2.10", "A 192.0.2.11", "CNAME spacelift.example.com."}},
		{"nosuch.spacelift.example.com", dns.TypeA, "NXDOMAIN", []string{"authority SOA"}},
		{apex, dns.TypeMX, "NOERROR", []string{"authority SOA"}},
		// An empty non-terminal exists: no data, not NXDOMAIN.
		{"a.spacelift.example.com", dns.TypeA, "NOERROR", []string{"authority SOA"}},
		{"example.org", dns.TypeA, "REFUSED", nil},
	}
	for _, tc := range cases {
		for _, network := range []string{"udp", "tcp"} {
			rcode, aa, got := query(t, addr, network, tc.name, tc.qtype)
			if rcode != tc.rcode || !slices.Equal(got, tc.answer) || aa != (tc.rcode != "REFUSED") {
				t.Errorf("%s %s over %s: %s aa=%v %v, want %s %v", tc.name, dns.TypeToString[tc.qtype], network, rcode, aa, got, tc.rcode, tc.answer)
			}
		}
	}

	// A change answers the old records until it is INSYNC.
	id := f.change(t, upsert(alias(apex, types.RRTypeA, drLB)), upsert(alias(apex, types.RRTypeAaaa, drLB)),
		types.Change{Action: types.ChangeActionDelete, ResourceRecordSet: ptr(plain(iot, types.RRTypeCname, 60, "abc-ats.iot.eu-west-1.amazonaws.com"))},
		upsert(plain("new.spacelift.example.com", types.RRTypeA, 60, "192.0.2.99")))
	for _, q := range []struct {
		name  string
		qtype uint16
		want  string
	}{{apex, dns.TypeA, "[A 192.0.2.10 A 192.0.2.11]"}, {apex, dns.TypeAAAA, "[AAAA 2001:db8:1::10]"}, {iot, dns.TypeCNAME, "[CNAME abc-ats.iot.eu-west-1.amazonaws.com.]"}, {"new.spacelift.example.com", dns.TypeA, "[authority SOA]"}} {
		if _, _, got := query(t, addr, "udp", q.name, q.qtype); fmt.Sprint(got) != q.want {
			t.Errorf("while change %s is PENDING: %s %s = %v, want %s", id, q.name, dns.TypeToString[q.qtype], got, q.want)
		}
	}
	if err := f.emu.Advance(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	ch, err := f.c.GetChange(ctx, &route53.GetChangeInput{Id: aws.String(id)})
	if err != nil || ch.ChangeInfo.Status != types.ChangeStatusInsync {
		t.Fatalf("change %s: %+v, %v", id, ch, err)
	}
	for _, q := range []struct {
		name  string
		qtype uint16
		want  string
	}{{apex, dns.TypeA, "[A 192.0.2.20]"}, {apex, dns.TypeAAAA, "[AAAA 2001:db8:2::10]"}, {iot, dns.TypeCNAME, "[authority SOA]"}, {"new.spacelift.example.com", dns.TypeA, "[A 192.0.2.99]"}} {
		if _, _, got := query(t, addr, "udp", q.name, q.qtype); fmt.Sprint(got) != q.want {
			t.Errorf("once INSYNC: %s %s = %v, want %s", q.name, dns.TypeToString[q.qtype], got, q.want)
		}
	}

	// An alias target the simulation has no addresses for, and a routing
	// policy it does not model, are answered SERVFAIL and named.
	f.change(t, upsert(alias("unknown.spacelift.example.com", types.RRTypeA, "nosuch.elb.amazonaws.com")),
		upsert(weighted(plain("w.spacelift.example.com", types.RRTypeA, 60, "192.0.2.1"), "one")))
	if err := f.emu.Advance(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"unknown.spacelift.example.com", "w.spacelift.example.com"} {
		if rcode, _, _ := query(t, addr, "udp", name, dns.TypeA); rcode != "SERVFAIL" {
			t.Errorf("%s: %s, want SERVFAIL", name, rcode)
		}
	}
	errs := strings.Join(srv.Errors(), "\n")
	if !strings.Contains(errs, "alias target nosuch.elb.amazonaws.com has no addresses in the simulation") || !strings.Contains(errs, `routing policy the simulation does not model (set identifier "one")`) {
		t.Errorf("errors = %s", errs)
	}
}

func ptr[T any](v T) *T { return &v }

func weighted(rs types.ResourceRecordSet, id string) types.ResourceRecordSet {
	rs.SetIdentifier, rs.Weight = aws.String(id), aws.Int64(10)
	return rs
}

func failover(rs types.ResourceRecordSet, role types.ResourceRecordSetFailover, hc string) types.ResourceRecordSet {
	rs.SetIdentifier, rs.Failover = aws.String(string(role)), role
	if hc != "" {
		rs.HealthCheckId = aws.String(hc)
	}
	return rs
}

// Failover records answer per their health checks' status, read through the
// seam (HealthStatus) or, by default, GetHealthCheckStatus.
func TestRoute53Failover(t *testing.T) {
	t.Parallel()
	f := startRoute53(t, "myorg.com")
	ctx := context.Background()
	var hcs []string
	for i := range 2 {
		out, err := f.c.CreateHealthCheck(ctx, &route53.CreateHealthCheckInput{CallerReference: aws.String(fmt.Sprint("hc", i)),
			HealthCheckConfig: &types.HealthCheckConfig{Type: types.HealthCheckTypeHttps, FullyQualifiedDomainName: aws.String("region.example.net"), Port: aws.Int32(443), ResourcePath: aws.String("/health")}})
		if err != nil {
			t.Fatal(err)
		}
		hcs = append(hcs, aws.ToString(out.HealthCheck.Id))
	}
	const host = "app.myorg.com"
	f.change(t,
		upsert(failover(alias(host, types.RRTypeA, primaryLB), types.ResourceRecordSetFailoverPrimary, hcs[0])),
		upsert(failover(alias(host, types.RRTypeA, drLB), types.ResourceRecordSetFailoverSecondary, hcs[1])))
	if err := f.emu.Advance(ctx, time.Minute); err != nil {
		t.Fatal(err)
	}
	health := map[string]bool{hcs[0]: true, hcs[1]: true}
	seam, err := dnsserver.Start(&dnsserver.Route53{Client: f.c, Targets: targets, HealthStatus: func(_ context.Context, id string) (bool, error) { return health[id], nil }})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = seam.Close() })
	api, err := dnsserver.Start(&dnsserver.Route53{Client: f.c, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })

	// moto's GetHealthCheckStatus reports every checker healthy: the primary answers.
	if _, _, got := query(t, api.Addr(), "udp", host, dns.TypeA); fmt.Sprint(got) != "[A 192.0.2.10 A 192.0.2.11]" {
		t.Errorf("health from the API: %v, want the primary", got)
	}
	for _, tc := range []struct {
		primary, secondary bool
		want               string
	}{
		{true, true, "[A 192.0.2.10 A 192.0.2.11]"},
		{false, true, "[A 192.0.2.20]"},
		{false, false, "[A 192.0.2.10 A 192.0.2.11]"}, // the secondary unhealthy too: the primary
		{true, false, "[A 192.0.2.10 A 192.0.2.11]"},
	} {
		health[hcs[0]], health[hcs[1]] = tc.primary, tc.secondary
		if _, _, got := query(t, seam.Addr(), "udp", host, dns.TypeA); fmt.Sprint(got) != tc.want {
			t.Errorf("primary healthy %v, secondary healthy %v: %v, want %s", tc.primary, tc.secondary, got, tc.want)
		}
	}
}

func TestCloudflareZones(t *testing.T) {
	t.Parallel()
	api, err := cloudflareapi.Start("token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })
	zid := api.AddZone("spacelift.example.com")
	for _, r := range []struct {
		name, typ, content string
		ttl                int
		proxied            bool
	}{
		{"spacelift.example.com", "CNAME", primaryLB, 300, false},
		{"worker-iot.spacelift.example.com", "CNAME", "abc-ats.iot.eu-west-1.amazonaws.com", 1, false},
		{"app.spacelift.example.com", "CNAME", drLB, 1, true},
		{"v4.spacelift.example.com", "A", "192.0.2.50", 120, false},
	} {
		if _, err := api.AddRecord(zid, r.name, r.typ, r.content, r.ttl, r.proxied); err != nil {
			t.Fatal(err)
		}
	}
	srv, err := dnsserver.Start(&dnsserver.Cloudflare{API: api, Targets: targets})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  string
	}{
		// The apex CNAME is flattened to the target's addresses.
		{"spacelift.example.com", dns.TypeA, "[A 192.0.2.10 A 192.0.2.11]"},
		{"spacelift.example.com", dns.TypeAAAA, "[AAAA 2001:db8:1::10]"},
		{"worker-iot.spacelift.example.com", dns.TypeCNAME, "[CNAME abc-ats.iot.eu-west-1.amazonaws.com.]"},
		// Proxied: Cloudflare's edge, not the target.
		{"app.spacelift.example.com", dns.TypeA, "[A 198.51.100.1 A 198.51.100.2]"},
		{"app.spacelift.example.com", dns.TypeAAAA, "[AAAA 2001:db8:cf::1 AAAA 2001:db8:cf::2]"},
		{"v4.spacelift.example.com", dns.TypeA, "[A 192.0.2.50]"},
		{"nosuch.spacelift.example.com", dns.TypeA, "[authority SOA]"},
	} {
		if _, aa, got := query(t, srv.Addr(), "udp", tc.name, tc.qtype); fmt.Sprint(got) != tc.want || !aa {
			t.Errorf("%s %s: %v (aa %v), want %s", tc.name, dns.TypeToString[tc.qtype], got, aa, tc.want)
		}
	}
	// TTLs: automatic is 300 s, others as set.
	m := new(dns.Msg)
	m.SetQuestion("worker-iot.spacelift.example.com.", dns.TypeCNAME)
	r, err := dns.Exchange(m, srv.Addr())
	if err != nil || len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 300 {
		t.Errorf("TTL of an automatic record: %v, %v", r, err)
	}
	m.SetQuestion("v4.spacelift.example.com.", dns.TypeA)
	if r, err = dns.Exchange(m, srv.Addr()); err != nil || len(r.Answer) != 1 || r.Answer[0].Header().Ttl != 120 {
		t.Errorf("TTL 120: %v, %v", r, err)
	}
}
