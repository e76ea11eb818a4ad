package topology

import (
	"encoding/json"
	"os"
	"path/filepath"
)

// InputsFile is the var file of the DR runbooks' inputs that the installer
// configs lack (written by WriteFiles beside them).
const InputsFile = "inputs.json"

// RunbookInputs are the inputs of runbooks/failover.yaml and failback.yaml
// that the installer configs do not carry: what an operator writes once in
// a var file. The configs themselves are given with --var primary=@config.json
// --var dr=@config.dr.json.
func (t *Topology) RunbookInputs() map[string]any {
	services := map[string]any{}
	for name, n := range t.Primary.DesiredCounts {
		services[name] = n
	}
	lb := func(r Region) map[string]any {
		return map[string]any{"dns_name": r.LoadBalancerDNS, "zone_id": r.LoadBalancerZoneID}
	}
	in := map[string]any{
		"global_cluster":        t.GlobalClusterID,
		"ecs_cluster_primary":   t.Primary.ECSCluster,
		"ecs_cluster_dr":        t.DR.ECSCluster,
		"services":              services,
		"hosted_zone_id":        t.HostedZoneID,
		"load_balancer_primary": lb(t.Primary),
		"load_balancer_dr":      lb(t.DR),
		"worker_asg":            t.DR.ASGName,
		// Each region has a worker group of that name (seed.go): the one
		// in the region moved to is cycled.
		"worker_asg_region": "each",
	}
	if t.DNSServer != "" {
		// The runbooks' check after a DNS switch asks the simulation's
		// name servers, never the real ones.
		in["route53_nameservers"] = []string{t.DNSServer}
		in["dns_resolver"] = t.DNSServer
	}
	return in
}

func writeInputs(dir string, t *Topology) error {
	b, err := json.MarshalIndent(t.RunbookInputs(), "", "  ")
	if err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(dir, InputsFile), append(b, '\n'), 0o644)
}
