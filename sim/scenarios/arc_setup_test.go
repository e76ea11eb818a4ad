package scenarios_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/miekg/dns"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// newSimIn is newSim with a named topology variant.
func newSimIn(t *testing.T, variant string) *sim {
	t.Helper()
	return newSimWith(t, variant, nil)
}

// newSimWith is newSim with a named topology variant and options (opt, if
// not nil, changes them before seeding). The default variant's AWS exchanges
// are recorded for the end-of-run contract and permission checks, as
// newSim's; the us-east-1 variant's are not yet (its tests set up Route 53
// ARC, whose REST paths carry URL-encoded ARNs the contract check does not
// match to operations yet).
func newSimWith(t *testing.T, variant string, opt func(*topology.Options)) *sim {
	t.Helper()
	e := emulator.StartForTest(t, emulator.Options{Timing: fastTiming})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	o, err := topology.Variant(variant, topology.Options{EndpointURL: e.URL, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if opt != nil {
		opt(&o)
	}
	topo, err := topology.Seed(ctx, o)
	if err != nil {
		t.Fatalf("seeding: %v", err)
	}
	p, err := faultproxy.Start(e.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if _, skip := skipRecording.Load(t.Name()); !skip && variant == "default" {
		p.Record(true)
		t.Cleanup(func() { keepRecorded(t, p) })
	}
	dir := t.TempDir()
	dnsAddr := startDNS(t, e, topo)
	if err := topo.WriteFiles(dir); err != nil {
		t.Fatal(err)
	}
	return &sim{t: t, emu: e, proxy: p, topo: topo, dir: dir, dns: dnsAddr}
}

const arcSetup = "runbooks/arc-setup.yaml"

// runbooks/arc-setup.yaml on the us-east-1 installation: it sets up the routing
// controls and turns the server hostname and the IoT broker domain into
// failover records that follow them; then, with us-east-1 dark (Route 53's
// control plane with it), flipping the routing controls through the cluster's
// endpoints in other regions moves both names' answers to us-west-2; a second
// run of the setup afterwards changes nothing and leaves traffic there.
func TestARCSetupThenFlipWithUSEast1Dark(t *testing.T) {
	t.Parallel()
	s := newSimIn(t, "us-east-1")
	ctx := s.ctx()
	in := s.topo.RunbookInputs()
	vars := map[string]any{"hosted_zone_id": in["hosted_zone_id"], "load_balancer_primary": in["load_balancer_primary"], "load_balancer_dr": in["load_balancer_dr"]}
	b, _ := json.Marshal(vars)
	varFile := filepath.Join(s.dir, "arc-inputs.json")
	if err := os.WriteFile(varFile, b, 0o644); err != nil {
		t.Fatal(err)
	}
	args := func(cmd string, extra ...string) []string {
		a := []string{cmd, arcSetup, "--var", "primary=@" + filepath.Join(s.dir, topology.PrimaryConfigFile), "--var", "dr=@" + filepath.Join(s.dir, topology.DRConfigFile),
			"--var-file", varFile, "--var", "poll_interval=250ms", "--state", filepath.Join(s.dir, "state"), "-o", "json"}
		return append(a, extra...)
	}
	if res := s.runbook(ctx, nil, "validate", arcSetup); res.code != 0 {
		t.Fatalf("validate: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}
	if res := s.runbook(ctx, nil, args("plan")...); res.code != 0 || !strings.Contains(res.stdout, `"resource": "ARC cluster spacelift"`) {
		t.Fatalf("plan: exit %d\n%s%s", res.code, res.stdout, res.stderr)
	}

	host, iot := s.topo.ServerRecordName, s.topo.IoTRecordName
	answer := func(name, typ string) string {
		t.Helper()
		a, err := s.emu.Route53Answer(ctx, s.topo.HostedZoneID, name, typ)
		if err != nil {
			t.Fatal(err)
		}
		if a.Alias != nil {
			return strings.TrimSuffix(a.Alias.DNSName, ".")
		}
		return strings.Join(a.Records, ",")
	}
	// The simulation's DNS server answers the same, from the emulator directly
	// (Route 53's name servers: the data plane).
	srv, err := dnsserver.Start(dnsserver.ForSimulation(s.emu.URL, func() *topology.Topology { return s.topo }, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	query := func(name string, qtype uint16) string {
		t.Helper()
		m := new(dns.Msg)
		m.SetQuestion(dns.Fqdn(name), qtype)
		r, _, err := (&dns.Client{Net: "udp", Timeout: 5 * time.Second}).Exchange(m, srv.Addr())
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, rr := range r.Answer {
			switch v := rr.(type) {
			case *dns.A:
				out = append(out, v.A.String())
			case *dns.CNAME:
				out = append(out, strings.TrimSuffix(v.Target, "."))
			}
		}
		return strings.Join(out, ",")
	}

	res := s.runbook(ctx, nil, args("run", "--auto-approve")...)
	if res.code != 0 {
		t.Fatalf("arc-setup: exit %d\n%s", res.code, res.stderr)
	}
	fin := res.eventsOf("", journal.RunFinished)
	if len(fin) != 1 {
		t.Fatalf("run_finished: %+v", fin)
	}
	arc, _ := fin[0].Outputs["arc"].(map[string]any)
	rcs, _ := arc["routing_controls"].(map[string]any)
	endpoints, _ := arc["cluster_endpoints"].([]any)
	if rcs["us-east-1"] == nil || rcs["us-west-2"] == nil || len(endpoints) != 5 || fin[0].Outputs["active_region"] != "us-east-1" {
		t.Fatalf("outputs %+v", fin[0].Outputs)
	}
	if got := answer(host, "A"); got != s.topo.Primary.LoadBalancerDNS {
		t.Errorf("%s answers %s, want the primary load balancer %s", host, got, s.topo.Primary.LoadBalancerDNS)
	}
	if got := answer(iot, "CNAME"); got != s.topo.Primary.IoTEndpoint {
		t.Errorf("%s answers %s, want %s", iot, got, s.topo.Primary.IoTEndpoint)
	}
	primaryAddrs := query(host, dns.TypeA)
	if primaryAddrs == "" || query(iot, dns.TypeCNAME) != s.topo.Primary.IoTEndpoint {
		t.Errorf("DNS server: %s A %q, %s CNAME %q", host, primaryAddrs, iot, query(iot, dns.TypeCNAME))
	}

	// us-east-1 goes dark: Route 53's control plane with it.
	if _, err := s.proxy.BlackholeRegion("us-east-1", faultproxy.Hang); err != nil {
		t.Fatal(err)
	}
	r53 := route53.NewFromConfig(emulator.ConfigFor(s.proxy.URL, "us-west-2"))
	cctx, cancel := context.WithTimeout(ctx, 2*time.Second)
	_, err = r53.GetHostedZone(cctx, &route53.GetHostedZoneInput{Id: aws.String(s.topo.HostedZoneID)})
	cancel()
	if err == nil {
		t.Fatal("Route 53's control plane answered with us-east-1 dark")
	}
	// The failover's traffic step: the routing controls, through the cluster's endpoints.
	b, _ = json.Marshal(endpoints)
	flip := fmt.Sprintf(`version: 1
name: flip
inputs:
  endpoints: { type: list, required: true }
plugins:
  aws: { command: runbook-plugin-aws }
steps:
  - id: traffic
    uses: aws.arc_routing_controls
    # Within the safety rule's wait period (5 s) after the setup's initial states, if it is: retried.
    retry: { attempts: 5, delay: 2s }
    with:
      cluster_endpoints: ${{ inputs.endpoints }}
      states: { %q: "On", %q: "Off" }
      endpoint_order: listed
      endpoint_timeout: 1s
`, rcs["us-west-2"], rcs["us-east-1"])
	flipFile := filepath.Join(s.dir, "flip.yaml")
	if err := os.WriteFile(flipFile, []byte(flip), 0o644); err != nil {
		t.Fatal(err)
	}
	flipStart := time.Now()
	res = s.runbook(ctx, nil, "run", flipFile, "--var", "endpoints="+string(b), "--state", filepath.Join(s.dir, "state"), "-o", "json")
	if res.code != 0 {
		t.Fatalf("flip: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	ok := res.eventsOf("traffic", journal.StepSucceeded)
	if len(ok) != 1 || ok[0].Outputs["endpoint_region"] == "us-east-1" || !strings.Contains(fmt.Sprint(ok[0].Outputs["unanswered"]), "us-east-1") {
		t.Fatalf("flip outputs %+v", ok)
	}
	for _, e := range s.proxy.Log() {
		// (The probe above may be logged late, when its held connection ends.)
		if e.Time.After(flipStart) && e.Service != "route53-recovery-cluster" {
			t.Errorf("the flip called %s %s in %s", e.Service, e.Operation, e.Region)
		}
	}
	if got := answer(host, "A"); got != s.topo.DR.LoadBalancerDNS {
		t.Errorf("after the flip %s answers %s, want the DR load balancer %s", host, got, s.topo.DR.LoadBalancerDNS)
	}
	if got := answer(iot, "CNAME"); got != s.topo.DR.IoTEndpoint {
		t.Errorf("after the flip %s answers %s, want %s", iot, got, s.topo.DR.IoTEndpoint)
	}
	if got := query(host, dns.TypeA); got == "" || got == primaryAddrs {
		t.Errorf("DNS server after the flip: %s A %q, want the DR load balancer's addresses (not %q)", host, got, primaryAddrs)
	}
	if got := query(iot, dns.TypeCNAME); got != s.topo.DR.IoTEndpoint {
		t.Errorf("DNS server after the flip: %s CNAME %q", iot, got)
	}

	// us-east-1 is back; the setup run again changes nothing and leaves traffic in us-west-2.
	s.proxy.Clear()
	res = s.runbook(ctx, nil, args("run", "--auto-approve")...)
	if res.code != 0 {
		t.Fatalf("arc-setup again: exit %d\n%s", res.code, res.stderr)
	}
	fin = res.eventsOf("", journal.RunFinished)
	if len(fin) != 1 || fin[0].Outputs["active_region"] != "us-west-2" {
		t.Fatalf("second run outputs %+v", fin)
	}
	for _, step := range []string{"initial_states", "server_a", "iot_broker"} {
		if ok := res.eventsOf(step, journal.StepSucceeded); len(ok) != 1 || ok[0].Outputs["changed"] != false {
			t.Errorf("second run, %s: %+v", step, ok)
		}
	}
	if ok := res.eventsOf("arc", journal.StepSucceeded); len(ok) != 1 || len(ok[0].Outputs["created"].([]any)) != 0 {
		t.Errorf("second run, arc: %+v", ok)
	}
	if got := answer(host, "A"); got != s.topo.DR.LoadBalancerDNS {
		t.Errorf("after the second setup %s answers %s", host, got)
	}
}
