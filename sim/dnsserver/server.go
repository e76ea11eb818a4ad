// Package dnsserver is the simulation's authoritative DNS server: it answers,
// over UDP and TCP on 127.0.0.1, for the zones of the emulator's Route 53 (read
// through the Route 53 API) and of the Cloudflare fake, the way those
// providers' name servers answer clients. The runbooks' dns.resolve_check asks
// it, as it asks the real name servers, whether a switch has reached them.
//
// What it models, per provider, is in the Source implementations (Route53,
// Cloudflare) and in docs/simulation.md. It never recurses: a name outside
// every zone it serves is REFUSED, as an authoritative-only server answers.
package dnsserver

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/miekg/dns"
)

// Answer is a source's authoritative answer to one question.
type Answer struct {
	// Zone is the apex of the zone that answered (fully qualified).
	Zone string
	// NXDomain: the name does not exist in the zone.
	NXDomain bool
	// Records answer the question (a CNAME chain, then the records).
	Records []dns.RR
	// SOA goes in the authority section of a negative answer.
	SOA dns.RR
}

// A Source answers for the zones of one DNS provider.
type Source interface {
	// Name says which provider (for logs and errors).
	Name() string
	// Answer answers a question, ok false when no zone of the source holds
	// the name. An error is answered SERVFAIL and kept (Server.Errors).
	Answer(ctx context.Context, name string, qtype uint16) (a Answer, ok bool, err error)
}

// Server is a running DNS server.
type Server struct {
	udp, tcp *dns.Server
	addr     string
	sources  []Source
	timeout  time.Duration

	mu     sync.Mutex
	errors []string
}

// Start serves the sources on 127.0.0.1 at a free port (the same port for UDP
// and TCP). Sources are asked in order; the first that holds the name answers.
func Start(sources ...Source) (*Server, error) {
	return Listen("127.0.0.1:0", sources...)
}

// Listen is Start on a given address, which must be a loopback one.
func Listen(addr string, sources ...Source) (*Server, error) {
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); ip == nil || !ip.IsLoopback() {
		return nil, fmt.Errorf("dnsserver: %s is not a loopback address", addr)
	}
	s := &Server{sources: sources, timeout: 10 * time.Second}
	var pc net.PacketConn
	var ln net.Listener
	// Find a port free for both UDP and TCP.
	for i := 0; i < 20; i++ {
		pc, err = net.ListenPacket("udp", addr)
		if err != nil {
			return nil, err
		}
		ln, err = net.Listen("tcp", pc.LocalAddr().String())
		if err == nil {
			break
		}
		pc.Close()
		if !strings.HasSuffix(addr, ":0") {
			return nil, err
		}
	}
	if ln == nil {
		return nil, fmt.Errorf("dnsserver: no port free for both UDP and TCP: %v", err)
	}
	s.addr = pc.LocalAddr().String()
	h := dns.HandlerFunc(s.serve)
	s.udp = &dns.Server{PacketConn: pc, Handler: h}
	s.tcp = &dns.Server{Listener: ln, Handler: h}
	started := make(chan struct{}, 2)
	s.udp.NotifyStartedFunc = func() { started <- struct{}{} }
	s.tcp.NotifyStartedFunc = func() { started <- struct{}{} }
	go func() { _ = s.udp.ActivateAndServe() }()
	go func() { _ = s.tcp.ActivateAndServe() }()
	<-started
	<-started
	return s, nil
}

// Addr is the server's address, host:port (UDP and TCP).
func (s *Server) Addr() string { return s.addr }

// Close stops the server.
func (s *Server) Close() error {
	return errors.Join(s.udp.Shutdown(), s.tcp.Shutdown())
}

// Errors lists the errors answered SERVFAIL so far (a source's API failing, an
// alias target the simulation has no addresses for, ...).
func (s *Server) Errors() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.errors...)
}

func (s *Server) serve(w dns.ResponseWriter, req *dns.Msg) {
	m := new(dns.Msg)
	m.SetReply(req)
	m.Authoritative = true
	if len(req.Question) != 1 || req.Opcode != dns.OpcodeQuery {
		m.Rcode = dns.RcodeNotImplemented
		m.Authoritative = false
		_ = w.WriteMsg(m)
		return
	}
	q := req.Question[0]
	ctx, cancel := context.WithTimeout(context.Background(), s.timeout)
	defer cancel()
	m.Rcode = dns.RcodeRefused
	m.Authoritative = false
	for _, src := range s.sources {
		a, ok, err := src.Answer(ctx, strings.ToLower(q.Name), q.Qtype)
		if err != nil {
			s.mu.Lock()
			s.errors = append(s.errors, fmt.Sprintf("%s %s (%s): %v", q.Name, dns.TypeToString[q.Qtype], src.Name(), err))
			s.mu.Unlock()
			m.Rcode = dns.RcodeServerFailure
			break
		}
		if !ok {
			continue
		}
		m.Rcode, m.Authoritative = dns.RcodeSuccess, true
		if a.NXDomain {
			m.Rcode = dns.RcodeNameError
		}
		for _, rr := range a.Records {
			rr = dns.Copy(rr)
			m.Answer = append(m.Answer, rr)
		}
		if len(a.Records) == 0 && a.SOA != nil {
			m.Ns = append(m.Ns, a.SOA)
		}
		break
	}
	if opt := req.IsEdns0(); opt != nil {
		m.SetEdns0(opt.UDPSize(), false)
	}
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		size := dns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		m.Truncate(size)
	}
	_ = w.WriteMsg(m)
}

// Addresses are what a target name (a load balancer, an edge) resolves to.
type Addresses struct {
	IPv4, IPv6 []string
}

// Targets resolves the names alias records and flattened CNAMEs point at
// (load balancers and the like, outside every zone served): the simulation
// gives each a fixed set of fake addresses.
type Targets func(name string) (Addresses, bool)

// addressRRs answers qtype (A or AAAA) at owner with a's addresses.
func addressRRs(owner string, qtype uint16, ttl uint32, a Addresses) ([]dns.RR, error) {
	var out []dns.RR
	list := a.IPv4
	if qtype == dns.TypeAAAA {
		list = a.IPv6
	}
	for _, v := range list {
		ip := net.ParseIP(v)
		if ip == nil {
			return nil, fmt.Errorf("%q is not an address", v)
		}
		hdr := dns.RR_Header{Name: owner, Class: dns.ClassINET, Ttl: ttl}
		if qtype == dns.TypeA {
			hdr.Rrtype = dns.TypeA
			out = append(out, &dns.A{Hdr: hdr, A: ip.To4()})
		} else {
			hdr.Rrtype = dns.TypeAAAA
			out = append(out, &dns.AAAA{Hdr: hdr, AAAA: ip})
		}
	}
	return out, nil
}

// lookupTarget finds a target's addresses by its name (case and trailing dot
// do not matter).
func lookupTarget(t Targets, name string) (Addresses, bool) {
	if t == nil {
		return Addresses{}, false
	}
	return t(strings.TrimSuffix(strings.ToLower(name), "."))
}

// inZone reports whether name (fully qualified) is zone or below it.
func inZone(name, zone string) bool {
	return name == zone || strings.HasSuffix(name, "."+zone)
}

// StaticTargets is a Targets from a map of names (no trailing dot, any case).
func StaticTargets(m map[string]Addresses) Targets {
	low := map[string]Addresses{}
	for k, v := range m {
		low[strings.TrimSuffix(strings.ToLower(k), ".")] = v
	}
	return func(name string) (Addresses, bool) {
		a, ok := low[name]
		return a, ok
	}
}

// TargetNames answers for the target names themselves (load balancers and the
// like), the way their own DNS answers a resolver: A and AAAA from the map,
// nothing else. In the simulation it stands in for the recursive resolution
// of a load balancer's name, so a check can compare an alias's answer with
// the addresses of the load balancer it should point at.
type TargetNames map[string]Addresses

// Name is "targets".
func (t TargetNames) Name() string { return "targets" }

// Answer implements Source.
func (t TargetNames) Answer(_ context.Context, name string, qtype uint16) (Answer, bool, error) {
	addrs, ok := lookupTarget(StaticTargets(t), name)
	if !ok {
		return Answer{}, false, nil
	}
	a := Answer{Zone: name}
	a.SOA, _ = dns.NewRR(name + " 60 IN SOA ns.targets.sim.invalid. hostmaster.sim.invalid. 1 7200 900 1209600 60")
	if qtype == dns.TypeA || qtype == dns.TypeAAAA {
		rrs, err := addressRRs(name, qtype, aliasTTL, addrs)
		if err != nil {
			return Answer{}, true, err
		}
		a.Records = rrs
	}
	return a, true, nil
}
