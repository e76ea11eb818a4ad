// Command simfakes serves the local fakes of the non-AWS DR paths next to a
// running simulation (simctl up), for rehearsing them by hand: a Cloudflare
// v4 API holding the server and IoT broker records, a Spacelift GraphQL API
// with one worker pool, and a Kubernetes API server with a worker-pool
// controller Deployment and worker pods. It seeds them from the
// simulation's topology.json (records pointing at the primary region), writes
// the runbook inputs that reach them (paths.yaml, secrets.yaml, kubeconfig),
// prints every request they receive, and stops on Ctrl-C.
//
//	go run ./sim/fakes/cmd/simfakes --topology .sim/topology.json --dir .sim/fakes
//	runbook run runbooks/failover.yaml ... --var-file .sim/fakes/paths.yaml \
//	  --var-file .sim/fakes/secrets.yaml --var traffic=cloudflare --var workers=spacelift_api
package main

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/fakes/cloudflareapi"
	"github.com/runbookhq/runbook/sim/fakes/kubeapi"
	"github.com/runbookhq/runbook/sim/fakes/spaceliftapi"
	"github.com/runbookhq/runbook/sim/topology"
)

const (
	namespace  = "spacelift-workers"
	controller = "worker-pool-controller"
	workerPool = "01SIMPOOL"
)

func main() {
	topo := flag.String("topology", ".sim/topology.json", "the simulation's topology.json (simctl up writes it)")
	dir := flag.String("dir", ".sim/fakes", "where to write paths.yaml, secrets.yaml and kubeconfig")
	flag.Parse()
	if err := run(*topo, *dir); err != nil {
		fmt.Fprintln(os.Stderr, "simfakes:", err)
		os.Exit(1)
	}
}

func secret(prefix string) string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return prefix + hex.EncodeToString(b)
}

func run(topoPath, dir string) error {
	t, err := topology.Load(topoPath)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return err
	}
	cfToken, kubeToken, keyID, keySecret := secret("cf-"), secret("kube-"), "01SIMKEY", secret("sl-")

	cf, err := cloudflareapi.Start(cfToken)
	if err != nil {
		return err
	}
	defer cf.Close()
	zone := cf.AddZone(t.Domain)
	for name, target := range map[string]string{t.ServerRecordName: t.Primary.LoadBalancerDNS, t.IoTRecordName: t.Primary.IoTEndpoint} {
		if _, err := cf.AddRecord(zone, name, "CNAME", target, 300, false); err != nil {
			return err
		}
	}

	// Cloudflare's name servers for the fake's zone (and the load balancers'
	// names, for dns.resolve_check's address_of).
	cfDNS, err := dnsserver.Start(dnsserver.ForCloudflare(cf, func() *topology.Topology { return t })...)
	if err != nil {
		return err
	}
	defer cfDNS.Close()

	sl, err := spaceliftapi.Start(keyID, keySecret)
	if err != nil {
		return err
	}
	defer sl.Close()
	sl.AddPool(workerPool)
	if _, err := sl.AddWorkers(context.Background(), workerPool, 3); err != nil {
		return err
	}

	kube, err := kubeapi.Start(kubeToken)
	if err != nil {
		return err
	}
	defer kube.Close()
	kube.AddDeployment(namespace, controller, 2, map[string]string{"app.kubernetes.io/name": "worker-pool-controller"})
	kube.AddPods(namespace, "spacelift-worker", 3, map[string]string{"app.kubernetes.io/name": "spacelift-worker"})
	kubeconfig, _ := filepath.Abs(filepath.Join(dir, "kubeconfig"))
	if err := kube.WriteKubeconfig(kubeconfig, "sim-workers"); err != nil {
		return err
	}

	paths := fmt.Sprintf(`# Inputs of every traffic and worker path, reaching the local fakes (simfakes).
# Choose the path with --var traffic=... --var workers=...
cloudflare_zone: %s
cloudflare_base_url: %s
cloudfront_distribution_id: %s
k8s_kubeconfig: %s
k8s_context: sim-workers
k8s_namespace: %s
k8s_deployment: %s
spacelift_worker_pool_id: %s
spacelift_api_key_id: %s
spacelift_endpoint: %s
cloudflare_nameservers: [%q]
`, t.Domain, cf.BaseURL(), t.DistributionID, kubeconfig, namespace, controller, workerPool, keyID, sl.Endpoint(), cfDNS.Addr())
	if err := os.WriteFile(filepath.Join(dir, "paths.yaml"), []byte(paths), 0o600); err != nil {
		return err
	}
	secrets := fmt.Sprintf("cloudflare_api_token: %s\nspacelift_api_key_secret: %s\n", cfToken, keySecret)
	if err := os.WriteFile(filepath.Join(dir, "secrets.yaml"), []byte(secrets), 0o600); err != nil {
		return err
	}

	fmt.Printf("Cloudflare API  %s (zone %s: %s and %s -> %s)\n", cf.BaseURL(), t.Domain, t.ServerRecordName, t.IoTRecordName, t.Primary.Name)
	fmt.Printf("Cloudflare DNS  %s (UDP and TCP: resolve_check's nameservers and resolver)\n", cfDNS.Addr())
	fmt.Printf("Spacelift API   %s (worker pool %s, 3 workers)\n", sl.Endpoint(), workerPool)
	fmt.Printf("Kubernetes API  %s (deployment %s/%s, 3 worker pods)\n", kube.URL(), namespace, controller)
	fmt.Printf("inputs: --var-file %s --var-file %s\n", filepath.Join(dir, "paths.yaml"), filepath.Join(dir, "secrets.yaml"))
	fmt.Println("Ctrl-C to stop. Requests as they arrive:")

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	var nCF, nSL, nKube int
	tick := time.NewTicker(250 * time.Millisecond)
	defer tick.Stop()
	for {
		for _, r := range cf.Requests()[nCF:] {
			nCF++
			fmt.Printf("cloudflare  %-6s %s %s (auth %s)\n", r.Method, r.Path, r.Query, r.Auth)
		}
		for _, r := range sl.Requests()[nSL:] {
			nSL++
			fmt.Printf("spacelift   %s authorized=%v %s\n", r.Operation, r.Authorized, r.Error)
		}
		for _, r := range kube.Requests()[nKube:] {
			nKube++
			fmt.Printf("kubernetes  %-6s %s %s authorized=%v\n", r.Method, r.Path, r.Query, r.Authorized)
		}
		select {
		case <-ctx.Done():
			fmt.Println("\nstate at exit:")
			for _, name := range []string{t.ServerRecordName, t.IoTRecordName} {
				for _, r := range cf.Records(name) {
					fmt.Printf("  cloudflare %s %s -> %s\n", r.Type, r.Name, r.Content)
				}
			}
			fmt.Printf("  spacelift  %d worker pool cycle(s)\n", len(sl.Cycles()))
			if d, ok := kube.Deployment(namespace, controller); ok {
				fmt.Printf("  kubernetes deployment %s revision %s\n", controller, d.Annotations["deployment.kubernetes.io/revision"])
			}
			return nil
		case <-tick.C:
		}
	}
}
