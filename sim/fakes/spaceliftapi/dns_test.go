package spaceliftapi

import (
	"context"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/miekg/dns"

	"github.com/runbookhq/runbook/sim/dnsserver"
)

// cnameZone is a dnsserver source holding one zone with one CNAME that a
// test can move, and one name with an address.
type cnameZone struct {
	mu            sync.Mutex
	zone, name    string
	target, addrd string
}

func (z *cnameZone) Name() string { return "test" }

func (z *cnameZone) Answer(_ context.Context, name string, qtype uint16) (dnsserver.Answer, bool, error) {
	if !dns.IsSubDomain(z.zone, name) {
		return dnsserver.Answer{}, false, nil
	}
	z.mu.Lock()
	defer z.mu.Unlock()
	a := dnsserver.Answer{Zone: z.zone}
	switch name {
	case z.name:
		a.Records = []dns.RR{&dns.CNAME{Hdr: dns.RR_Header{Name: name, Rrtype: dns.TypeCNAME, Class: dns.ClassINET, Ttl: 60}, Target: z.target}}
	case z.addrd:
		rr, _ := dns.NewRR(name + " 60 IN A 192.0.2.10")
		a.Records = []dns.RR{rr}
	default:
		a.NXDomain = true
	}
	return a, true, nil
}

func (z *cnameZone) move(target string) {
	z.mu.Lock()
	defer z.mu.Unlock()
	z.target = target
}

// Workers look the broker domain up over DNS, from the server a test runs
// on loopback: the CNAME's target when the process starts is its broker.
func TestDNSResolverFollowsTheRecord(t *testing.T) {
	ctx := context.Background()
	z := &cnameZone{zone: "example.com.", name: "worker-iot.example.com.", target: "primary-ats.iot.eu-west-1.amazonaws.com.", addrd: "spacelift.example.com."}
	srv, err := dnsserver.Start(z)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	r := DNSResolver{Addr: srv.Addr()}
	if got, err := r.Resolve(ctx, "worker-iot.example.com"); err != nil || got != "primary-ats.iot.eu-west-1.amazonaws.com" {
		t.Fatalf("Resolve = %q, %v", got, err)
	}
	if got, err := r.Resolve(ctx, "spacelift.example.com"); err != nil || got != "192.0.2.10" {
		t.Errorf("an address record: %q, %v", got, err)
	}
	if _, err := r.Resolve(ctx, "nothing.example.com"); err == nil || !strings.Contains(err.Error(), "NXDOMAIN") {
		t.Errorf("a missing name: %v", err)
	}
	if _, err := r.Resolve(ctx, "outside.example.org"); err == nil || !strings.Contains(err.Error(), "REFUSED") {
		t.Errorf("a name outside the zones: %v", err)
	}

	s := startFake(t)
	s.SetBrokerDomain("worker-iot.example.com", r)
	s.SetCycleDelay(0)
	if _, err := s.AddWorkers(ctx, "01POOL", 2); err != nil {
		t.Fatal(err)
	}
	jwt := token(t, s)
	z.move("dr-ats.iot.eu-west-3.amazonaws.com.")
	if got := served(t, s, jwt, "01POOL"); len(got) != 0 {
		t.Fatalf("after the move, before a restart, the pool lists %v", got)
	}
	if out := post(t, s.Endpoint(), jwt, `mutation C($id: ID!) { workerPoolCycle(id: $id) }`, map[string]any{"id": "01POOL"}); out["errors"] != nil {
		t.Fatal(out)
	}
	for _, w := range s.Workers("01POOL") {
		if w.Broker != "dr-ats.iot.eu-west-3.amazonaws.com" {
			t.Errorf("restarted after the move, on broker %q", w.Broker)
		}
	}
	if got := served(t, s, jwt, "01POOL"); len(got) != 2 {
		t.Errorf("after a restart past the move the pool lists %v", got)
	}
}

// A worker registers a register delay after its process started (looked
// the broker up), with that createdAt; a process stopped meanwhile never
// registers.
func TestRegisterDelay(t *testing.T) {
	ctx := context.Background()
	s := startFake(t)
	s.SetBrokerDomain("worker-iot.example.com", ResolverFunc(func(context.Context, string) (string, error) { return "b.example.com", nil }))
	s.SetRegisterDelay(300 * time.Millisecond)
	started := time.Now()
	if _, err := s.StartWorker(ctx, "01POOL", "process:a", nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.StartWorker(ctx, "01POOL", "process:b", nil); err != nil {
		t.Fatal(err)
	}
	s.StopWorker("process:b")
	if n := len(s.Workers("01POOL")); n != 0 {
		t.Fatalf("%d workers registered at once", n)
	}
	time.Sleep(500 * time.Millisecond)
	ws := s.Workers("01POOL")
	if len(ws) != 1 || ws[0].Process != "process:a" || ws[0].CreatedAt.Sub(started) < 300*time.Millisecond || ws[0].Broker != "b.example.com" {
		t.Fatalf("registered %+v, want process:a only, 300ms after its start", ws)
	}
}
