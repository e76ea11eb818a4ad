package dnsserver_test

import (
	"context"
	"fmt"
	"testing"
	"time"

	elb "github.com/aws/aws-sdk-go-v2/service/elasticloadbalancingv2"
	"github.com/miekg/dns"

	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/topology"
)

// A dual-stack installation, served as the simulation serves it: the server
// hostname's A and AAAA aliases answer the primary load balancer's IPv4 and
// IPv6 addresses, the load balancers' own names answer theirs.
func TestDualStackTopologyServed(t *testing.T) {
	t.Parallel()
	e := emulator.StartForTest(t, emulator.Options{IgnoreExternal: true, TimingPreset: emulator.PresetInstant})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo, err := topology.Seed(ctx, topology.Options{EndpointURL: e.URL, DualStack: true, Wait: true})
	if err != nil {
		t.Fatal(err)
	}
	if !topo.DualStack || len(topo.Primary.LoadBalancerIPv6) != 2 || len(topo.DR.LoadBalancerIPv6) != 2 {
		t.Fatalf("topology: dual stack %v, IPv6 %v / %v", topo.DualStack, topo.Primary.LoadBalancerIPv6, topo.DR.LoadBalancerIPv6)
	}
	lbs, err := elb.NewFromConfig(e.Config(topo.DR.Name)).DescribeLoadBalancers(ctx, &elb.DescribeLoadBalancersInput{LoadBalancerArns: []string{topo.DR.LoadBalancerARN}})
	if err != nil || len(lbs.LoadBalancers) != 1 || lbs.LoadBalancers[0].IpAddressType != "dualstack" {
		t.Fatalf("DR load balancer: %+v, %v", lbs, err)
	}
	srv, err := dnsserver.Start(dnsserver.ForSimulation(e.URL, func() *topology.Topology { return topo }, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	for _, tc := range []struct {
		name  string
		qtype uint16
		want  []string
	}{
		{topo.ServerRecordName, dns.TypeA, topo.Primary.LoadBalancerIPv4},
		{topo.ServerRecordName, dns.TypeAAAA, topo.Primary.LoadBalancerIPv6},
		{topo.DR.LoadBalancerDNS, dns.TypeA, topo.DR.LoadBalancerIPv4},
		{"dualstack." + topo.DR.LoadBalancerDNS, dns.TypeAAAA, topo.DR.LoadBalancerIPv6},
		{topo.IoTRecordName, dns.TypeCNAME, []string{topo.Primary.IoTEndpoint + "."}},
	} {
		rcode, aa, got := query(t, srv.Addr(), "udp", tc.name, tc.qtype)
		var want []string
		for _, w := range tc.want {
			want = append(want, dns.TypeToString[tc.qtype]+" "+w)
		}
		if rcode != "NOERROR" || !aa || fmt.Sprint(got) != fmt.Sprint(want) {
			t.Errorf("%s %s: %s aa=%v %v, want %v", tc.name, dns.TypeToString[tc.qtype], rcode, aa, got, want)
		}
	}
}
