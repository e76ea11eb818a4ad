package dnsserver

import (
	"context"
	"os"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/fakes/cloudflareapi"
	"github.com/runbookhq/runbook/sim/topology"
)

// ForSimulation returns the sources a simulation's DNS server serves: the
// emulator's Route 53 zones (read at emulatorURL directly, not through the
// fault proxy: the data plane keeps answering when the control plane does
// not; with the emulator's pending changes), the Cloudflare fake's zones when
// cf is not nil, and the load balancers' names, whose addresses come from the
// seeded topology (topo returns it; nil: no targets).
func ForSimulation(emulatorURL string, topo func() *topology.Topology, cf *cloudflareapi.Server) []Source {
	targets := topologyTargets(topo)
	r53 := &Route53{
		Client:  route53.NewFromConfig(emulator.ConfigFor(emulatorURL, "us-east-1")),
		Targets: targets,
		Pending: PendingFromEmulator(emulatorURL),
	}
	sources := []Source{r53}
	if cf != nil {
		sources = append(sources, &Cloudflare{API: cf, Targets: targets})
	}
	return append(sources, targetSource(targets))
}

// ForCloudflare returns the sources of Cloudflare's name servers for the
// fake's zones alone (and the load balancers' names).
func ForCloudflare(cf *cloudflareapi.Server, topo func() *topology.Topology) []Source {
	targets := topologyTargets(topo)
	return []Source{&Cloudflare{API: cf, Targets: targets}, targetSource(targets)}
}

// topologyTargets gives the load balancers' addresses of the seeded topology.
func topologyTargets(topo func() *topology.Topology) Targets {
	return func(name string) (Addresses, bool) {
		var t *topology.Topology
		if topo != nil {
			t = topo()
		}
		if t == nil {
			return Addresses{}, false
		}
		a, ok := t.Addresses()[name]
		return Addresses{IPv4: a.IPv4, IPv6: a.IPv6}, ok
	}
}

// targetSource answers for the names Targets knows.
type targetSource Targets

func (t targetSource) Name() string { return "targets" }

func (t targetSource) Answer(ctx context.Context, name string, qtype uint16) (Answer, bool, error) {
	a, ok := lookupTarget(Targets(t), name)
	if !ok {
		return Answer{}, false, nil
	}
	return TargetNames{name: a}.Answer(ctx, name, qtype)
}

// TopologyFile returns the topology in path, read again whenever the file
// changes (simctl reset seeds a new installation), nil while it cannot be read.
func TopologyFile(path string) func() *topology.Topology {
	var mu sync.Mutex
	var mod time.Time
	var cur *topology.Topology
	return func() *topology.Topology {
		mu.Lock()
		defer mu.Unlock()
		fi, err := os.Stat(path)
		if err != nil {
			return cur
		}
		if !fi.ModTime().Equal(mod) {
			if t, err := topology.Load(path); err == nil {
				cur, mod = t, fi.ModTime()
			}
		}
		return cur
	}
}
