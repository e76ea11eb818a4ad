package spaceliftapi

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/miekg/dns"
)

// DNSResolver resolves a name by asking a DNS server over the wire, as a
// worker's resolver asks the zone's name servers: in the simulation, the
// authoritative server of sim/dnsserver on loopback, which answers from the
// emulator's Route 53 zones or the Cloudflare fake's. The answer is the end
// of the name's CNAME chain (the IoT broker domain is a CNAME to a region's
// IoT endpoint), or, for a name with addresses and no CNAME, its first
// address. No cache: every look-up asks again, as a worker that starts after
// the record's TTL has passed would.
type DNSResolver struct {
	// Addr is the server's host:port.
	Addr string
	// Timeout bounds one exchange (default 2s).
	Timeout time.Duration
}

// Resolve implements Resolver.
func (r DNSResolver) Resolve(ctx context.Context, name string) (string, error) {
	timeout := r.Timeout
	if timeout <= 0 {
		timeout = 2 * time.Second
	}
	q := new(dns.Msg)
	q.SetQuestion(dns.Fqdn(name), dns.TypeA)
	c := &dns.Client{Net: "udp", Timeout: timeout}
	in, _, err := c.ExchangeContext(ctx, q, r.Addr)
	if err == nil && in.Truncated {
		c.Net = "tcp"
		in, _, err = c.ExchangeContext(ctx, q, r.Addr)
	}
	if err != nil {
		return "", fmt.Errorf("asking %s for %s: %w", r.Addr, name, err)
	}
	if in.Rcode != dns.RcodeSuccess {
		return "", fmt.Errorf("%s answered %s for %s", r.Addr, dns.RcodeToString[in.Rcode], name)
	}
	owner := dns.Fqdn(strings.ToLower(name))
	target := ""
	for hops := 0; hops < 8; hops++ { // a chain, not a loop
		next := ""
		for _, rr := range in.Answer {
			if cn, ok := rr.(*dns.CNAME); ok && strings.EqualFold(cn.Hdr.Name, owner) {
				next = cn.Target
				break
			}
		}
		if next == "" {
			break
		}
		owner, target = dns.Fqdn(strings.ToLower(next)), next
	}
	if target != "" {
		return normName(target), nil
	}
	for _, rr := range in.Answer {
		switch a := rr.(type) {
		case *dns.A:
			return a.A.String(), nil
		case *dns.AAAA:
			return a.AAAA.String(), nil
		}
	}
	return "", fmt.Errorf("%s has no CNAME or address record for %s", r.Addr, name)
}
