package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/miekg/dns"

	"github.com/runbookhq/runbook/sim/emulator"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// The test binary stands in for simctl when `up` re-executes itself as the proxy.
func TestMain(m *testing.M) {
	if len(os.Args) > 1 && (os.Args[1] == "proxy-serve" || os.Args[1] == "dns-serve") {
		main()
		return
	}
	os.Exit(m.Run())
}

func simctl(t *testing.T, args ...string) (string, int) {
	t.Helper()
	var out, errOut bytes.Buffer
	code := run(context.Background(), args, &out, &errOut)
	if errOut.Len() > 0 {
		t.Logf("simctl %s: %s", strings.Join(args, " "), errOut.String())
	}
	return out.String(), code
}

func readEnv(t *testing.T, path string) map[string]string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	env := map[string]string{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimPrefix(sc.Text(), "export "), "="); ok && !strings.HasPrefix(k, "#") {
			env[k] = v
		}
	}
	return env
}

func pidFrom(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestUpFaultTimingDown(t *testing.T) {
	dir := t.TempDir()
	if out, code := simctl(t, "up", "--dir", dir, "--port", "0"); code != 0 {
		t.Fatalf("up: exit %d\n%s", code, out)
	}
	emuPID, proxyPID, dnsPID := pidFrom(t, filepath.Join(dir, emulatorPIDFile)), pidFrom(t, filepath.Join(dir, proxyPIDFile)), pidFrom(t, filepath.Join(dir, dnsPIDFile))
	t.Cleanup(func() {
		// Whatever happened, leave no process behind.
		_, _ = simctl(t, "down", "--dir", dir)
		for _, pid := range []int{emuPID, proxyPID, dnsPID} {
			if groupExists(pid) {
				_ = syscall.Kill(-pid, syscall.SIGKILL)
			}
		}
	})
	if _, code := simctl(t, "up", "--dir", dir, "--port", "0"); code == 0 {
		t.Error("a second up in the same directory succeeded")
	}

	env := readEnv(t, filepath.Join(dir, envFile))
	endpoint := env["AWS_ENDPOINT_URL"]
	if endpoint == "" || env["AWS_REGION"] != "eu-west-1" || env["AWS_ACCESS_KEY_ID"] == "" || env["RUNBOOK_SIM_EXTERNAL"] != "1" {
		t.Fatalf("env file: %v", env)
	}
	topo, err := topology.Load(env["RUNBOOK_SIM_TOPOLOGY"])
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range []string{topology.PrimaryConfigFile, topology.DRConfigFile} {
		if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
			t.Error(err)
		}
	}

	// The endpoint is the fault proxy in front of the seeded emulator.
	ctx := context.Background()
	describe := func(region string) error {
		_, err := rds.NewFromConfig(emulator.ConfigFor(endpoint, region), func(o *rds.Options) { o.RetryMaxAttempts = 1 }).
			DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{GlobalClusterIdentifier: aws.String(topo.GlobalClusterID)})
		return err
	}
	if err := describe("eu-west-1"); err != nil {
		t.Fatalf("through the proxy: %v", err)
	}
	if out, code := simctl(t, "fault", "--dir", dir, "blackhole", "eu-west-1", "--mode", "close"); code != 0 || strings.TrimSpace(out) == "" {
		t.Fatalf("fault blackhole: exit %d %q", code, out)
	}
	if err := describe("eu-west-1"); err == nil {
		t.Error("the black-holed primary region answered")
	}
	if err := describe("eu-west-3"); err != nil {
		t.Errorf("the DR region, not black-holed: %v", err)
	}
	// The hosted zone's name servers answer all the same (the data plane does
	// not go through the proxy), with the primary load balancer's addresses.
	m := new(dns.Msg)
	m.SetQuestion(dns.Fqdn(topo.ServerRecordName), dns.TypeA)
	r, err := dns.Exchange(m, env["RUNBOOK_SIM_DNS"])
	if err != nil || !r.Authoritative || len(r.Answer) != 2 || r.Answer[0].(*dns.A).A.String() != topo.Primary.LoadBalancerIPv4[0] {
		t.Errorf("DNS %s for %s: %v, %v; want %v", env["RUNBOOK_SIM_DNS"], topo.ServerRecordName, r, err, topo.Primary.LoadBalancerIPv4)
	}
	out, code := simctl(t, "fault", "--dir", dir, "count", "--service", "rds", "--region", "eu-west-1")
	var counts faultproxy.Counts
	if code != 0 || json.Unmarshal([]byte(out), &counts) != nil || counts.Total != 2 || counts.Forwarded != 1 || counts.Faulted != 1 {
		t.Errorf("fault count: exit %d %q", code, out)
	}
	if _, code := simctl(t, "fault", "--dir", dir, "clear"); code != 0 {
		t.Error("fault clear failed")
	}
	if err := describe("eu-west-1"); err != nil {
		t.Errorf("after clear: %v", err)
	}
	if _, code := simctl(t, "fault", "--dir", dir, "errors", "2"); code == 0 {
		t.Error("fault errors 2 (a rate above 1) succeeded")
	}
	if _, code := simctl(t, "fault", "--dir", dir, "frobnicate"); code != 2 {
		t.Errorf("unknown fault verb: exit %d, want 2", code)
	}

	if out, code := simctl(t, "timing", "--dir", dir, "set", "aurora_switchover=7"); code != 0 || !strings.Contains(out, "aurora_switchover") || !strings.Contains(out, "7s") {
		t.Errorf("timing set: exit %d\n%s", code, out)
	}
	if _, code := simctl(t, "timing", "--dir", dir, "set", "nonsense=1"); code == 0 {
		t.Error("timing set of an unknown transition succeeded")
	}
	if _, code := simctl(t, "timing", "--dir", dir, "advance", "1m"); code != 0 {
		t.Error("timing advance failed")
	}
	if out, code := simctl(t, "status", "--dir", dir); code != 0 || strings.Count(out, "running") != 3 {
		t.Errorf("status: exit %d\n%s", code, out)
	}

	if out, code := simctl(t, "down", "--dir", dir); code != 0 {
		t.Fatalf("down: exit %d\n%s", code, out)
	}
	for _, pid := range []int{emuPID, proxyPID, dnsPID} {
		if err := syscall.Kill(-pid, 0); !errors.Is(err, syscall.ESRCH) {
			t.Errorf("process group %d still exists after down (%v)", pid, err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, stateFile)); !errors.Is(err, os.ErrNotExist) {
		t.Error("state file left after down")
	}
	if _, code := simctl(t, "status", "--dir", dir); code == 0 {
		t.Error("status after down succeeded")
	}
}

func TestUsage(t *testing.T) {
	for _, args := range [][]string{{}, {"nope"}, {"up", "extra"}, {"up", "--bogus"}} {
		if _, code := simctl(t, args...); code != 2 {
			t.Errorf("simctl %v: exit %d, want 2", args, code)
		}
	}
}
