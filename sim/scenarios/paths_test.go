package scenarios_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudfront"
	"gopkg.in/yaml.v3"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sdk/spec"
	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/fakes/cloudflareapi"
	"github.com/runbookhq/runbook/sim/fakes/kubeapi"
	"github.com/runbookhq/runbook/sim/fakes/spaceliftapi"
	"github.com/runbookhq/runbook/sim/fakes/webhook"
	"github.com/runbookhq/runbook/sim/topology"
)

// This file runs the traffic and worker paths of the DR runbooks that
// scenarios_test.go does not (Cloudflare, CloudFront, Kubernetes, the
// Spacelift API), the notice channels and the installer config rewrite,
// against the emulator and the local fakes of sim/fakes, and checks that no
// credential appears in anything the runs leave behind.

var (
	trafficPaths = []string{"route53", "cloudflare", "cloudfront"}
	workerPaths  = []string{"asg", "kubernetes", "spacelift_api"}
)

const enableDR = "runbooks/enable-dr.yaml"

// randomSecret is a credential no other test shares, so finding it is a leak.
func randomSecret(t *testing.T, prefix string) string {
	t.Helper()
	b := make([]byte, 16)
	if _, err := rand.Read(b); err != nil {
		t.Fatal(err)
	}
	return prefix + hex.EncodeToString(b)
}

// writeFile writes a file under the sim's directory and returns its path.
func (s *sim) writeFile(name, content string, mode os.FileMode) string {
	s.t.Helper()
	path := filepath.Join(s.dir, name)
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		s.t.Fatal(err)
	}
	return path
}

// paths holds the local fakes behind the non-AWS paths, seeded like the
// emulated installation: Cloudflare records and Kubernetes workers that
// point at / run for the primary region, a Spacelift API with one pool.
type paths struct {
	cf        *cloudflareapi.Server
	cfZoneID  string
	cfToken   string
	cfDNS     string // the Cloudflare zone's name server
	kube      *kubeapi.Server
	kubeToken string
	kubeconfg string
	sl        *spaceliftapi.Server
	slKeyID   string
	slSecret  string
	slPool    string
	// The pools whose workers the other paths restart (workers_test.go):
	// the DR region's auto-scaling group's instances, the worker-pool
	// controller Deployment's pods, the pods matching k8sSelector.
	asgPool, k8sPool, k8sPodsPool string
	// broker says which DNS the workers look the broker domain up in.
	broker *brokerDNS
}

const (
	k8sNamespace  = "spacelift-workers"
	k8sController = "worker-pool-controller"
	k8sSelector   = "app.kubernetes.io/name=spacelift-worker"
)

func (s *sim) startPaths() *paths {
	s.t.Helper()
	p := &paths{cfToken: randomSecret(s.t, "cf-"), kubeToken: randomSecret(s.t, "kube-"), slKeyID: "01SIMKEY" + strings.ToUpper(randomSecret(s.t, ""))[:8],
		slSecret: randomSecret(s.t, "sl-"), slPool: "01SIMPOOL"}
	var err error
	if p.cf, err = cloudflareapi.Start(p.cfToken); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = p.cf.Close() })
	p.cfZoneID = p.cf.AddZone(s.topo.Domain)
	// Cloudflare's name servers for the zone (the runbooks' DNS check asks them).
	cfDNS, err := dnsserver.Start(dnsserver.ForCloudflare(p.cf, func() *topology.Topology { return s.topo })...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = cfDNS.Close() })
	p.cfDNS = cfDNS.Addr()
	for name, target := range map[string]string{s.topo.ServerRecordName: s.topo.Primary.LoadBalancerDNS, s.topo.IoTRecordName: s.topo.Primary.IoTEndpoint} {
		if _, err := p.cf.AddRecord(p.cfZoneID, name, "CNAME", target, 300, false); err != nil {
			s.t.Fatal(err)
		}
	}
	if p.kube, err = kubeapi.Start(p.kubeToken); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = p.kube.Close() })
	p.kube.AddDeployment(k8sNamespace, k8sController, 2, map[string]string{"app.kubernetes.io/name": "worker-pool-controller"})
	p.kube.AddPods(k8sNamespace, "spacelift-worker", 3, map[string]string{"app.kubernetes.io/name": "spacelift-worker"})
	p.kubeconfg = filepath.Join(s.dir, "kubeconfig")
	if err := p.kube.WriteKubeconfig(p.kubeconfg, "dr-workers"); err != nil {
		s.t.Fatal(err)
	}
	if p.sl, err = spaceliftapi.Start(p.slKeyID, p.slSecret); err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = p.sl.Close() })
	p.sl.AddPool(p.slPool)
	p.startWorkers(s)
	return p
}

// args are the inputs of the traffic and worker paths: every path's, so a
// var file like an operator's serves any choice. Secrets are given the way
// the guide recommends: the Cloudflare token from a file (--var name=@file),
// the Spacelift key secret in a var file.
func (p *paths) args(s *sim, traffic, workers string) []string {
	return p.argsWithKeyID(s, traffic, workers, p.slKeyID)
}

func (p *paths) argsWithKeyID(s *sim, traffic, workers, keyID string) []string {
	s.t.Helper()
	token := s.writeFile("cloudflare.token", p.cfToken+"\n", 0o600)
	secrets := s.writeFile("secrets.yaml", "spacelift_api_key_secret: "+p.slSecret+"\n", 0o600)
	pool := map[string]string{"asg": p.asgPool, "kubernetes": p.k8sPool, "spacelift_api": p.slPool}[workers]
	return []string{
		"--var", "traffic=" + traffic, "--var", "workers=" + workers, "--var", "workers_reconnect_timeout=" + reconnectBound.String(),
		"--var", "cloudflare_zone=" + s.topo.Domain, "--var", "cloudflare_api_token=@" + token, "--var", "cloudflare_base_url=" + p.cf.BaseURL(),
		"--var", `cloudflare_nameservers=["` + p.cfDNS + `"]`,
		"--var", "cloudfront_distribution_id=" + s.topo.DistributionID,
		"--var", "k8s_kubeconfig=" + p.kubeconfg, "--var", "k8s_context=dr-workers", "--var", "k8s_namespace=" + k8sNamespace,
		"--var", "spacelift_worker_pool_id=" + pool, "--var", "spacelift_api_key_id=" + keyID, "--var", "spacelift_endpoint=" + p.sl.Endpoint(),
		"--var-file", secrets,
	}
}

func (p *paths) secrets() map[string]string {
	return map[string]string{"Cloudflare API token": p.cfToken, "Kubernetes token": p.kubeToken, "Spacelift API key secret": p.slSecret}
}

// --- Validation and input choices. ---------------------------------------------------------

func TestDRRunbooksValidate(t *testing.T) {
	s := &sim{t: t, dir: t.TempDir()}
	res := s.runbook(s.ctx(), nil, "validate", failover, failback, enableDR)
	if res.code != 0 {
		t.Fatalf("validate exit %d:\n%s%s", res.code, res.stdout, res.stderr)
	}
	for _, rb := range []string{failover, failback, enableDR} {
		if !strings.Contains(res.stdout, rb+": ok") {
			t.Errorf("validate did not report %s ok:\n%s", rb, res.stdout)
		}
	}
}

// The two runbooks share one var file, so they must declare the same inputs.
func TestFailoverAndFailbackDeclareTheSameInputs(t *testing.T) {
	names := func(path string) []string {
		b, err := os.ReadFile(filepath.Join(repoRoot, path))
		if err != nil {
			t.Fatal(err)
		}
		var doc struct {
			Inputs map[string]any `yaml:"inputs" json:"inputs"`
		}
		if err := yaml.Unmarshal(b, &doc); err != nil {
			t.Fatal(err)
		}
		var out []string
		for k := range doc.Inputs {
			out = append(out, k)
		}
		slices.Sort(out)
		return out
	}
	if a, b := names(failover), names(failback); !slices.Equal(a, b) {
		t.Errorf("inputs differ:\nfailover: %v\nfailback: %v", a, b)
	}
}

// An unknown path is refused before anything starts, at the flag or the var
// file line that gave it, and no run is journaled.
func TestUnknownPathIsRejected(t *testing.T) {
	s := &sim{t: t, dir: t.TempDir()}
	base := s.writeFile("base.yaml", strings.Join([]string{
		"primary: {aws_region: eu-west-1, hostname: spacelift.example.com, iot_broker_endpoint: worker-iot.spacelift.example.com, disaster_recovery: {s3_bucket_replication: {enabled: true}}}",
		"dr: {aws_region: eu-west-3, hostname: spacelift.example.com, iot_broker_endpoint: worker-iot.spacelift.example.com, disaster_recovery: {s3_bucket_replication: {enabled: true}}}",
		"global_cluster: spacelift",
		"ecs_cluster_primary: spacelift",
		"ecs_cluster_dr: spacelift",
		"load_balancer_primary: {dns_name: a.example.com, zone_id: Z1}",
		"load_balancer_dr: {dns_name: b.example.com, zone_id: Z1}",
		"hosted_zone_id: Z2",
		"worker_asg: workers",
	}, "\n")+"\n", 0o644)
	bad := s.writeFile("bad.yaml", "# the worker path\nworkers: lambda\n", 0o644)
	state := filepath.Join(s.dir, "state")
	cases := []struct {
		args []string
		want string
	}{
		{[]string{"--var", "traffic=dns"}, `--var traffic: input traffic must be one of "route53", "route53_arc", "cloudflare", "cloudfront", not "dns"`},
		{[]string{"--var", "workers=vm"}, `--var workers: input workers must be one of "asg", "kubernetes", "spacelift_api", not "vm"`},
		{[]string{"--var", "iot_dns=bind"}, `--var iot_dns: input iot_dns must be one of "auto", "route53", "cloudflare", not "bind"`},
		{[]string{"--var-file", bad}, bad + `:2:10: input workers must be one of "asg", "kubernetes", "spacelift_api", not "lambda"`},
	}
	for _, rb := range []string{failover, failback} {
		for _, cmd := range []string{"run", "plan"} {
			for _, c := range cases {
				args := append([]string{cmd, rb, "--var-file", base, "--state", state}, c.args...)
				res := s.runbook(s.ctx(), nil, args...)
				if res.code != 2 {
					t.Errorf("%s %s %v: exit %d, want 2\n%s", cmd, rb, c.args, res.code, res.stderr)
				}
				if !strings.Contains(res.stderr, c.want) || !strings.Contains(res.stderr, "1 error(s); nothing was run") {
					t.Errorf("%s %s %v: stderr does not say only %q:\n%s", cmd, rb, c.args, c.want, res.stderr)
				}
			}
		}
	}
	if entries, err := os.ReadDir(filepath.Join(state, "runs")); err == nil && len(entries) > 0 {
		t.Errorf("a refused run was journaled: %v", entries)
	}
}

// A chosen path without its inputs fails at the first step, naming every
// missing input, before anything is read or changed.
func TestMissingPathInputsAreNamed(t *testing.T) {
	s := &sim{t: t, dir: t.TempDir()}
	base := s.writeFile("base.yaml", strings.Join([]string{
		"primary: {aws_region: eu-west-1, hostname: spacelift.example.com, iot_broker_endpoint: worker-iot.spacelift.example.com, disaster_recovery: {s3_bucket_replication: {enabled: true}}}",
		"dr: {aws_region: eu-west-3, hostname: spacelift.example.com, iot_broker_endpoint: worker-iot.spacelift.example.com, disaster_recovery: {s3_bucket_replication: {enabled: true}}}",
		"global_cluster: spacelift",
		"ecs_cluster_primary: spacelift",
		"ecs_cluster_dr: spacelift",
		"load_balancer_primary: {dns_name: a.example.com, zone_id: Z1}",
		"load_balancer_dr: {dns_name: b.example.com, zone_id: Z1}",
	}, "\n")+"\n", 0o644)
	for _, rb := range []string{failover, failback} {
		res := s.runbook(s.ctx(), nil, "run", rb, "--auto-approve", "-o", "json", "--var-file", base, "--state", filepath.Join(s.dir, "state"),
			"--var", "traffic=cloudfront", "--var", "workers=kubernetes", "--var", "k8s_deployment=a", "--var", "k8s_selector=b",
			"--var", "rewrite_installer_configs=true")
		if res.code != 1 {
			t.Fatalf("%s: exit %d, want 1\n%s", rb, res.code, res.stderr)
		}
		f := res.eventsOf(dr("check_inputs"), journal.StepFailed)
		want := "hosted_zone_id, cloudfront_distribution_id, k8s_namespace, exactly one of k8s_deployment and k8s_selector, primary_config_file and dr_config_file"
		if len(f) != 1 || f[0].Error == nil || !strings.Contains(f[0].Error.Message, want) {
			t.Errorf("%s: check_inputs: want a failure naming %q, got %+v", rb, want, f)
		}
		for _, e := range res.eventsOf("", journal.StepStarted) {
			// switch, which calls region-switch.yaml, holds check_inputs.
			if e.Step != dr("check_inputs") && e.Step != "switch" {
				t.Errorf("%s: step %s started after the input check failed", rb, e.Step)
			}
		}
	}
}

// Every combination of traffic and worker path plans cleanly against the
// simulation and the fakes, for both runbooks: every expression of the
// chosen path evaluates, each plugin plans its step, the other paths' steps
// are skipped, and nothing changes anywhere.
func TestPlanEveryPath(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := s.startPaths()
	before := s.state()
	s.proxy.ResetLog()

	// The steps each choice runs; every other alternative must be skipped.
	trafficSteps := map[string][]string{"route53": {dr("dns_server"), dr("dns_iot")}, "cloudflare": {dr("cloudflare_server"), dr("cloudflare_iot")}, "cloudfront": {dr("cloudfront_server"), dr("dns_iot")}}
	workerSteps := map[string]string{"asg": dr("workers"), "kubernetes": dr("workers_k8s_restart"), "kubernetes/selector": dr("workers_k8s_pods"), "spacelift_api": dr("workers_spacelift")}
	alternatives := []string{dr("dns_server"), dr("cloudflare_server"), dr("cloudfront_server"), dr("dns_iot"), dr("cloudflare_iot"), dr("workers"), dr("workers_k8s_restart"), dr("workers_k8s_pods"), dr("workers_spacelift")}

	type combo struct{ rb, traffic, workers string }
	var combos []combo
	for _, rb := range []string{failover, failback} {
		for _, traffic := range trafficPaths {
			for _, workers := range append(slices.Clone(workerPaths), "kubernetes/selector") {
				combos = append(combos, combo{rb, traffic, workers})
			}
		}
	}
	// Plans only read, so a few run at once (each starts its own plugins).
	plans := make([]result, len(combos))
	sem := make(chan struct{}, 3)
	var wg sync.WaitGroup
	for i, c := range combos {
		args := append([]string{"plan", c.rb, "-o", "json"}, s.drArgs()...)
		w := c.workers
		extra := []string{"--var", "k8s_deployment=" + k8sController}
		if c.workers == "kubernetes/selector" {
			w = "kubernetes"
			extra = []string{"--var", "k8s_selector=" + k8sSelector, "--var", "spacelift_worker_pool_id=" + p.k8sPodsPool}
		}
		args = append(append(args, p.args(s, c.traffic, w)...), extra...)
		wg.Add(1)
		go func() {
			defer wg.Done()
			sem <- struct{}{}
			defer func() { <-sem }()
			plans[i] = s.runbook(s.ctx(), nil, args...)
		}()
	}
	wg.Wait()
	for i, c := range combos {
		name := fmt.Sprintf("%s/%s/%s", filepath.Base(c.rb), c.traffic, c.workers)
		res := plans[i]
		if res.code != 0 {
			t.Errorf("%s: plan exit %d\n%s\n%s", name, res.code, res.stdout, res.stderr)
			continue
		}
		var plan engine.PlanResult
		if err := json.Unmarshal([]byte(res.stdout), &plan); err != nil {
			t.Errorf("%s: plan JSON: %v\n%s", name, err, res.stdout)
			continue
		}
		want := append(slices.Clone(trafficSteps[c.traffic]), workerSteps[c.workers])
		for _, st := range plan.Steps {
			switch {
			case slices.Contains(want, st.ID):
				if st.Decision != engine.PlanRun || st.Plan == nil || st.Err != "" {
					t.Errorf("%s: step %s: decision %s, plan %v, error %q; want it planned", name, st.ID, st.Decision, st.Plan, st.Err)
				}
				for _, d := range planDiags(st) {
					if d.Severity == spec.SeverityError {
						t.Errorf("%s: step %s: plan error %s", name, st.ID, d.Summary)
					}
				}
			case slices.Contains(alternatives, st.ID):
				if st.Decision != engine.PlanSkip {
					t.Errorf("%s: step %s of another path: decision %s, want skip", name, st.ID, st.Decision)
				}
			case st.ID == dr("check_inputs"), st.ID == dr("check_worker_inputs"), st.ID == dr("check_workers"):
				if len(planDiags(st)) > 0 {
					t.Errorf("%s: the check %s would fail: %+v", name, st.ID, planDiags(st))
				}
			// The pre-flight reads of the workers ran: the pool's count
			// (every path names a pool here), the group (asg).
			case st.ID == dr("workers_before"), st.ID == dr("worker_asg_status") && c.workers == "asg":
				if !st.Read || st.Err != "" {
					t.Errorf("%s: step %s not read during the plan (decision %s, error %q)", name, st.ID, st.Decision, st.Err)
				}
			}
		}
	}
	if diff := diffState(before, s.state()); diff != "" {
		t.Errorf("plans changed the world: %s", diff)
	}
	for _, e := range s.proxy.Log() {
		if isMutating(e.Operation) {
			t.Errorf("a plan sent a mutating AWS call: %s %s", e.Service, e.Operation)
		}
	}
	if m := p.cf.Mutations(); len(m) != 0 {
		t.Errorf("a plan changed Cloudflare: %+v", m)
	}
	for _, r := range p.kube.Requests() {
		if r.Method != "GET" {
			t.Errorf("a plan changed Kubernetes: %s %s", r.Method, r.Path)
		}
	}
	// A plan reads the worker pools (how many workers each lists), and
	// changes nothing there.
	for _, r := range p.sl.Requests() {
		if r.Operation != "apiKeyUser" && r.Operation != "workerPool" {
			t.Errorf("a plan sent Spacelift %s", r.Operation)
		}
	}
	if n := len(p.sl.Cycles()); n != 0 {
		t.Errorf("a plan cycled a worker pool %d times", n)
	}
	p.assertNoLeak(s, plans, nil)
}

func planDiags(st engine.PlanStep) []spec.Diagnostic {
	if st.Plan == nil {
		return nil
	}
	return st.Plan.Diagnostics
}

// --- Failover and failback along the other paths. ------------------------------------------

// Cloudflare carries the traffic, the Spacelift API cycles the workers, the
// notice goes to Slack and a webhook too, and the installer configs are
// rewritten (permanent move), then all of it is undone by the failback.
func TestCloudflareSpaceliftAPINoticeAndConfigs(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := s.startPaths()
	p.broker.useCloudflare.Store(true) // the IoT broker record is in Cloudflare
	slack, err := webhook.Start("/services/T0SIM/B0SIM")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = slack.Close() })
	hook, err := webhook.Start("/hooks/dr")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = hook.Close() })
	hookAuth := randomSecret(t, "Bearer hook-")
	notices := s.writeFile("notice.yaml", fmt.Sprintf("slack_webhook_url: %s\nwebhook_url: %s\nwebhook_headers: {Authorization: %q}\nnotice_extra_text: \"Questions: #platform-oncall\"\n",
		slack.URL(), hook.URL(), hookAuth), 0o600)
	primaryCfg, drCfg := filepath.Join(s.dir, "config.json"), filepath.Join(s.dir, "config.dr.json")
	origPrimary, origDR := readFile(t, primaryCfg), readFile(t, drCfg)
	extraWithKey := func(keyID string) []string {
		return append(p.argsWithKeyID(s, "cloudflare", "spacelift_api", keyID), "--var-file", notices,
			"--var", "rewrite_installer_configs=true", "--var", "primary_config_file="+primaryCfg, "--var", "dr_config_file="+drCfg, "--var", "permanent=true",
			"--log-level", "trace")
	}
	extra := extraWithKey(p.slKeyID)
	route53Before := s.state()
	var runs []result

	// Cloudflare refuses the IoT record's change: the server record, the
	// services and the writer are all put back, and nothing after the
	// traffic step happened.
	t.Run("a refused Cloudflare change rolls everything back", func(t *testing.T) {
		p.cf.RejectWrites(s.topo.IoTRecordName, 1)
		res := s.runbook(s.ctx(), nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), extra...)...)
		runs = append(runs, res)
		if res.code != 1 {
			t.Fatalf("exit %d, want 1 (failed and rolled back)\nstderr:\n%s", res.code, res.stderr)
		}
		if f := res.eventsOf(dr("cloudflare_iot"), journal.StepFailed); len(f) != 1 || f[0].Error == nil || !strings.Contains(f[0].Error.Message, "1004") {
			t.Errorf("cloudflare_iot: want a failure with Cloudflare's code 1004, got %+v", f)
		}
		var order []string
		for _, e := range res.eventsOf("", journal.RollbackSucceeded) {
			order = append(order, e.Step)
		}
		// The refused IoT step is compensated too (its rollback says when:
		// attempted; the record is already where it points it).
		if want := []string{dr("cloudflare_server"), dr("cloudflare_iot"), dr("guard_target_services"), dr("db_switchover")}; !siblingsFirst(order, want) {
			t.Errorf("rollbacks %v, want %v (the first two in either order)", order, want)
		}
		st := s.state()
		if st.writerRegion != s.topo.Primary.Name {
			t.Errorf("writer in %s after the rollback", st.writerRegion)
		}
		for name, n := range s.topo.Primary.DesiredCounts {
			if st.drCounts[name] != 0 || st.primaryCounts[name] != n {
				t.Errorf("service %s: DR %d, primary %d after the rollback", name, st.drCounts[name], st.primaryCounts[name])
			}
		}
		p.assertCloudflare(t, s.topo.ServerRecordName, s.topo.Primary.LoadBalancerDNS)
		p.assertCloudflare(t, s.topo.IoTRecordName, s.topo.Primary.IoTEndpoint)
		if r := p.cf.Records(s.topo.ServerRecordName); len(r) == 1 && r[0].TTL != 300 {
			t.Errorf("restored server record has TTL %v, want the original 300", r[0].TTL)
		}
		if n := len(p.sl.Cycles()); n != 0 || len(slack.Deliveries()) != 0 || len(hook.Deliveries()) != 0 {
			t.Errorf("workers or notice reached after a failed traffic switch (%d worker pool cycles)", n)
		}
		if !slices.Equal(readFile(t, primaryCfg), origPrimary) || !slices.Equal(readFile(t, drCfg), origDR) {
			t.Errorf("installer configs changed by a failed failover")
		}
	})

	t.Run("failover", func(t *testing.T) {
		res := s.runbook(s.ctx(), nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), extra...)...)
		runs = append(runs, res)
		if res.code != 0 {
			t.Fatalf("failover exit %d\nstderr:\n%s", res.code, res.stderr)
		}
		st := s.state()
		if st.writerRegion != s.topo.DR.Name {
			t.Errorf("writer in %s", st.writerRegion)
		}
		// Cloudflare: both records now point at the DR region, changed in place.
		p.assertCloudflare(t, s.topo.ServerRecordName, s.topo.DR.LoadBalancerDNS)
		p.assertCloudflare(t, s.topo.IoTRecordName, s.topo.DR.IoTEndpoint)
		for _, r := range p.cf.Mutations() {
			if r.Method != "PATCH" || r.Auth != "valid" {
				t.Errorf("Cloudflare change %s %s (auth %s), want an authorized PATCH", r.Method, r.Path, r.Auth)
			}
		}
		// Route 53 was not the path: its records are as they were.
		if st.serverAlias != route53Before.serverAlias || st.iotCNAME != route53Before.iotCNAME || s.proxy.Count("route53", "ChangeResourceRecordSets") != 0 {
			t.Errorf("Route 53 touched on the Cloudflare path: server %s, iot %s", st.serverAlias, st.iotCNAME)
		}
		// The worker pool was cycled once, with a JWT from apiKeyUser.
		p.assertCycles(t, 1)
		// The notice reached the console, Slack and the webhook.
		assertNotice(t, res, "failover", s.topo.ServerRecordName, s.topo.DR.Name)
		assertDeliveries(t, slack, hook, 1, s.topo.ServerRecordName, s.topo.DR.Name, hookAuth)
		// Afterwards (docs/dr-guide.md, "The installer configs"): the DR config is the active one, is_dr_instance swapped.
		assertConfig(t, primaryCfg, map[string]any{"disable_services": true, "disaster_recovery.is_dr_instance": true})
		assertConfig(t, drCfg, map[string]any{"disable_services": false, "disaster_recovery.is_dr_instance": false})
		assertBackups(t, primaryCfg, origPrimary, 1)
		assertBackups(t, drCfg, origDR, 1)
		if got := res.eventsOf(dr("installer_next"), ""); len(got) == 0 || got[0].Type != journal.StepSkipped {
			t.Errorf("installer_next ran although the configs were rewritten: %+v", got)
		}
		fin := res.eventsOf("", journal.RunFinished)
		if len(fin) != 1 || fin[0].Outputs["left_to_do"] != "nothing" {
			t.Errorf("run_finished %+v, want left_to_do nothing", fin)
		}
	})

	// This time Spacelift refuses the API key: the workers step fails, the
	// failback does not, and the summary says what is left to do.
	t.Run("failback with the worker cycle refused", func(t *testing.T) {
		wrongKey := "01WRONGKEY"
		res := s.runbook(s.ctx(), nil, append(append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs()...), extraWithKey(wrongKey)...)...)
		runs = append(runs, res)
		if res.code != 0 {
			t.Fatalf("failback exit %d\nstderr:\n%s", res.code, res.stderr)
		}
		if st := s.state(); st.writerRegion != s.topo.Primary.Name {
			t.Errorf("writer in %s", st.writerRegion)
		}
		p.assertCloudflare(t, s.topo.ServerRecordName, s.topo.Primary.LoadBalancerDNS)
		p.assertCloudflare(t, s.topo.IoTRecordName, s.topo.Primary.IoTEndpoint)
		p.assertCycles(t, 1)
		f := res.eventsOf(dr("workers_spacelift"), journal.StepFailed)
		if len(f) != 1 || !f[0].Continued || f[0].Error == nil || f[0].Error.Code != "Unauthorized" {
			t.Errorf("workers_spacelift: want a continued Unauthorized failure, got %+v", f)
		}
		fin := res.eventsOf("", journal.RunFinished)
		if left, _ := fin[0].Outputs["left_to_do"].(string); !strings.Contains(left, "Cycle worker pool "+p.slPool) {
			t.Errorf("left_to_do %q does not say the worker pool is left to cycle", left)
		}
		assertNotice(t, res, "failback", s.topo.ServerRecordName, s.topo.Primary.Name)
		assertDeliveries(t, slack, hook, 2, s.topo.ServerRecordName, s.topo.Primary.Name, hookAuth)
		// Back to the layout the installer deployed.
		assertConfig(t, primaryCfg, map[string]any{"disable_services": false, "disaster_recovery.is_dr_instance": false})
		assertConfig(t, drCfg, map[string]any{"disable_services": true, "disaster_recovery.is_dr_instance": true})
		assertBackups(t, primaryCfg, origPrimary, 2)
		assertBackups(t, drCfg, origDR, 2)
	})

	t.Run("no secret in any log, journal or output", func(t *testing.T) {
		p.assertNoLeak(s, runs, map[string]string{"Slack webhook URL": slack.URL(), "Slack webhook path": slack.SecretPath(),
			"webhook URL": hook.URL(), "webhook path": hook.SecretPath(), "webhook Authorization header": hookAuth})
	})
}

// CloudFront carries the traffic (its origin moves; the IoT record is in
// Route 53), and Kubernetes workers restart: the controller's Deployment on
// the failover, the worker pods by selector on the failback.
func TestCloudFrontAndKubernetesWorkers(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := s.startPaths()
	before := s.state()
	podsBefore, _ := p.kube.Pods(k8sNamespace, k8sSelector)
	var runs []result

	// The IoT record is in Cloudflare this time, and Cloudflare refuses the
	// change: the distribution's origin is put back (and deployed), with the
	// services and the writer; the workers were never touched.
	t.Run("a refused IoT change rolls the origin back", func(t *testing.T) {
		p.cf.RejectWrites(s.topo.IoTRecordName, 1)
		args := append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), p.args(s, "cloudfront", "kubernetes")...)
		res := s.runbook(s.ctx(), nil, append(args, "--var", "iot_dns=cloudflare", "--var", "k8s_deployment="+k8sController)...)
		runs = append(runs, res)
		if res.code != 1 {
			t.Fatalf("exit %d, want 1 (failed and rolled back)\nstderr:\n%s", res.code, res.stderr)
		}
		var order []string
		for _, e := range res.eventsOf("", journal.RollbackSucceeded) {
			order = append(order, e.Step)
		}
		if want := []string{dr("cloudfront_server"), dr("cloudflare_iot"), dr("guard_target_services"), dr("db_switchover")}; !siblingsFirst(order, want) {
			t.Errorf("rollbacks %v, want %v (the first two in either order)", order, want)
		}
		if got := res.eventsOf(dr("dns_iot"), ""); len(got) != 1 || got[0].Type != journal.StepSkipped {
			t.Errorf("dns_iot (Route 53) ran with iot_dns=cloudflare: %+v", got)
		}
		s.assertOrigin(t, s.topo.Primary.LoadBalancerDNS)
		if st := s.state(); st.writerRegion != s.topo.Primary.Name || st.iotCNAME != before.iotCNAME {
			t.Errorf("after the rollback: writer %s, Route 53 IoT record %s", st.writerRegion, st.iotCNAME)
		}
		for _, r := range p.kube.Requests() {
			t.Errorf("Kubernetes called by a failover that failed before the workers: %s %s", r.Method, r.Path)
		}
	})

	t.Run("failover", func(t *testing.T) {
		args := append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), p.args(s, "cloudfront", "kubernetes")...)
		res := s.runbook(s.ctx(), nil, append(args, "--var", "k8s_deployment="+k8sController, "--log-level", "debug")...)
		runs = append(runs, res)
		if res.code != 0 {
			t.Fatalf("failover exit %d\nstderr:\n%s", res.code, res.stderr)
		}
		s.assertOrigin(t, s.topo.DR.LoadBalancerDNS)
		st := s.state()
		if st.iotCNAME != s.topo.DR.IoTEndpoint {
			t.Errorf("IoT record %s, want the DR endpoint %s (Route 53, with CloudFront traffic)", st.iotCNAME, s.topo.DR.IoTEndpoint)
		}
		if st.serverAlias != before.serverAlias {
			t.Errorf("the server record changed on the CloudFront path: %s -> %s", before.serverAlias, st.serverAlias)
		}
		d, _ := p.kube.Deployment(k8sNamespace, k8sController)
		if d.Spec.Template.Annotations["kubectl.kubernetes.io/restartedAt"] == "" || d.Annotations["deployment.kubernetes.io/revision"] != "2" ||
			d.Status.UpdatedReplicas != 2 || d.Status.AvailableReplicas != 2 {
			t.Errorf("controller not restarted: template %v, revision %s, status %+v", d.Spec.Template.Annotations, d.Annotations["deployment.kubernetes.io/revision"], d.Status)
		}
		for _, r := range p.kube.Requests() {
			if !r.Authorized {
				t.Errorf("unauthorized Kubernetes request %s %s", r.Method, r.Path)
			}
		}
		if got := res.eventsOf(dr("workers_k8s_restart"), journal.StepSucceeded); len(got) != 1 {
			t.Errorf("workers_k8s_restart: %+v", res.eventsOf(dr("workers_k8s_restart"), ""))
		}
	})

	t.Run("failback", func(t *testing.T) {
		args := append(append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs()...), p.args(s, "cloudfront", "kubernetes")...)
		res := s.runbook(s.ctx(), nil, append(args, "--var", "k8s_selector="+k8sSelector, "--var", "spacelift_worker_pool_id="+p.k8sPodsPool, "--log-level", "debug")...)
		runs = append(runs, res)
		if res.code != 0 {
			t.Fatalf("failback exit %d\nstderr:\n%s", res.code, res.stderr)
		}
		s.assertOrigin(t, s.topo.Primary.LoadBalancerDNS)
		if st := s.state(); st.iotCNAME != s.topo.Primary.IoTEndpoint {
			t.Errorf("IoT record %s after the failback", st.iotCNAME)
		}
		after, _ := p.kube.Pods(k8sNamespace, k8sSelector)
		if len(after) != len(podsBefore) {
			t.Errorf("%d worker pods after, %d before", len(after), len(podsBefore))
		}
		for _, n := range after {
			for _, o := range podsBefore {
				if n.UID == o.UID {
					t.Errorf("worker pod %s was not replaced", n.Name)
				}
			}
		}
		if got := res.eventsOf(dr("workers_k8s_pods"), journal.StepSucceeded); len(got) != 1 {
			t.Errorf("workers_k8s_pods: %+v", res.eventsOf(dr("workers_k8s_pods"), ""))
		}
	})

	t.Run("no secret in any log, journal or output", func(t *testing.T) {
		p.assertNoLeak(s, runs, nil)
	})
}

// --- Assertions. ----------------------------------------------------------------------------

func (p *paths) assertCloudflare(t *testing.T, name, content string) {
	t.Helper()
	recs := p.cf.Records(name)
	if len(recs) != 1 || recs[0].Type != "CNAME" || recs[0].Content != content {
		t.Errorf("Cloudflare %s: %+v, want one CNAME to %s", name, recs, content)
	}
}

func (p *paths) assertCycles(t *testing.T, n int) {
	t.Helper()
	cycles, jwts := p.sl.Cycles(), p.sl.IssuedJWTs()
	if len(cycles) != n {
		t.Fatalf("%d worker pool cycles, want %d: %+v", len(cycles), n, p.sl.Requests())
	}
	c := cycles[n-1]
	if c.PoolID != p.slPool || !slices.Contains(jwts, c.JWT) {
		t.Errorf("cycle of pool %q with a JWT issued by apiKeyUser: %v; want pool %s", c.PoolID, slices.Contains(jwts, c.JWT), p.slPool)
	}
}

func (s *sim) assertOrigin(t *testing.T, domain string) {
	t.Helper()
	out, err := cloudfront.NewFromConfig(s.emu.Config("us-east-1")).GetDistribution(context.Background(), &cloudfront.GetDistributionInput{Id: aws.String(s.topo.DistributionID)})
	if err != nil {
		t.Fatal(err)
	}
	d := out.Distribution
	var origin string
	for _, o := range d.DistributionConfig.Origins.Items {
		if aws.ToString(o.Id) == s.topo.DistributionOrigin {
			origin = aws.ToString(o.DomainName)
		}
	}
	if origin != domain || aws.ToString(d.Status) != "Deployed" {
		t.Errorf("distribution %s: origin %s %q, status %s; want %s, Deployed", s.topo.DistributionID, s.topo.DistributionOrigin, origin, aws.ToString(d.Status), domain)
	}
}

// assertNotice: the notice step ran last (before the final read, the
// finally steps now*) and its message (the console channel) names the
// hostname and the region now serving it.
func assertNotice(t *testing.T, res result, what, host, region string) {
	t.Helper()
	var last string
	for _, e := range res.events {
		// The calling step (switch) ends after its last step: not a step of its own.
		if (e.Type == journal.StepSucceeded || e.Type == journal.StepFailed) && e.Step != "switch" && !strings.HasPrefix(e.Step, dr("now")) {
			last = e.Step
		}
	}
	if last != dr("notice") {
		t.Errorf("%s: the last step to finish was %q, want notice", what, last)
	}
	ok := res.eventsOf(dr("notice"), journal.StepSucceeded)
	if len(ok) != 1 {
		t.Fatalf("%s: notice: %+v", what, res.eventsOf(dr("notice"), ""))
	}
	msg, _ := ok[0].Outputs["message"].(string)
	if !strings.Contains(msg, host) || !strings.Contains(msg, region) || !strings.Contains(msg, "Clear the cookies") || !strings.Contains(msg, "Questions: #platform-oncall") {
		t.Errorf("%s: notice message %q", what, msg)
	}
}

func assertDeliveries(t *testing.T, slack, hook *webhook.Receiver, n int, host, region, auth string) {
	t.Helper()
	sd, hd := slack.Deliveries(), hook.Deliveries()
	if len(sd) != n || len(hd) != n {
		t.Fatalf("deliveries: slack %d, webhook %d; want %d each", len(sd), len(hd), n)
	}
	var sm struct {
		Text string `json:"text"`
	}
	if err := json.Unmarshal(sd[n-1].Body, &sm); err != nil || !strings.Contains(sm.Text, host) || !strings.Contains(sm.Text, region) {
		t.Errorf("Slack message %s (%v)", sd[n-1].Body, err)
	}
	var hm map[string]any
	if err := json.Unmarshal(hd[n-1].Body, &hm); err != nil || hm["event"] != "cookie_invalidation_notice" || hm["hostname"] != host || hm["active_region"] != region {
		t.Errorf("webhook body %s (%v)", hd[n-1].Body, err)
	}
	if got := hd[n-1].Header.Get("Authorization"); got != auth {
		t.Errorf("webhook Authorization header not the one given")
	}
	if hd[n-1].Header.Get("Idempotency-Key") == "" {
		t.Errorf("webhook without Idempotency-Key")
	}
}

func readFile(t *testing.T, path string) []byte {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// assertConfig checks fields of an installer config (dotted paths).
func assertConfig(t *testing.T, path string, want map[string]any) {
	t.Helper()
	var doc map[string]any
	if err := json.Unmarshal(readFile(t, path), &doc); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	for field, v := range want {
		var cur any = doc
		for _, k := range strings.Split(field, ".") {
			m, _ := cur.(map[string]any)
			cur = m[k]
		}
		if cur != v {
			t.Errorf("%s: %s = %v, want %v", filepath.Base(path), field, cur, v)
		}
	}
}

// assertBackups: n backups of path exist, the oldest holding the original.
func assertBackups(t *testing.T, path string, original []byte, n int) {
	t.Helper()
	baks, err := filepath.Glob(path + ".*.bak")
	if err != nil {
		t.Fatal(err)
	}
	slices.Sort(baks)
	if len(baks) != n {
		t.Fatalf("%s: %d backups %v, want %d", filepath.Base(path), len(baks), baks, n)
	}
	if got := readFile(t, baks[0]); string(got) != string(original) {
		t.Errorf("%s: the first backup is not the original file", filepath.Base(path))
	}
}

// assertNoLeak reads everything the runs left that a person or a log
// collector could see: stdout and stderr of each run (events, live log,
// plugin logs at the run's level), every file of the state directory
// (journals), `runbook runs`, each run's report in Markdown and HTML, and
// every file in the sim's directory except those that hold credentials on
// purpose; no credential may appear in any of it.
func (p *paths) assertNoLeak(s *sim, runs []result, more map[string]string) {
	s.t.Helper()
	secrets := p.secrets()
	for k, v := range more {
		secrets[k] = v
	}
	texts := map[string]string{}
	var ids []string
	for i, r := range runs {
		texts[fmt.Sprintf("run %d stdout", i+1)] = r.stdout
		texts[fmt.Sprintf("run %d stderr", i+1)] = r.stderr
		for _, e := range r.eventsOf("", journal.RunStarted) {
			ids = append(ids, e.RunID)
		}
	}
	state := filepath.Join(s.dir, "state")
	res := s.runbook(s.ctx(), nil, "runs", "--state", state, "-o", "json")
	texts["runbook runs"] = res.stdout + res.stderr
	for _, id := range ids {
		for _, format := range []string{"markdown", "html"} {
			res := s.runbook(s.ctx(), nil, "report", id, "--state", state, "--format", format)
			if res.code != 0 {
				s.t.Errorf("report %s (%s): exit %d\n%s", id, format, res.code, res.stderr)
			}
			texts["report "+id+" "+format] = res.stdout + res.stderr
		}
	}
	holders := map[string]bool{"cloudflare.token": true, "secrets.yaml": true, "notice.yaml": true, "kubeconfig": true}
	err := filepath.WalkDir(s.dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() || holders[d.Name()] {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(s.dir, path)
		texts["file "+rel] = string(b)
		return nil
	})
	if err != nil {
		s.t.Fatal(err)
	}
	journals := 0
	for name := range texts {
		if strings.HasPrefix(name, "file state/") {
			journals++
		}
	}
	if journals < len(ids) {
		s.t.Errorf("found %d journal files for %d runs: the leak check would not read them", journals, len(ids))
	}
	for what, secret := range secrets {
		for name, text := range texts {
			if strings.Contains(text, secret) {
				s.t.Errorf("the %s appears in %s", what, name)
			}
		}
	}
}

// siblingsFirst: order is want, except that its first two entries (steps of
// one parallel group, compensated in the order they ended: one succeeded,
// the other failed with a rollback that says when: attempted) may be
// swapped.
func siblingsFirst(order, want []string) bool {
	if slices.Equal(order, want) {
		return true
	}
	if len(order) < 2 || len(want) < 2 {
		return false
	}
	swapped := slices.Clone(order)
	swapped[0], swapped[1] = swapped[1], swapped[0]
	return slices.Equal(swapped, want)
}
