// Package resolve is the resolve_check action of runbook-plugin-dns: after a
// DNS switch, it asks the zone's authoritative name servers (where resolvers
// look) until every one of them answers the new target, so a runbook knows
// the switch has reached clients' resolvers' source, not just the provider's
// API. It speaks DNS with github.com/miekg/dns.
package resolve

import (
	"context"
	"fmt"
	"net"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/miekg/dns"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// Check is one name and what its answer must be.
type Check struct {
	Name      string   `json:"name" required:"true" doc:"The name to ask for, e.g. spacelift.myorg.com."`
	Type      string   `json:"type" enum:"A,AAAA,CNAME" default:"A" doc:"The query type."`
	CNAME     string   `json:"cname" doc:"Expect a CNAME to this host name (the IoT broker domain -> the region's IoT endpoint)."`
	Addresses []string `json:"addresses" doc:"Expect exactly these addresses."`
	AddressOf string   `json:"address_of" doc:"Expect this host name (a load balancer's): a CNAME to it, or addresses that are all among the ones it resolves to through resolver (an alias, a flattened CNAME)."`
}

// Params of resolve_check.
type Params struct {
	Checks       []Check       `json:"checks" required:"true" doc:"The names to check and what each must answer."`
	Nameservers  []string      `json:"nameservers" doc:"The authoritative servers to ask (host or host:port, port 53 by default). Default: the zone's NS records, found through resolver."`
	Zone         string        `json:"zone" doc:"With no nameservers: the zone whose NS to ask (default: found from the first name's SOA)."`
	Resolver     string        `json:"resolver" doc:"A recursive resolver (host:port) for the NS look-up and address_of; default: the first nameserver of /etc/resolv.conf."`
	PollInterval time.Duration `json:"poll_interval" default:"2s" doc:"How often to ask again."`
	QueryTimeout time.Duration `json:"query_timeout" default:"2s" doc:"Limit for one query (UDP, then TCP if the answer is truncated)."`
	MaxWait      time.Duration `json:"max_wait" doc:"How long to ask before failing with what the servers still answer; 0: until just before the step's timeout."`
}

// Evidence is one server's answer for one name.
type Evidence struct {
	Server   string   `json:"server"`
	Name     string   `json:"name"`
	Type     string   `json:"type"`
	Answer   []string `json:"answer" doc:"The answer records (A 192.0.2.20, CNAME x.example.com), or the rcode (NXDOMAIN, NODATA), or the query's error."`
	Expected string   `json:"expected"`
	Matches  bool     `json:"matches"`
	At       string   `json:"at" doc:"When the answer came (RFC 3339)."`
}

// Outputs of resolve_check.
type Outputs struct {
	Evidence []Evidence    `json:"evidence" doc:"Every server's answer for every name in the round that ended the wait."`
	Servers  []string      `json:"servers" doc:"The servers asked."`
	Rounds   int           `json:"rounds" doc:"How many rounds of queries it took."`
	Duration time.Duration `json:"duration"`
}

// Action returns the resolve_check action.
func Action() plugin.Action {
	return plugin.NewAction("resolve_check", apply).
		Doc("Asks the zone's authoritative name servers (its NS, or the servers given) for each name until every server answers what is expected " +
			"(a CNAME target, addresses, or the addresses of a load balancer's name), bounded by the step's timeout. Outputs the answers that ended the wait; " +
			"on timeout the error says what each server still answers. Changes nothing; idempotent. Its plan asks once and never waits.").
		Idempotent().
		Validate(validate).
		Plan(plan)
}

func validate(req plugin.ValidateRequest[Params]) []plugin.Diagnostic {
	var diags []plugin.Diagnostic
	if len(req.Params.Checks) == 0 && !req.Unknown("/checks") {
		diags = append(diags, plugin.Errorf("/checks", "give at least one check"))
	}
	for i, c := range req.Params.Checks {
		at := fmt.Sprintf("/checks/%d", i)
		n := 0
		for _, set := range []bool{c.CNAME != "" || req.Unknown(at+"/cname"), len(c.Addresses) > 0 || req.Unknown(at+"/addresses"), c.AddressOf != "" || req.Unknown(at+"/address_of")} {
			if set {
				n++
			}
		}
		if n != 1 {
			diags = append(diags, plugin.Errorf(at, "give exactly one of cname, addresses or address_of"))
		}
		if c.Type == "CNAME" && (len(c.Addresses) > 0 || c.AddressOf != "") {
			diags = append(diags, plugin.Errorf(at+"/type", "a CNAME query answers a host name: expect cname"))
		}
		for j, a := range c.Addresses {
			if net.ParseIP(a) == nil {
				diags = append(diags, plugin.Errorf(fmt.Sprintf("%s/addresses/%d", at, j), "%q is not an IP address", a))
			}
		}
	}
	return diags
}

func qtype(c Check) uint16 {
	switch c.Type {
	case "AAAA":
		return dns.TypeAAAA
	case "CNAME":
		return dns.TypeCNAME
	}
	return dns.TypeA
}

func hostPort(s string) string {
	if _, _, err := net.SplitHostPort(s); err == nil {
		return s
	}
	return net.JoinHostPort(strings.Trim(s, "[]"), "53")
}

// checker asks the servers.
type checker struct {
	p        Params
	client   *dns.Client
	resolver string
}

func newChecker(p Params) (*checker, error) {
	c := &checker{p: p, client: &dns.Client{Timeout: p.QueryTimeout}}
	c.resolver = p.Resolver
	if c.resolver == "" && (len(p.Nameservers) == 0 || hasAddressOf(p)) {
		conf, err := dns.ClientConfigFromFile("/etc/resolv.conf")
		if err != nil || len(conf.Servers) == 0 {
			return nil, plugin.FatalCode("NoResolver", "no resolver: give resolver (host:port), or nameservers and no address_of (/etc/resolv.conf: %v)", err)
		}
		c.resolver = net.JoinHostPort(conf.Servers[0], conf.Port)
	}
	if c.resolver != "" {
		c.resolver = hostPort(c.resolver)
	}
	return c, nil
}

func hasAddressOf(p Params) bool {
	for _, c := range p.Checks {
		if c.AddressOf != "" {
			return true
		}
	}
	return false
}

// exchange sends one query, over TCP again if the UDP answer is truncated.
func (c *checker) exchange(ctx context.Context, server, name string, t uint16, recurse bool) (*dns.Msg, error) {
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(name), t)
	m.RecursionDesired = recurse
	m.SetEdns0(1232, false)
	r, _, err := c.client.ExchangeContext(ctx, m, server)
	if err == nil && r.Truncated {
		tcp := *c.client
		tcp.Net = "tcp"
		r, _, err = tcp.ExchangeContext(ctx, m, server)
	}
	return r, err
}

// servers returns the authoritative servers to ask.
func (c *checker) servers(ctx context.Context) ([]string, error) {
	if len(c.p.Nameservers) > 0 {
		var out []string
		for _, s := range c.p.Nameservers {
			out = append(out, hostPort(s))
		}
		return out, nil
	}
	zone := c.p.Zone
	if zone == "" {
		r, err := c.exchange(ctx, c.resolver, c.p.Checks[0].Name, dns.TypeSOA, true)
		if err != nil {
			return nil, plugin.RetryableCode("ResolverUnreachable", "finding the zone of %s through %s: %v", c.p.Checks[0].Name, c.resolver, err)
		}
		for _, rr := range append(r.Answer, r.Ns...) {
			if soa, ok := rr.(*dns.SOA); ok {
				zone = soa.Hdr.Name
				break
			}
		}
		if zone == "" {
			return nil, plugin.FatalCode("NoZone", "no SOA for %s through %s: give zone or nameservers", c.p.Checks[0].Name, c.resolver)
		}
	}
	r, err := c.exchange(ctx, c.resolver, zone, dns.TypeNS, true)
	if err != nil {
		return nil, plugin.RetryableCode("ResolverUnreachable", "NS of %s through %s: %v", zone, c.resolver, err)
	}
	var out []string
	for _, rr := range r.Answer {
		ns, ok := rr.(*dns.NS)
		if !ok {
			continue
		}
		for _, t := range []uint16{dns.TypeA, dns.TypeAAAA} {
			a, err := c.exchange(ctx, c.resolver, ns.Ns, t, true)
			if err != nil {
				continue
			}
			for _, ar := range a.Answer {
				switch v := ar.(type) {
				case *dns.A:
					out = append(out, net.JoinHostPort(v.A.String(), "53"))
				case *dns.AAAA:
					out = append(out, net.JoinHostPort(v.AAAA.String(), "53"))
				}
			}
		}
	}
	if len(out) == 0 {
		return nil, plugin.FatalCode("NoNameservers", "no name server addresses for zone %s through %s: give nameservers", zone, c.resolver)
	}
	return out, nil
}

// expectation is a check's expected answer, resolved.
type expectation struct {
	check Check
	text  string
	set   []string // expected CNAME target (one) or addresses
}

func (c *checker) expectations(ctx context.Context) ([]expectation, error) {
	var out []expectation
	for _, ck := range c.p.Checks {
		e := expectation{check: ck}
		switch {
		case ck.CNAME != "":
			e.set, e.text = []string{norm(ck.CNAME)}, "CNAME "+norm(ck.CNAME)
		case len(ck.Addresses) > 0:
			for _, a := range ck.Addresses {
				e.set = append(e.set, net.ParseIP(a).String())
			}
			sort.Strings(e.set)
			e.text = "addresses " + strings.Join(e.set, ", ")
		default:
			r, err := c.exchange(ctx, c.resolver, ck.AddressOf, qtype(ck), true)
			if err != nil {
				return nil, plugin.RetryableCode("ResolverUnreachable", "resolving %s through %s: %v", ck.AddressOf, c.resolver, err)
			}
			e.set = addresses(r)
			if len(e.set) == 0 {
				return nil, plugin.FatalCode("NoTargetAddresses", "%s has no %s addresses through %s: nothing to compare %s with", ck.AddressOf, typeOr(ck.Type), c.resolver, ck.Name)
			}
			e.text = fmt.Sprintf("addresses of %s (%s)", norm(ck.AddressOf), strings.Join(e.set, ", "))
		}
		out = append(out, e)
	}
	return out, nil
}

func typeOr(t string) string {
	if t == "" {
		return "A"
	}
	return t
}

func norm(n string) string { return strings.TrimSuffix(strings.ToLower(n), ".") }

func addresses(r *dns.Msg) []string {
	var out []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.A:
			out = append(out, v.A.String())
		case *dns.AAAA:
			out = append(out, v.AAAA.String())
		}
	}
	sort.Strings(out)
	return out
}

// ask puts one question to one server and judges the answer.
func (c *checker) ask(ctx context.Context, server string, e expectation) Evidence {
	ev := Evidence{Server: server, Name: norm(e.check.Name), Type: typeOr(e.check.Type), Expected: e.text}
	r, err := c.exchange(ctx, server, e.check.Name, qtype(e.check), false)
	ev.At = time.Now().UTC().Format(time.RFC3339Nano)
	switch {
	case err != nil:
		ev.Answer = []string{"error: " + err.Error()}
		return ev
	case r.Rcode != dns.RcodeSuccess:
		ev.Answer = []string{dns.RcodeToString[r.Rcode]}
		return ev
	case len(r.Answer) == 0:
		ev.Answer = []string{"NODATA"}
		return ev
	}
	var cnames []string
	for _, rr := range r.Answer {
		switch v := rr.(type) {
		case *dns.CNAME:
			ev.Answer = append(ev.Answer, "CNAME "+norm(v.Target))
			if strings.EqualFold(v.Hdr.Name, dns.Fqdn(e.check.Name)) {
				cnames = append(cnames, norm(v.Target))
			}
		case *dns.A:
			ev.Answer = append(ev.Answer, "A "+v.A.String())
		case *dns.AAAA:
			ev.Answer = append(ev.Answer, "AAAA "+v.AAAA.String())
		default:
			ev.Answer = append(ev.Answer, strings.Join(strings.Fields(rr.String())[3:], " "))
		}
	}
	got := addresses(r)
	switch {
	case e.check.CNAME != "":
		ev.Matches = len(cnames) == 1 && cnames[0] == e.set[0]
	case len(e.check.Addresses) > 0:
		ev.Matches = slices.Equal(got, e.set)
	default:
		// A CNAME to the load balancer's name itself (a DNS-only record below
		// a Cloudflare zone's apex) points at it as surely as its addresses.
		if len(cnames) == 1 && strings.TrimPrefix(cnames[0], "dualstack.") == strings.TrimPrefix(norm(e.check.AddressOf), "dualstack.") {
			ev.Matches = true
			break
		}
		ev.Matches = len(got) > 0
		for _, a := range got {
			if !slices.Contains(e.set, a) {
				ev.Matches = false
			}
		}
	}
	return ev
}

func (c *checker) round(ctx context.Context, servers []string, exps []expectation) ([]Evidence, bool) {
	var out []Evidence
	all := true
	for _, s := range servers {
		for _, e := range exps {
			ev := c.ask(ctx, s, e)
			all = all && ev.Matches
			out = append(out, ev)
		}
	}
	return out, all
}

func describe(evs []Evidence, onlyMismatches bool) string {
	var parts []string
	for _, ev := range evs {
		if onlyMismatches && ev.Matches {
			continue
		}
		parts = append(parts, fmt.Sprintf("%s answers %s %s: %s (want %s)", ev.Server, ev.Name, ev.Type, strings.Join(ev.Answer, ", "), ev.Expected))
	}
	return strings.Join(parts, "; ")
}

func apply(ctx context.Context, req plugin.Request[Params]) (Outputs, error) {
	start := time.Now()
	c, err := newChecker(req.Params)
	if err != nil {
		return Outputs{}, err
	}
	servers, err := c.servers(ctx)
	if err != nil {
		return Outputs{}, err
	}
	exps, err := c.expectations(ctx)
	if err != nil {
		return Outputs{}, err
	}
	req.Progress("asking "+strings.Join(servers, ", "), "checks", len(exps))
	// Stop asking one interval (at most) before the step's deadline, so the
	// failure says what the servers still answer instead of "timed out".
	stop := time.Time{}
	if d, ok := ctx.Deadline(); ok {
		margin := min(req.Params.PollInterval+req.Params.QueryTimeout, time.Until(d)/10)
		stop = d.Add(-margin)
	}
	if mw := req.Params.MaxWait; mw > 0 && (stop.IsZero() || start.Add(mw).Before(stop)) {
		stop = start.Add(mw)
	}
	out := Outputs{Servers: servers}
	last := ""
	for {
		out.Rounds++
		evs, ok := c.round(ctx, servers, exps)
		if ok {
			out.Evidence, out.Duration = evs, time.Since(start)
			req.Progress("every server answers as expected: "+describe(evs, false), "rounds", out.Rounds)
			return out, nil
		}
		if s := describe(evs, true); s != last {
			req.Progress("not yet: "+s, "round", out.Rounds)
			last = s
		}
		wait := req.Params.PollInterval
		if !stop.IsZero() && time.Now().Add(wait).After(stop) {
			return Outputs{}, plugin.FatalCode("NotPropagated", "after %s and %d rounds, not every name server answers as expected: %s",
				time.Since(start).Round(time.Second), out.Rounds, describe(evs, true))
		}
		select {
		case <-ctx.Done():
			return Outputs{}, ctx.Err()
		case <-time.After(wait):
		}
	}
}

func plan(ctx context.Context, req plugin.PlanRequest[Params]) (plugin.Plan, error) {
	for _, path := range []string{"/checks", "/nameservers", "/zone", "/resolver"} {
		if req.Unknown(path) {
			return plugin.Plan{Summary: "would ask the name servers (known at run time) until they answer the new targets"}, nil
		}
	}
	c, err := newChecker(req.Params)
	if err != nil {
		return plugin.Plan{}, err
	}
	var unknownExp []string
	var known []Check
	for i, ck := range req.Params.Checks {
		at := fmt.Sprintf("/checks/%d", i)
		if req.Unknown(at) || req.Unknown(at+"/name") || req.Unknown(at+"/cname") || req.Unknown(at+"/addresses") || req.Unknown(at+"/address_of") {
			unknownExp = append(unknownExp, ck.Name)
			continue
		}
		known = append(known, ck)
	}
	c.p.Checks = known
	summary := "would ask until every name server answers as expected"
	if len(known) == 0 {
		return plugin.Plan{Summary: summary + " (targets known at run time)"}, nil
	}
	// Asked once, never waited for: what the servers answer now.
	servers, err := c.servers(ctx)
	if err != nil {
		return plugin.Plan{Summary: summary, Diagnostics: []plugin.Diagnostic{{Severity: plugin.SeverityWarning, Summary: err.Error()}}}, nil
	}
	exps, err := c.expectations(ctx)
	if err != nil {
		return plugin.Plan{Summary: summary, Diagnostics: []plugin.Diagnostic{{Severity: plugin.SeverityWarning, Summary: err.Error()}}}, nil
	}
	evs, _ := c.round(ctx, servers, exps)
	summary += "; now: " + describe(evs, false)
	if len(unknownExp) > 0 {
		summary += "; known at run time: " + strings.Join(unknownExp, ", ")
	}
	return plugin.Plan{Summary: summary}, nil
}
