package scenarios_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sim/contracts"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// Every scenario's proxy records whole exchanges (newSim); they are kept
// here when its test ends, and TestMain checks them all once the tests are
// done (checkAllRecorded): against AWS's API models, and against the
// permissions the actions that made them declare.
var recorded struct {
	sync.Mutex
	xs    []faultproxy.Exchange
	tests []string
}

func keepRecorded(t *testing.T, p *faultproxy.Proxy) {
	xs := p.Exchanges()
	recorded.Lock()
	defer recorded.Unlock()
	for _, x := range xs {
		x.Seq = len(recorded.xs) + 1
		recorded.xs = append(recorded.xs, x)
	}
	recorded.tests = append(recorded.tests, t.Name())
}

// contractRuns are the DR paths the contract and permission tests run on
// their own (so that each passes alone, with -run): a planned failover
// (CloudFront traffic, ASG workers), the failback (Route 53), an unplanned
// failover with the primary region dark, and enable-dr's backfill. They
// run once per test binary and their exchanges serve both tests.
var contractRuns struct {
	once sync.Once
	xs   []faultproxy.Exchange
	done bool
}

func runContractPaths(t *testing.T) []faultproxy.Exchange {
	t.Helper()
	contractRuns.once.Do(func() {
		s := newSimUnrecorded(t)
		p := s.startPaths()
		s.proxy.Record(true)
		run := func(what string, args ...string) {
			t.Helper()
			res := s.runbook(s.ctx(), nil, args...)
			if res.code != 0 {
				t.Fatalf("%s: exit %d\nstderr:\n%s", what, res.code, res.stderr)
			}
		}
		run("planned failover", append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), p.args(s, "cloudfront", "asg")...)...)
		run("planned failback", append(append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs()...), p.args(s, "route53", "asg")...)...)
		o := s.darken(s.topo.Primary.Name)
		run("unplanned failover", append([]string{"run", failover, "--auto-approve", "-o", "json", "--var", "mode=unplanned"}, s.drArgs()...)...)
		s.brighten(o)
		run("enable-dr", "run", enableDR, "--auto-approve", "-o", "json",
			"--var", "primary=@"+filepath.Join(s.dir, topology.PrimaryConfigFile), "--var", "dr=@"+filepath.Join(s.dir, topology.DRConfigFile),
			"--var", "batch_role_arn="+s.topo.BatchRoleARN, "--var", "poll_interval=250ms", "--state", filepath.Join(s.dir, "state"))
		contractRuns.xs, contractRuns.done = s.proxy.Exchanges(), true
	})
	if !contractRuns.done {
		t.Fatal("the contract test's runs failed (see the test that ran them first)")
	}
	return contractRuns.xs
}

// newSimUnrecorded is newSim whose exchanges are not added to the
// end-of-run check (the contract tests check their own).
func newSimUnrecorded(t *testing.T) *sim {
	t.Helper()
	skipRecording.Store(t.Name(), true)
	return newSim(t)
}

var skipRecording sync.Map

// Every AWS request the DR runbooks make, and every answer of the emulator
// (moto and runbook_sim), matches AWS's published API models (botocore's
// service-2.json); a departure names operation, member and rule. moto's
// departures that cannot be fixed here are in sim/contracts/allowlist.json,
// each with its reason.
func TestAWSRequestsMatchAPIModels(t *testing.T) {
	xs := runContractPaths(t)
	r := checkContracts(t, xs)
	// Not vacuous: the operations that change the world, ours first.
	ops := map[string]bool{}
	for _, c := range r.Calls {
		ops[c.Service+":"+c.Operation] = true
	}
	for _, want := range []string{
		"rds:SwitchoverGlobalCluster", "rds:FailoverGlobalCluster", "rds:DescribeGlobalClusters", "cloudwatch:GetMetricStatistics",
		"ecs:UpdateService", "ecs:DescribeServices", "autoscaling:StartInstanceRefresh", "autoscaling:DescribeInstanceRefreshes",
		"route53:ChangeResourceRecordSets", "route53:GetChange", "iot:DescribeEndpoint", "cloudfront:GetDistributionConfig",
		"cloudfront:UpdateDistribution", "s3:GetBucketReplication", "s3control:CreateJob", "s3control:DescribeJob",
	} {
		if !ops[want] {
			t.Errorf("no %s among the checked calls", want)
		}
	}
	if r.ResponsesChecked < len(xs)/2 {
		t.Errorf("only %d of %d answers checked", r.ResponsesChecked, len(xs))
	}
}

// checkContracts checks exchanges against the models and fails t with
// every finding.
func checkContracts(t *testing.T, xs []faultproxy.Exchange) *contracts.Report {
	t.Helper()
	if out := os.Getenv("RUNBOOK_EXCHANGES_OUT"); out != "" {
		// To look at them, or to re-run the checker by hand:
		// .venv/bin/python sim/contracts/awscontracts.py FILE --allowlist sim/contracts/allowlist.json
		if err := faultproxy.WriteExchanges(out, xs); err != nil {
			t.Fatal(err)
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	r, err := contracts.Check(ctx, xs, true)
	if err != nil {
		t.Fatal(err)
	}
	for _, f := range r.Findings {
		t.Errorf("%s (user agent %q)", f, f.UserAgent)
	}
	t.Logf("%d requests and %d answers checked, %d departures allowlisted; operations: %s",
		r.RequestsChecked, r.ResponsesChecked, len(r.Allowlisted), strings.Join(r.Operations(), ", "))
	return r
}

// checkAllRecorded is TestMain's check of what every other scenario
// recorded: it prints each finding and reports whether there was any.
func checkAllRecorded() bool {
	recorded.Lock()
	xs := recorded.xs
	tests := append([]string(nil), recorded.tests...)
	recorded.Unlock()
	if len(xs) == 0 {
		return true
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	defer cancel()
	start := time.Now()
	r, err := contracts.Check(ctx, xs, true)
	if err != nil {
		fmt.Fprintln(os.Stderr, "contract check of every scenario's AWS calls:", err)
		return false
	}
	sort.Strings(tests)
	fmt.Fprintf(os.Stderr, "contract check of the AWS calls of %d scenario tests: %d requests, %d answers, %d findings, %d allowlisted (%s)\n",
		len(tests), r.RequestsChecked, r.ResponsesChecked, len(r.Findings), len(r.Allowlisted), time.Since(start).Round(time.Second))
	for _, f := range r.Findings {
		fmt.Fprintf(os.Stderr, "  %s (user agent %q)\n", f, f.UserAgent)
	}
	problems := checkAllRecordedPermissions(r)
	fmt.Fprintf(os.Stderr, "permission check of the same calls: %d problems\n", len(problems))
	for _, p := range problems {
		fmt.Fprintf(os.Stderr, "  %s\n", p)
	}
	return len(r.Findings) == 0 && len(problems) == 0
}
