package scenarios_test

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/autoscaling"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/outage"
	"github.com/runbookhq/runbook/sim/topology"
)

// binDir holds the runbook binary and the plugins, built once per test run.
var binDir string

// repoRoot is the repository root (runbooks/ lives there).
var repoRoot string

func TestMain(m *testing.M) {
	os.Exit(buildAndRun(m))
}

func buildAndRun(m *testing.M) int {
	_, file, _, _ := runtime.Caller(0)
	repoRoot = filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
	dir, err := os.MkdirTemp("", "runbook-scenarios-bin-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	for out, pkg := range map[string]string{
		"runbook":                   "./cmd/runbook",
		"runbook-plugin-aws":        "./plugins/aws",
		"runbook-plugin-dns":        "./plugins/dns",
		"runbook-plugin-notify":     "./plugins/notify",
		"runbook-plugin-spacelift":  "./plugins/spacelift",
		"runbook-plugin-k8sworkers": "./plugins/k8sworkers",
	} {
		if _, err := os.Stat(filepath.Join(repoRoot, pkg)); err != nil {
			continue
		}
		cmd := exec.Command("go", "build", "-o", filepath.Join(dir, out), pkg)
		cmd.Dir = repoRoot
		if b, err := cmd.CombinedOutput(); err != nil {
			fmt.Fprintf(os.Stderr, "building %s: %v\n%s", pkg, err, b)
			return 1
		}
	}
	binDir = dir
	code := m.Run()
	if code == 0 && !checkAllRecorded() {
		code = 1
	}
	return code
}

// sim is one simulated two-region installation behind a fault proxy.
type sim struct {
	t     *testing.T
	emu   *emulator.Emulator
	proxy *faultproxy.Proxy
	topo  *topology.Topology
	// dir holds the installer configs, inputs.json, the state directory and logs.
	dir string
	// dns is the address of the DNS server of the emulator's hosted zones.
	dns string
	// env is added to the environment of the runbook commands.
	env []string
}

// fastTiming keeps every transition a real wait, but short.
var fastTiming = emulator.Timing{
	emulator.AuroraSwitchover: 1, emulator.AuroraFailover: 1, emulator.ECSStabilize: 1.5,
	emulator.Route53InSync: 1, emulator.ASGInstanceRefresh: 2, emulator.ASGInstanceWarmup: 0.5,
	emulator.CloudFrontDeploy: 1, emulator.S3BatchJob: 1,
}

func newSim(t *testing.T) *sim {
	t.Helper()
	e := emulator.StartForTest(t, emulator.Options{Timing: fastTiming})
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	topo, err := topology.Seed(ctx, topology.Options{EndpointURL: e.URL, Wait: true})
	if err != nil {
		t.Fatalf("seeding: %v", err)
	}
	p, err := faultproxy.Start(e.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	if _, skip := skipRecording.Load(t.Name()); !skip {
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

// startDNS starts the simulation's DNS server for the emulator's hosted zones
// (sim/dnsserver: it reads the emulator directly, never through the fault
// proxy, as Route 53's name servers keep answering when its API does not) and
// names it in the topology, so that the DR runbooks' DNS check asks it
// (inputs.json's route53_nameservers and dns_resolver), never a real server.
func startDNS(t *testing.T, e *emulator.Emulator, topo *topology.Topology) string {
	t.Helper()
	srv, err := dnsserver.Start(dnsserver.ForSimulation(e.URL, func() *topology.Topology { return topo }, nil)...)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = srv.Close() })
	topo.DNSServer = srv.Addr()
	return srv.Addr()
}

// darken starts a regional outage of region (sim/outage): every request to
// it is held unanswered at the proxy, and the emulator models AWS's own side
// of it (an Aurora global cluster with a member there is not available again
// until it returns; a failover's old primary rejoins and resynchronises only
// then). The outage ends when the test does, if not before.
func (s *sim) darken(region string) *outage.Outage {
	s.t.Helper()
	o, err := outage.Start(context.Background(), s.proxy, s.emu, region, faultproxy.Hang)
	if err != nil {
		s.t.Fatal(err)
	}
	s.t.Cleanup(func() { _ = o.End(context.Background()) })
	return o
}

// brighten ends an outage started by darken.
func (s *sim) brighten(o *outage.Outage) {
	s.t.Helper()
	if err := o.End(context.Background()); err != nil {
		s.t.Fatal(err)
	}
}

// result is how a runbook command ended.
type result struct {
	code   int
	stdout string
	stderr string
	events []journal.Record
}

// fenceBound is the runs' fence_timeout: how long the fence of an unplanned
// failover tries a region that does not answer.
const fenceBound = 4 * time.Second

// dr is the path of a step of runbooks/region-switch.yaml in a run of
// failover.yaml or failback.yaml, which call it as their step switch.
func dr(id string) string { return "switch." + id }

// eventsOf returns the JSON events of a step (or all, with step "").
func (r result) eventsOf(step, typ string) []journal.Record {
	var out []journal.Record
	for _, e := range r.events {
		if (step == "" || e.Step == step) && (typ == "" || e.Type == typ) {
			out = append(out, e)
		}
	}
	return out
}

// drArgs are the flags every DR run gets: the installer configs as they
// are, the other inputs from the seeded topology, fast polling, and short
// bounds on the reads and the fence of a region that may be dark (an
// unanswered request is given up after 10 s: RUNBOOK_AWS_RESPONSE_TIMEOUT).
func (s *sim) drArgs(extra ...string) []string {
	args := []string{
		"--var", "primary=@" + filepath.Join(s.dir, topology.PrimaryConfigFile),
		"--var", "dr=@" + filepath.Join(s.dir, topology.DRConfigFile),
		"--var-file", filepath.Join(s.dir, topology.InputsFile),
		"--var", "poll_interval=250ms",
		"--var", "fence_timeout=" + fenceBound.String(),
		"--var", "writer_health_timeout=3s",
		"--state", filepath.Join(s.dir, "state"),
	}
	return append(args, extra...)
}

func (s *sim) environ() []string {
	env := []string{
		"AWS_ACCESS_KEY_ID=" + emulator.AccessKeyID,
		"AWS_SECRET_ACCESS_KEY=" + emulator.SecretAccessKey,
		"AWS_EC2_METADATA_DISABLED=true",
		"RUNBOOK_PLUGIN_PATH=" + binDir,
		"PATH=" + binDir + string(os.PathListSeparator) + os.Getenv("PATH"),
		"HOME=" + s.dir,
		"NO_COLOR=1",
	}
	if s.proxy != nil {
		env = append(env, "AWS_ENDPOINT_URL="+s.proxy.URL, "AWS_REGION="+s.topo.Primary.Name)
	}
	return append(env, s.env...)
}

// runbook runs the real binary with JSON events on stdout. onEvent, if not
// nil, sees each event as it arrives (to act mid-run).
func (s *sim) runbook(ctx context.Context, onEvent func(journal.Record, *exec.Cmd), args ...string) result {
	s.t.Helper()
	cmd := exec.CommandContext(ctx, filepath.Join(binDir, "runbook"), args...)
	cmd.Dir = repoRoot
	cmd.Env = s.environ()
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		s.t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		s.t.Fatal(err)
	}
	var res result
	var raw strings.Builder
	var mu sync.Mutex
	sc := bufio.NewScanner(out)
	sc.Buffer(make([]byte, 1<<20), 8<<20)
	for sc.Scan() {
		line := sc.Text()
		raw.WriteString(line + "\n")
		var e journal.Record
		if strings.HasPrefix(line, "{") && json.Unmarshal([]byte(line), &e) == nil {
			mu.Lock()
			res.events = append(res.events, e)
			mu.Unlock()
			if onEvent != nil {
				onEvent(e, cmd)
			}
		}
	}
	err = cmd.Wait()
	res.stdout, res.stderr = raw.String(), stderr.String()
	res.code = cmd.ProcessState.ExitCode()
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		res.code = -int(ws.Signal())
	}
	_ = err
	// No plugin may outlive the runbook process: its process group is empty.
	if pgid := cmd.Process.Pid; groupAlive(pgid) {
		s.t.Errorf("processes of the runbook's group %d are still alive after it exited", pgid)
		_ = syscall.Kill(-pgid, syscall.SIGKILL)
	}
	return res
}

func groupAlive(pgid int) bool {
	deadline := time.Now().Add(3 * time.Second)
	for {
		if err := syscall.Kill(-pgid, 0); err != nil {
			return false
		}
		if time.Now().After(deadline) {
			return true
		}
		time.Sleep(50 * time.Millisecond)
	}
}

func (s *sim) ctx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute) // a hang guard, not a speed check
	s.t.Cleanup(cancel)
	return ctx
}

// --- State read back through the AWS APIs (the emulator directly, not the proxy). ---

type state struct {
	writerRegion  string
	globalStatus  string
	primaryCounts map[string]int32
	drCounts      map[string]int32
	serverAlias   string // the server record's alias target
	iotCNAME      string
	drWorkers     []string
}

func (s *sim) state() state {
	s.t.Helper()
	ctx := context.Background()
	var st state
	g, err := rds.NewFromConfig(s.emu.Config(s.topo.DR.Name)).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String(s.topo.GlobalClusterID)})
	if err != nil {
		s.t.Fatal(err)
	}
	gc := g.GlobalClusters[0]
	st.globalStatus = aws.ToString(gc.Status)
	for _, m := range gc.GlobalClusterMembers {
		if aws.ToBool(m.IsWriter) {
			arn := aws.ToString(m.DBClusterArn)
			switch arn {
			case s.topo.Primary.DBClusterARN:
				st.writerRegion = s.topo.Primary.Name
			case s.topo.DR.DBClusterARN:
				st.writerRegion = s.topo.DR.Name
			default:
				st.writerRegion = "unknown:" + arn
			}
		}
	}
	counts := func(r topology.Region) map[string]int32 {
		out, err := ecs.NewFromConfig(s.emu.Config(r.Name)).DescribeServices(ctx, &ecs.DescribeServicesInput{Cluster: aws.String(r.ECSCluster), Services: r.ECSServices})
		if err != nil {
			s.t.Fatal(err)
		}
		m := map[string]int32{}
		for _, svc := range out.Services {
			m[aws.ToString(svc.ServiceName)] = svc.DesiredCount
		}
		return m
	}
	st.primaryCounts, st.drCounts = counts(s.topo.Primary), counts(s.topo.DR)
	rr, err := route53.NewFromConfig(s.emu.Config("us-east-1")).ListResourceRecordSets(ctx, &route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(s.topo.HostedZoneID)})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, r := range rr.ResourceRecordSets {
		name := strings.TrimSuffix(aws.ToString(r.Name), ".")
		switch {
		case name == s.topo.ServerRecordName && r.AliasTarget != nil:
			st.serverAlias = strings.TrimSuffix(aws.ToString(r.AliasTarget.DNSName), ".")
		case name == s.topo.IoTRecordName && len(r.ResourceRecords) > 0:
			st.iotCNAME = strings.TrimSuffix(aws.ToString(r.ResourceRecords[0].Value), ".")
		}
	}
	asg, err := autoscaling.NewFromConfig(s.emu.Config(s.topo.DR.Name)).DescribeAutoScalingGroups(ctx, &autoscaling.DescribeAutoScalingGroupsInput{AutoScalingGroupNames: []string{s.topo.DR.ASGName}})
	if err != nil {
		s.t.Fatal(err)
	}
	for _, i := range asg.AutoScalingGroups[0].Instances {
		st.drWorkers = append(st.drWorkers, aws.ToString(i.InstanceId))
	}
	return st
}

// activeIn asserts the installation is fully active in region r (writer,
// services, records) and stopped in the other.
func (s *sim) assertActiveIn(st state, r, other topology.Region) {
	s.t.Helper()
	if st.writerRegion != r.Name || st.globalStatus != "available" {
		s.t.Errorf("writer in %q (global cluster %s), want %s and available", st.writerRegion, st.globalStatus, r.Name)
	}
	want := s.topo.Primary.DesiredCounts
	active, stopped := st.drCounts, st.primaryCounts
	if r.Name == s.topo.Primary.Name {
		active, stopped = st.primaryCounts, st.drCounts
	}
	for name, n := range want {
		if active[name] != n {
			s.t.Errorf("%s: service %s desired %d, want %d", r.Name, name, active[name], n)
		}
		if stopped[name] != 0 {
			s.t.Errorf("%s: service %s desired %d, want 0", other.Name, name, stopped[name])
		}
	}
	if !strings.EqualFold(st.serverAlias, strings.TrimSuffix(r.LoadBalancerDNS, ".")) {
		s.t.Errorf("server record aliases %q, want %s's load balancer %s", st.serverAlias, r.Name, r.LoadBalancerDNS)
	}
	if st.iotCNAME != r.IoTEndpoint {
		s.t.Errorf("IoT broker record points at %q, want %s's endpoint %s", st.iotCNAME, r.Name, r.IoTEndpoint)
	}
}
