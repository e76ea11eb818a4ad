package scenarios_test

import (
	"context"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	astypes "github.com/aws/aws-sdk-go-v2/service/autoscaling/types"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/fakes/spaceliftapi"
	"github.com/runbookhq/runbook/sim/topology"
)

// This file proves the workers reconnected after a region switch: the
// Spacelift fake's workers are processes that look the IoT broker domain up
// over DNS (the simulation's authoritative servers, on loopback) when they
// start, and stay with that broker; the pool lists only the workers on the
// broker the domain points at now. A restart before the record moved, or no
// restart, leaves them where they were, and the run's wait says so.

// reconnectBound is the runs' workers_reconnect_timeout: every wait for
// workers ends, with a count, well before a scenario's hang guard.
const reconnectBound = 60 * time.Second

// brokerDNS chooses the DNS the workers resolve the broker domain in: the
// Route 53 zones (the default) or Cloudflare's, as the zone is delegated
// to one provider or the other.
type brokerDNS struct {
	route53, cloudflare *dnsserver.Server
	useCloudflare       atomic.Bool
}

func (b *brokerDNS) Resolve(ctx context.Context, name string) (string, error) {
	srv := b.route53
	if b.useCloudflare.Load() {
		srv = b.cloudflare
	}
	return spaceliftapi.DNSResolver{Addr: srv.Addr()}.Resolve(ctx, name)
}

// startWorkers starts the workers of every path, each path's in its own
// pool: the DR region's auto-scaling group's instances (asgPool), the
// worker-pool controller Deployment's pods (k8sPool: the Deployment runs
// the workers, as with Spacelift's worker chart), the pods matching
// k8sSelector (k8sPodsPool), and three processes of the fake's own that a
// Cycle restarts (slPool).
func (p *paths) startWorkers(s *sim) {
	s.t.Helper()
	ctx := context.Background()
	topo := func() *topology.Topology { return s.topo }
	r53, err := dnsserver.Start(dnsserver.ForSimulation(s.emu.URL, topo, nil)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = r53.Close() })
	cf, err := dnsserver.Start(dnsserver.ForCloudflare(p.cf, topo)...)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = cf.Close() })
	p.broker = &brokerDNS{route53: r53, cloudflare: cf}
	p.sl.SetBrokerDomain(s.topo.IoTRecordName, p.broker)

	p.asgPool, p.k8sPool, p.k8sPodsPool = "01SIMPOOLASG", "01SIMPOOLK8S", "01SIMPOOLPODS"
	for _, id := range []string{p.asgPool, p.k8sPool, p.k8sPodsPool} {
		p.sl.AddPool(id)
	}
	detach, err := p.sl.AttachASG(ctx, s.emu.URL, p.asgPool, s.topo.DR.Name, s.topo.DR.ASGName)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = detach() })
	if err := p.sl.AttachPods(ctx, p.kube, p.k8sPool, k8sNamespace, "app.kubernetes.io/name="+k8sController); err != nil {
		s.t.Fatal(err)
	}
	if err := p.sl.AttachPods(ctx, p.kube, p.k8sPodsPool, k8sNamespace, k8sSelector); err != nil {
		s.t.Fatal(err)
	}
	if _, err := p.sl.AddWorkers(ctx, p.slPool, 3); err != nil {
		s.t.Fatal(err)
	}
	// From now on a worker registers a little after its process starts.
	p.sl.SetRegisterDelay(1100 * time.Millisecond)
}

// onBroker asserts every worker of the pool is connected to broker, and
// returns them.
func (p *paths) onBroker(t *testing.T, pool, broker string, n int) []spaceliftapi.Worker {
	t.Helper()
	ws := p.sl.Workers(pool)
	if len(ws) != n {
		t.Errorf("pool %s has %d workers, want %d: %+v", pool, len(ws), n, ws)
	}
	for _, w := range ws {
		if w.Broker != broker {
			t.Errorf("worker %s (%s) is on broker %q, want %s", w.ID, w.Process, w.Broker, broker)
		}
	}
	return ws
}

// waitWorkers waits (bounded) until the pool has n workers registered.
func (p *paths) waitWorkers(t *testing.T, pool string, n int) {
	t.Helper()
	deadline := time.Now().Add(15 * time.Second)
	for len(p.sl.Workers(pool)) != n {
		if time.Now().After(deadline) {
			t.Fatalf("pool %s has %d workers after 15s, want %d", pool, len(p.sl.Workers(pool)), n)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// assertReconnected checks a run proved its workers reconnected: the wait
// succeeded counting n workers (the pool's, all on the target's broker),
// its evidence is the run's workers_evidence and is in the report, under
// the milestone "workers reconnected".
func (p *paths) assertReconnected(t *testing.T, s *sim, res result, pool string, target topology.Region, n int) {
	t.Helper()
	ok := res.eventsOf(dr("workers_reconnected"), journal.StepSucceeded)
	if len(ok) != 1 {
		t.Fatalf("workers_reconnected: %+v", res.eventsOf(dr("workers_reconnected"), ""))
	}
	if got := ok[0].Outputs["reconnected"]; got != float64(n) {
		t.Errorf("reconnected %v, want %d", got, n)
	}
	evidence, _ := ok[0].Outputs["evidence"].(string)
	for _, w := range p.onBroker(t, pool, target.IoTEndpoint, n) {
		if !strings.Contains(evidence, w.ID) {
			t.Errorf("evidence %q does not name worker %s", evidence, w.ID)
		}
	}
	fin, _ := res.finished()
	if got, _ := fin.Outputs["workers_evidence"].(string); !strings.HasPrefix(got, evidence) {
		t.Errorf("workers_evidence %q, want the wait's evidence %q", got, evidence)
	}
	rep := s.reportOf(s.ctx(), res)
	if !strings.Contains(rep, "| workers reconnected |") || !strings.Contains(rep, evidence) {
		t.Errorf("the report lacks the milestone workers reconnected or the evidence %q:\n%s", evidence, rep)
	}
}

// After the restart, whichever path restarts them, the run waits until the
// pool lists the workers registered after the broker record moved, as many
// as it listed before; only then is the milestone "workers reconnected"
// reached, and the report shows what ended the wait. Without a worker pool
// the milestone is "workers restarted" and the run says reconnection was
// not checked.
func TestWorkersReconnectedVerified(t *testing.T) {
	t.Parallel()
	// One group in one region (the DR region's), cycled on the failover
	// and on the failback: its workers follow the broker both ways.
	t.Run("asg", func(t *testing.T) {
		t.Parallel()
		s := newSim(t)
		p := s.startPaths()
		p.onBroker(t, p.asgPool, s.topo.Primary.IoTEndpoint, 2)
		args := append(p.args(s, "route53", "asg"), "--var", "worker_asg_region="+s.topo.DR.Name)
		res := s.runbook(s.ctx(), nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), args...)...)
		if res.code != 0 {
			t.Fatalf("failover exit %d\n%s", res.code, res.stderr)
		}
		p.assertReconnected(t, s, res, p.asgPool, s.topo.DR, 2)
		res = s.runbook(s.ctx(), nil, append(append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs()...), args...)...)
		if res.code != 0 {
			t.Fatalf("failback exit %d\n%s", res.code, res.stderr)
		}
		if got := res.eventsOf(dr("workers"), journal.StepSucceeded); len(got) != 1 || got[0].Outputs["region"] != s.topo.DR.Name {
			t.Errorf("the failback did not cycle the one group in %s: %+v", s.topo.DR.Name, res.eventsOf(dr("workers"), ""))
		}
		p.assertReconnected(t, s, res, p.asgPool, s.topo.Primary, 2)
	})

	// The worker pods are deleted and replaced; then, without a worker
	// pool, the failback restarts them and says it did not check.
	t.Run("kubernetes", func(t *testing.T) {
		t.Parallel()
		s := newSim(t)
		p := s.startPaths()
		args := append(p.args(s, "route53", "kubernetes"), "--var", "k8s_selector="+k8sSelector, "--var", "spacelift_worker_pool_id="+p.k8sPodsPool)
		res := s.runbook(s.ctx(), nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), args...)...)
		if res.code != 0 {
			t.Fatalf("failover exit %d\n%s", res.code, res.stderr)
		}
		p.assertReconnected(t, s, res, p.k8sPodsPool, s.topo.DR, 3)

		res = s.runbook(s.ctx(), nil, append(append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs()...), append(args, "--var", "spacelift_worker_pool_id=")...)...)
		if res.code != 0 {
			t.Fatalf("failback exit %d\n%s", res.code, res.stderr)
		}
		if got := res.eventsOf(dr("workers_reconnected"), ""); len(got) != 1 || got[0].Type != journal.StepSkipped {
			t.Errorf("workers_reconnected ran without a worker pool: %+v", got)
		}
		logs := res.eventsOf(dr("workers_unchecked"), journal.Log)
		if len(logs) != 1 || !strings.Contains(logs[0].Message, "was not checked") {
			t.Errorf("workers_unchecked did not say reconnection was not checked: %+v", res.eventsOf(dr("workers_unchecked"), ""))
		}
		fin, _ := res.finished()
		if got, _ := fin.Outputs["workers_evidence"].(string); !strings.HasPrefix(got, "not checked: no Spacelift worker pool") {
			t.Errorf("workers_evidence %q", got)
		}
		rep := s.reportOf(s.ctx(), res)
		if !strings.Contains(rep, "| workers restarted |") || strings.Contains(rep, "| workers reconnected |") || !strings.Contains(rep, "not checked: no Spacelift worker pool") {
			t.Errorf("the report of an unchecked restart:\n%s", rep)
		}
		// They did restart onto the primary's broker; nobody checked.
		p.onBroker(t, p.k8sPodsPool, s.topo.Primary.IoTEndpoint, 3)
	})

	t.Run("spacelift_api", func(t *testing.T) {
		t.Parallel()
		s := newSim(t)
		p := s.startPaths()
		res := s.runbook(s.ctx(), nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), p.args(s, "route53", "spacelift_api")...)...)
		if res.code != 0 {
			t.Fatalf("failover exit %d\n%s", res.code, res.stderr)
		}
		p.assertCycles(t, 1)
		p.assertReconnected(t, s, res, p.slPool, s.topo.DR, 3)
	})
}

// restartFirst is a runbook that makes the mistake the DR runbooks avoid:
// it restarts the workers while the broker record still points at the old
// region, and only then moves the record. Its last step waits, leniently,
// for workers registered at any time during the run.
const restartFirst = `version: 1
name: restart-before-move
inputs:
  workers: { type: string, enum: [asg, spacelift_api], required: true }
  pool: { type: string, required: true }
  key_id: { type: string, required: true }
  key_secret: { type: string, secret: true, required: true }
  endpoint: { type: string, required: true }
  region: { type: string, required: true }
  group: { type: string, required: true }
  zone_id: { type: string, required: true }
  broker_domain: { type: string, required: true }
  new_broker: { type: string, required: true }
plugins:
  aws: { command: runbook-plugin-aws }
  dns: { command: runbook-plugin-dns }
  spacelift: { command: runbook-plugin-spacelift }
on_failure: stop
steps:
  - id: before
    uses: spacelift.worker_pool_workers
    with: { worker_pool_id: "${{ inputs.pool }}", endpoint: "${{ inputs.endpoint }}", api_key_id: "${{ inputs.key_id }}", api_key_secret: "${{ inputs.key_secret }}" }
  - id: restart_asg
    uses: aws.asg_cycle
    if: inputs.workers == "asg"
    with: { region: "${{ inputs.region }}", auto_scaling_group: "${{ inputs.group }}", poll_interval: 250ms }
  - id: restart_cycle
    uses: spacelift.worker_pool_cycle
    if: inputs.workers == "spacelift_api"
    with: { worker_pool_id: "${{ inputs.pool }}", endpoint: "${{ inputs.endpoint }}", api_key_id: "${{ inputs.key_id }}", api_key_secret: "${{ inputs.key_secret }}" }
  - id: settle
    uses: core.sleep
    with: { duration: 4s }
  - id: move_broker
    uses: dns.route53_record
    with: { zone_id: "${{ inputs.zone_id }}", name: "${{ inputs.broker_domain }}", type: CNAME, value: "${{ inputs.new_broker }}", ttl: 60, poll_interval: 250ms }
  - id: reconnected
    uses: spacelift.workers_reconnected
    timeout: 1m
    with:
      worker_pool_id: ${{ inputs.pool }}
      endpoint: ${{ inputs.endpoint }}
      api_key_id: ${{ inputs.key_id }}
      api_key_secret: ${{ inputs.key_secret }}
      registered_after: ${{ run.started_at }}
      min_workers: ${{ steps.before.outputs.active }}
      wait_timeout: 6s
      poll_interval: 250ms
`

// Workers restarted before the broker record moved connect to the old
// region's broker: they did restart during the run, but the pool, read
// once the record points at the new region, does not list them, and the
// wait fails saying how many reconnected.
func TestWorkersRestartedBeforeBrokerMovedFails(t *testing.T) {
	t.Parallel()
	for _, w := range []string{"asg", "spacelift_api"} {
		t.Run(w, func(t *testing.T) {
			t.Parallel()
			s := newSim(t)
			p := s.startPaths()
			pool, n := p.slPool, 3
			if w == "asg" {
				pool, n = p.asgPool, 2
			}
			before := p.sl.Workers(pool)
			rb := s.writeFile("restart-before-move.yaml", restartFirst, 0o644)
			secrets := s.writeFile("secrets.yaml", "key_secret: "+p.slSecret+"\n", 0o600)
			started := time.Now()
			res := s.runbook(s.ctx(), nil, "run", rb, "-o", "json", "--state", filepath.Join(s.dir, "state"), "--var-file", secrets,
				"--var", "workers="+w, "--var", "pool="+pool, "--var", "key_id="+p.slKeyID, "--var", "endpoint="+p.sl.Endpoint(),
				"--var", "region="+s.topo.DR.Name, "--var", "group="+s.topo.DR.ASGName, "--var", "zone_id="+s.topo.HostedZoneID,
				"--var", "broker_domain="+s.topo.IoTRecordName, "--var", "new_broker="+s.topo.DR.IoTEndpoint)
			if res.code != 1 {
				t.Fatalf("exit %d, want 1 (the wait fails)\n%s\n%s", res.code, res.stdout, res.stderr)
			}
			f := res.eventsOf("reconnected", journal.StepFailed)
			want := fmt.Sprintf("0 of %d workers reconnected to worker pool %s within 6s", n, pool)
			if len(f) != 1 || f[0].Error == nil || f[0].Error.Code != "NotReconnected" || !strings.Contains(f[0].Error.Message, want) {
				t.Fatalf("reconnected: want a NotReconnected failure saying %q, got %+v", want, res.eventsOf("reconnected", ""))
			}
			if got := s.state(); got.iotCNAME != s.topo.DR.IoTEndpoint {
				t.Errorf("the broker record points at %s, want the DR endpoint", got.iotCNAME)
			}
			// Every worker restarted during the run, onto the old broker.
			for _, w := range p.onBroker(t, pool, s.topo.Primary.IoTEndpoint, n) {
				if w.CreatedAt.Before(started) || slices.ContainsFunc(before, func(b spaceliftapi.Worker) bool { return b.ID == w.ID }) {
					t.Errorf("worker %s (%s, created %s) was not restarted by the run", w.ID, w.Process, w.CreatedAt)
				}
			}
		})
	}
}

// The workers' auto-scaling group as it is: one instance protected from
// scale in, one in Standby, and a launch lifecycle hook that a handler (the
// test) completes. By default the failover refuses at pre-flight, naming
// both instances, before anything changes; told to refresh the protected
// one and terminate the Standby one (the instance refresh preferences AWS
// offers), it cycles the group through the hook, and the workers reconnect.
func TestASGProtectedInstances(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := s.startPaths()
	ctx := s.ctx()
	a := autoscaling.NewFromConfig(s.emu.Config(s.topo.DR.Name))
	g := aws.String(s.topo.DR.ASGName)
	if _, err := a.SetDesiredCapacity(ctx, &autoscaling.SetDesiredCapacityInput{AutoScalingGroupName: g, DesiredCapacity: aws.Int32(3)}); err != nil {
		t.Fatal(err)
	}
	ids := s.asgInstances(t)
	if len(ids) != 3 {
		t.Fatalf("group after scaling to 3: %v", ids)
	}
	protected, standby := ids[0], ids[1]
	if _, err := a.SetInstanceProtection(ctx, &autoscaling.SetInstanceProtectionInput{AutoScalingGroupName: g, InstanceIds: []string{protected}, ProtectedFromScaleIn: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.EnterStandby(ctx, &autoscaling.EnterStandbyInput{AutoScalingGroupName: g, InstanceIds: []string{standby}, ShouldDecrementDesiredCapacity: aws.Bool(true)}); err != nil {
		t.Fatal(err)
	}
	if _, err := a.PutLifecycleHook(ctx, &autoscaling.PutLifecycleHookInput{AutoScalingGroupName: g, LifecycleHookName: aws.String("worker-bootstrap"),
		LifecycleTransition: aws.String("autoscaling:EC2_INSTANCE_LAUNCHING"), HeartbeatTimeout: aws.Int32(300), DefaultResult: aws.String("ABANDON")}); err != nil {
		t.Fatal(err)
	}
	p.waitWorkers(t, p.asgPool, 3)
	p.onBroker(t, p.asgPool, s.topo.Primary.IoTEndpoint, 3) // the Standby instance's worker runs too
	s.proxy.ResetLog()
	args := append(p.args(s, "route53", "asg"), "--var", "worker_asg_region="+s.topo.DR.Name)

	res := s.runbook(ctx, nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), args...)...)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1 (refused at pre-flight)\n%s", res.code, res.stderr)
	}
	f := res.eventsOf(dr("check_workers"), journal.StepFailed)
	if len(f) != 1 || f[0].Error == nil {
		t.Fatalf("check_workers: %+v", res.eventsOf(dr("check_workers"), ""))
	}
	for _, want := range []string{"protected from scale in: " + protected, "in Standby: " + standby, "worker_asg_protected_instances", "worker_asg_standby_instances", "Nothing was changed"} {
		if !strings.Contains(f[0].Error.Message, want) {
			t.Errorf("refusal %q does not say %q", f[0].Error.Message, want)
		}
	}
	for _, e := range s.proxy.Log() {
		if isMutating(e.Operation) {
			t.Errorf("a refused failover sent %s %s", e.Service, e.Operation)
		}
	}
	if st := s.state(); st.writerRegion != s.topo.Primary.Name {
		t.Errorf("writer in %s after the refusal", st.writerRegion)
	}

	// The hook's handler: every replacement held in Pending:Wait is let
	// through, as a bootstrap script or a Lambda would.
	var held sync.Map
	hctx, stop := context.WithCancel(ctx)
	defer stop()
	go func() {
		for hctx.Err() == nil {
			out, err := a.DescribeAutoScalingGroups(hctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{*g}})
			if err == nil && len(out.AutoScalingGroups) == 1 {
				for _, i := range out.AutoScalingGroups[0].Instances {
					if i.LifecycleState == astypes.LifecycleStatePendingWait {
						held.Store(aws.ToString(i.InstanceId), true)
						_, _ = a.CompleteLifecycleAction(hctx, &autoscaling.CompleteLifecycleActionInput{AutoScalingGroupName: g, LifecycleHookName: aws.String("worker-bootstrap"),
							InstanceId: i.InstanceId, LifecycleActionResult: aws.String("CONTINUE")})
					}
				}
			}
			time.Sleep(200 * time.Millisecond)
		}
	}()
	// Terminate shrinks the pool (a Standby instance is not replaced): two
	// workers are expected, not the three listed before.
	res = s.runbook(ctx, nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), append(args,
		"--var", "worker_asg_protected_instances=refresh", "--var", "worker_asg_standby_instances=terminate", "--var", "expected_workers=2")...)...)
	stop()
	if res.code != 0 {
		t.Fatalf("failover exit %d\n%s", res.code, res.stderr)
	}
	ok := res.eventsOf(dr("workers"), journal.StepSucceeded)
	if len(ok) != 1 {
		t.Fatalf("workers: %+v", res.eventsOf(dr("workers"), ""))
	}
	prefs, _ := ok[0].Outputs["preferences"].(map[string]any)
	if prefs["ScaleInProtectedInstances"] != "Refresh" || prefs["StandbyInstances"] != "Terminate" {
		t.Errorf("refresh preferences %v, want ScaleInProtectedInstances Refresh and StandbyInstances Terminate", prefs)
	}
	now := s.asgInstances(t)
	if len(now) != 2 || slices.Contains(now, protected) || slices.Contains(now, standby) {
		t.Errorf("group after the failover: %v; want 2 new instances, neither %s nor %s", now, protected, standby)
	}
	for _, id := range now {
		if _, ok := held.Load(id); !ok {
			t.Errorf("replacement %s never waited for the launch hook", id)
		}
	}
	p.assertReconnected(t, s, res, p.asgPool, s.topo.DR, 2)
}

// asgInstances lists the DR worker group's instances, sorted.
func (s *sim) asgInstances(t *testing.T) []string {
	t.Helper()
	ids := slices.Clone(s.state().drWorkers)
	slices.Sort(ids)
	return ids
}
