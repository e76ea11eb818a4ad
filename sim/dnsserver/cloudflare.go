package dnsserver

import (
	"context"
	"fmt"
	"strings"

	"github.com/miekg/dns"

	"github.com/runbookhq/runbook/sim/fakes/cloudflareapi"
)

// Cloudflare answers for the zones of the Cloudflare fake, as Cloudflare's
// name servers answer them:
//   - a DNS-only record as it is (a CNAME as a CNAME); TTL 1 ("automatic")
//     as 300 seconds (Cloudflare docs, DNS > Time to Live: Auto is 300 s);
//   - a proxied record with Cloudflare's own edge addresses instead of its
//     content (Cloudflare docs, DNS > Proxy status: a proxied record
//     "resolve[s] to Cloudflare anycast IP addresses"), here EdgeIPv4/IPv6,
//     with TTL 300 (Auto);
//   - a CNAME at the zone apex flattened to its target's addresses (Cloudflare
//     docs, DNS > CNAME flattening: always at the apex), from Targets.
//
// Not modelled: flattening below the apex (a paid option), wildcards, other
// record types, DNSSEC.
type Cloudflare struct {
	API     *cloudflareapi.Server
	Targets Targets
}

// The fake edge addresses of proxied records (documentation ranges, RFC 5737
// and RFC 3849), standing in for Cloudflare's anycast addresses.
var (
	EdgeIPv4 = []string{"198.51.100.1", "198.51.100.2"}
	EdgeIPv6 = []string{"2001:db8:cf::1", "2001:db8:cf::2"}
)

// autoTTL is the TTL Cloudflare serves for "automatic" (TTL 1) records.
const autoTTL = 300

// Name is "cloudflare".
func (c *Cloudflare) Name() string { return "cloudflare" }

// Answer implements Source.
func (c *Cloudflare) Answer(_ context.Context, name string, qtype uint16) (Answer, bool, error) {
	var zone *cloudflareapi.Zone
	zones := c.API.Zones()
	for i, z := range zones {
		zn := fq(z.Name)
		if inZone(name, zn) && (zone == nil || len(zn) > len(fq(zone.Name))) {
			zone = &zones[i]
		}
	}
	if zone == nil {
		return Answer{}, false, nil
	}
	apex := fq(zone.Name)
	soa, _ := dns.NewRR(fmt.Sprintf("%s %d IN SOA ns.cloudflare.sim.invalid. dns.cloudflare.com. 1 10000 2400 604800 1800", apex, autoTTL))
	a := Answer{Zone: apex, SOA: soa}
	exists := name == apex
	var at []cloudflareapi.Record
	for _, r := range zone.Records {
		n := fq(r.Name)
		if n == name {
			at = append(at, r)
		}
		if inZone(n, name) {
			exists = true
		}
	}
	if !exists {
		a.NXDomain = true
		return a, true, nil
	}
	for _, r := range at {
		ttl := uint32(r.TTL)
		if r.TTL == 1 || r.Proxied {
			ttl = autoTTL
		}
		switch {
		case r.Proxied && (qtype == dns.TypeA || qtype == dns.TypeAAAA) && (r.Type == "CNAME" || r.Type == dns.TypeToString[qtype]):
			rrs, err := addressRRs(name, qtype, ttl, Addresses{IPv4: EdgeIPv4, IPv6: EdgeIPv6})
			if err != nil {
				return Answer{}, true, err
			}
			a.Records = dedupe(append(a.Records, rrs...))
		case r.Type == "CNAME" && name == apex:
			if qtype != dns.TypeA && qtype != dns.TypeAAAA {
				continue
			}
			addrs, ok := lookupTarget(c.Targets, r.Content)
			if !ok {
				return Answer{}, true, fmt.Errorf("flattening %s: CNAME target %s has no addresses in the simulation", name, r.Content)
			}
			rrs, err := addressRRs(name, qtype, ttl, addrs)
			if err != nil {
				return Answer{}, true, err
			}
			a.Records = append(a.Records, rrs...)
		case r.Type == "CNAME":
			a.Records = append(a.Records, &dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: ttl}, Target: fq(r.Content)})
		case r.Type == dns.TypeToString[qtype]:
			rr, err := dns.NewRR(fmt.Sprintf("%s %d IN %s %s", name, ttl, r.Type, r.Content))
			if err != nil {
				return Answer{}, true, err
			}
			a.Records = append(a.Records, rr)
		}
	}
	return a, true, nil
}

// dedupe drops repeated records (two proxied records answer the same edge).
func dedupe(rrs []dns.RR) []dns.RR {
	seen := map[string]bool{}
	var out []dns.RR
	for _, rr := range rrs {
		k := strings.ToLower(rr.String())
		if !seen[k] {
			seen[k] = true
			out = append(out, rr)
		}
	}
	return out
}
