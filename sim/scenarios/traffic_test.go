package scenarios_test

import (
	"context"
	"encoding/json"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53"

	"github.com/runbookhq/runbook/sdk/engine"
	"github.com/runbookhq/runbook/sdk/journal"
	"github.com/runbookhq/runbook/sim/faultproxy"
	"github.com/runbookhq/runbook/sim/topology"
)

// The traffic switch in a real outage: an installation whose primary is
// us-east-1, the region that also serves the control planes of Route 53,
// CloudFront and IAM ("AWS Fault Isolation Boundaries", Global services).
// With it dark, a switch that changes Route 53 records cannot be made; one
// that flips Route 53 ARC routing controls on the data plane, or one in
// Cloudflare, can. After every DNS switch the runbook asks the zone's name
// servers (the simulation's DNS server) until they answer the target.

// controlPlaneWarning is the start of the warning the plan and the approval
// prompts give when the chosen path depends on Route 53's control plane in
// us-east-1, the region being left (sdk/engine/controlplane.go).
const r53Warning = "Warning: this path depends on the Route 53 control plane in us-east-1"

// usEast1Args are the DR runs' flags on the us-east-1 installation: an
// unanswered AWS request is given up after 3 s instead of 10 (the steps'
// own retries stay as they are), so a dark region costs less test time.
func usEast1Sim(t *testing.T) *sim {
	s := newSimIn(t, "us-east-1")
	s.env = append(s.env, "RUNBOOK_AWS_RESPONSE_TIMEOUT=3s")
	return s
}

// longCtx bounds a run against a dark region (a hang guard, not a timed
// assertion: assertWithinTimeouts checks the steps' own bounds).
func (s *sim) longCtx() context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
	s.t.Cleanup(cancel)
	return ctx
}

// planWarnings plans a failover and returns the path's warnings.
func (s *sim) planWarnings(ctx context.Context, extra ...string) []string {
	s.t.Helper()
	res := s.runbook(ctx, nil, append(append([]string{"plan", failover, "-o", "json"}, s.drArgs()...), extra...)...)
	if res.code != 0 {
		s.t.Fatalf("plan: exit %d\n%s\n%s", res.code, res.stdout, res.stderr)
	}
	var plan engine.PlanResult
	if err := json.Unmarshal([]byte(res.stdout), &plan); err != nil {
		s.t.Fatalf("plan JSON: %v", err)
	}
	return plan.Warnings
}

// approvalPrompts are the messages of the run's approval requests.
func approvalPrompts(res result, step string) []string {
	var out []string
	for _, e := range res.eventsOf(step, journal.ApprovalRequested) {
		out = append(out, e.Message)
	}
	return out
}

func anyContains(list []string, sub string) bool {
	return slices.ContainsFunc(list, func(s string) bool { return strings.Contains(s, sub) })
}

// aliases reads the alias targets of the server hostname by type (A, AAAA),
// at the emulator directly.
func (s *sim) aliases() map[string]string {
	s.t.Helper()
	out, err := route53.NewFromConfig(s.emu.Config("us-east-1")).ListResourceRecordSets(context.Background(),
		&route53.ListResourceRecordSetsInput{HostedZoneId: aws.String(s.topo.HostedZoneID)})
	if err != nil {
		s.t.Fatal(err)
	}
	m := map[string]string{}
	for _, r := range out.ResourceRecordSets {
		if strings.TrimSuffix(aws.ToString(r.Name), ".") == s.topo.ServerRecordName && r.AliasTarget != nil && r.SetIdentifier == nil {
			m[string(r.Type)] = strings.ToLower(strings.TrimSuffix(aws.ToString(r.AliasTarget.DNSName), "."))
		}
	}
	return m
}

// runFinished returns the run's run_finished record.
func runFinished(t *testing.T, res result) journal.Record {
	t.Helper()
	fin, ok := res.finished()
	if !ok {
		t.Fatalf("no run_finished (exit %d)\n%s", res.code, res.stderr)
	}
	return fin
}

// assertDNSChecked: the check at the name servers ran and its answers name
// the target region (the DNS server's fake addresses of its load balancer,
// its IoT endpoint).
func assertDNSChecked(t *testing.T, s *sim, res result, steps ...string) {
	t.Helper()
	for _, step := range steps {
		ok := res.eventsOf(dr(step), journal.StepSucceeded)
		if len(ok) != 1 {
			t.Errorf("%s: %+v", step, res.eventsOf(dr(step), ""))
			continue
		}
		b, _ := json.Marshal(ok[0].Outputs["evidence"])
		if !strings.Contains(string(b), `"matches":true`) || strings.Contains(string(b), `"matches":false`) {
			t.Errorf("%s evidence %s", step, b)
		}
	}
}

func TestUSEast1Dark_Route53Refused(t *testing.T) {
	for _, mode := range []string{"planned", "unplanned"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			s := usEast1Sim(t)
			ctx := s.longCtx()
			// Before anything changes, the plan says the path depends on
			// Route 53's control plane in the region being left.
			if w := s.planWarnings(ctx, "--var", "mode="+mode); !anyContains(w, r53Warning+" (steps switch.dns_server, switch.dns_iot)") {
				t.Errorf("plan warnings %q", w)
			}
			if mode == "planned" {
				// CloudFront's origin switch depends on CloudFront's, and the
				// IoT record then on Route 53's.
				w := s.planWarnings(ctx, "--var", "traffic=cloudfront", "--var", "cloudfront_distribution_id="+s.topo.DistributionID)
				if !anyContains(w, "the CloudFront control plane in us-east-1 (steps switch.cloudfront_server)") || !anyContains(w, "the Route 53 control plane in us-east-1 (steps switch.dns_iot)") {
					t.Errorf("plan warnings of the CloudFront path %q", w)
				}
			}
			before := s.aliases()
			if mode == "planned" {
				// Both regions answer (a planned move needs them), but
				// Route 53's and CloudFront's control planes, served from
				// us-east-1, do not. (With IAM's dark too, the pre-flight's
				// read of the S3 replication role stops the run before
				// anything changes.)
				for _, svc := range []string{"route53", "cloudfront"} {
					if _, err := s.proxy.AddRule(faultproxy.Rule{Region: "us-east-1", Service: svc, Blackhole: faultproxy.Hang}); err != nil {
						t.Fatal(err)
					}
				}
			} else {
				s.darken("us-east-1")
			}
			s.proxy.ResetLog()
			start := time.Now()
			res := s.runbook(ctx, nil, append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs("--var", "mode="+mode)...)...)
			t.Logf("%s: exit %d in %s", mode, res.code, time.Since(start).Round(time.Second))
			if fin, ok := res.finished(); ok && fin.Error != nil {
				t.Logf("run error: %s", fin.Error.Message)
			}
			noPanic(t, "run", res)
			if p := approvalPrompts(res, dr("approve_db")); len(p) != 1 || !strings.Contains(p[0], r53Warning) {
				t.Errorf("approve_db prompt %q: want the control-plane warning", p)
			}
			// The traffic step fails, naming the cause, within its bound.
			for _, step := range []string{"dns_server", "dns_iot"} {
				f := res.eventsOf(dr(step), journal.StepFailed)
				if len(f) != 1 || f[0].Error == nil || !strings.Contains(f[0].Error.Message, "the Route 53 control plane (us-east-1) is unreachable") {
					t.Errorf("%s: want a failure naming Route 53's control plane, got %+v", step, f)
				}
			}
			assertWithinTimeouts(t, failover, res)
			for _, e := range s.proxy.Log() {
				if e.Forwarded && e.Service == "route53" {
					t.Errorf("Route 53 call %s reached the emulator", e.Operation)
				}
			}
			if got := s.aliases(); got["A"] != before["A"] {
				t.Errorf("server alias %v, want unchanged %v", got, before)
			}
			// The rollbacks of the two record steps cannot read Route 53
			// either (they could not tell whether a change went through):
			// the run says so (exit 4), and everything else is undone.
			fin := runFinished(t, res)
			var rbFailed []string
			for _, e := range res.eventsOf("", journal.RollbackFailed) {
				rbFailed = append(rbFailed, e.Step)
				if e.Error == nil || !strings.Contains(e.Error.Message, "the Route 53 control plane (us-east-1) is unreachable") {
					t.Errorf("rollback of %s failed with %+v", e.Step, e.Error)
				}
			}
			slices.Sort(rbFailed)
			if res.code != 4 || fin.Status != journal.StatusRollbackFailed || !slices.Equal(rbFailed, []string{dr("dns_iot"), dr("dns_server")}) {
				t.Errorf("exit %d, status %s, rollbacks failed %v; want 4, the two record steps'", res.code, fin.Status, rbFailed)
			}
			for _, step := range []string{"dns_check", "guard_source_services", "finish", "notice"} {
				if ev := res.eventsOf(dr(step), journal.StepStarted); len(ev) != 0 {
					t.Errorf("%s started after the traffic step failed", step)
				}
			}
			st := s.state()
			if mode == "planned" {
				// Rolled back: the writer and the services are back in us-east-1.
				s.proxy.Clear()
				s.assertActiveIn(s.state(), s.topo.Primary, s.topo.DR)
				return
			}
			// Unplanned: the writer and the services stay in us-west-2, and
			// the run says exactly what is left.
			if st.writerRegion != s.topo.DR.Name {
				t.Errorf("writer in %s", st.writerRegion)
			}
			for name, n := range s.topo.Primary.DesiredCounts {
				if st.drCounts[name] != n {
					t.Errorf("%s: service %s desired %d, want %d", s.topo.DR.Name, name, st.drCounts[name], n)
				}
			}
			want := "Left to do: point the alias records (A, and AAAA if any) of " + s.topo.ServerRecordName + " in hosted zone " + s.topo.HostedZoneID + " at " + s.topo.DR.LoadBalancerDNS +
				" once Route 53's control plane answers; point the CNAME " + s.topo.IoTRecordName + " in hosted zone " + s.topo.HostedZoneID + " at " + s.topo.DR.IoTEndpoint +
				"; check that the zones' name servers answer us-west-2 for both; then restart the workers (replace the instances of auto-scaling group " + s.topo.DR.ASGName +
				"); stop the ECS services of cluster " + s.topo.Primary.ECSCluster + " in us-east-1 (desired count 0) once the region answers" +
				"; set disable_services to false in us-west-2's installer config and to true in us-east-1's; tell users to clear the cookies of " + s.topo.ServerRecordName + " and log in again."
			var logs []string
			for _, e := range res.eventsOf(dr("guard_traffic"), journal.Log) {
				if e.Rollback {
					logs = append(logs, e.Message)
				}
			}
			if len(logs) != 1 || logs[0] != want {
				t.Errorf("what is left:\n got %q\nwant %q", logs, want)
			}
		})
	}
}

// arcSetupInputs runs runbooks/arc-setup.yaml (peacetime, us-east-1 up) and
// writes its arc output as a var file of the DR runbooks.
func (s *sim) arcSetupInputs(ctx context.Context) string {
	s.t.Helper()
	in := s.topo.RunbookInputs()
	vars := s.writeJSON("arc-setup-inputs.json", map[string]any{"hosted_zone_id": in["hosted_zone_id"], "load_balancer_primary": in["load_balancer_primary"], "load_balancer_dr": in["load_balancer_dr"]})
	res := s.runbook(ctx, nil, "run", arcSetup, "--auto-approve", "-o", "json", "--var", "primary=@"+filepath.Join(s.dir, topology.PrimaryConfigFile),
		"--var", "dr=@"+filepath.Join(s.dir, topology.DRConfigFile), "--var-file", vars, "--var", "poll_interval=250ms", "--state", filepath.Join(s.dir, "state"))
	if res.code != 0 {
		s.t.Fatalf("arc-setup: exit %d\n%s", res.code, res.stderr)
	}
	fin := runFinished(s.t, res)
	return s.writeJSON("arc.json", map[string]any{"arc": fin.Outputs["arc"]})
}

func (s *sim) writeJSON(name string, v any) string {
	s.t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		s.t.Fatal(err)
	}
	return s.writeFile(name, string(b), 0o644)
}

// With the routing controls set up in peacetime, an unplanned failover with
// us-east-1 dark moves both names through the cluster's endpoints in other
// regions, without a call to any control plane, and the name servers answer
// us-west-2.
func TestUSEast1Dark_Route53ARC(t *testing.T) {
	t.Parallel()
	s := usEast1Sim(t)
	ctx := s.longCtx()
	arcVars := s.arcSetupInputs(ctx)
	extra := []string{"--var", "traffic=route53_arc", "--var-file", arcVars, "--var", "mode=unplanned"}
	if w := s.planWarnings(ctx, extra...); anyContains(w, "control plane") {
		t.Errorf("plan of route53_arc warns of a control plane: %q", w)
	}
	s.darken("us-east-1")
	s.proxy.ResetLog()
	res := s.runbook(ctx, nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), extra...)...)
	if res.code != 0 {
		t.Fatalf("failover exit %d\n%s", res.code, res.stderr)
	}
	if p := approvalPrompts(res, dr("approve_traffic")); len(p) != 1 || strings.Contains(p[0], "Warning") || !strings.Contains(p[0], "Route 53 ARC routing controls") {
		t.Errorf("approve_traffic prompt %q", p)
	}
	ok := res.eventsOf(dr("arc_traffic"), journal.StepSucceeded)
	if len(ok) != 1 || ok[0].Outputs["endpoint_region"] == "us-east-1" || ok[0].Outputs["changed"] != true {
		t.Fatalf("arc_traffic: %+v", res.eventsOf(dr("arc_traffic"), ""))
	}
	for _, step := range []string{"dns_server", "dns_iot", "cloudflare_server", "cloudflare_iot"} {
		if ev := res.eventsOf(dr(step), journal.StepSkipped); len(ev) != 1 {
			t.Errorf("%s not skipped: %+v", step, res.eventsOf(dr(step), ""))
		}
	}
	for _, e := range s.proxy.Log() {
		if slices.Contains([]string{"route53", "cloudfront", "iam", "route53-recovery-control-config"}, e.Service) {
			t.Errorf("the failover called %s %s", e.Service, e.Operation)
		}
	}
	assertDNSChecked(t, s, res, "dns_check_server", "dns_check_iot")
	a, err := s.emu.Route53Answer(ctx, s.topo.HostedZoneID, s.topo.ServerRecordName, "A")
	if err != nil || a.Alias == nil || !strings.EqualFold(strings.TrimSuffix(a.Alias.DNSName, "."), s.topo.DR.LoadBalancerDNS) {
		t.Errorf("Route 53 answers %s with %+v (%v), want the DR load balancer", s.topo.ServerRecordName, a, err)
	}
	fin := runFinished(t, res)
	ev, _ := fin.Outputs["traffic_evidence"].(string)
	if !strings.Contains(ev, "ARC routing controls") || !strings.Contains(ev, s.dns+" answers "+s.topo.IoTRecordName+" CNAME CNAME "+s.topo.DR.IoTEndpoint) {
		t.Errorf("traffic_evidence %q", ev)
	}
	// Besides the installer config edits, only the stop of the dark
	// region's services is left, with its command.
	if left := besidesConfigEdits(t, fin.Outputs["left_to_do"], "failover"); !strings.HasPrefix(left, "stop the ECS services of cluster "+s.topo.Primary.ECSCluster+" in us-east-1 (desired count 0) once the region answers: aws ecs update-service --region us-east-1 --cluster "+s.topo.Primary.ECSCluster) || strings.Contains(left, "; ") {
		t.Errorf("left_to_do %q", left)
	}
}

// The Cloudflare path needs nothing of us-east-1: an unplanned failover with
// it dark moves both records, and Cloudflare's name servers answer us-west-2.
func TestUSEast1Dark_Cloudflare(t *testing.T) {
	t.Parallel()
	s := usEast1Sim(t)
	p := s.startPaths()
	ctx := s.longCtx()
	extra := append(p.args(s, "cloudflare", "asg"), "--var", "mode=unplanned")
	if w := s.planWarnings(ctx, extra...); anyContains(w, "control plane") {
		t.Errorf("plan of cloudflare warns of a control plane: %q", w)
	}
	s.darken("us-east-1")
	s.proxy.ResetLog()
	res := s.runbook(ctx, nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), extra...)...)
	if res.code != 0 {
		t.Fatalf("failover exit %d\n%s", res.code, res.stderr)
	}
	p.assertCloudflare(t, s.topo.ServerRecordName, s.topo.DR.LoadBalancerDNS)
	p.assertCloudflare(t, s.topo.IoTRecordName, s.topo.DR.IoTEndpoint)
	if n := s.proxy.CountWhere(faultproxy.Filter{Service: "route53"}); n.Total != 0 {
		t.Errorf("%d Route 53 calls on the Cloudflare path", n.Total)
	}
	assertDNSChecked(t, s, res, "dns_check_server", "dns_check_iot")
	fin := runFinished(t, res)
	if ev, _ := fin.Outputs["traffic_evidence"].(string); !strings.Contains(ev, "name servers: "+p.cfDNS) {
		t.Errorf("traffic_evidence %q does not name Cloudflare's name server", ev)
	}
	// Besides the installer config edits, only the stop of the dark
	// region's services is left, with its command.
	if left := besidesConfigEdits(t, fin.Outputs["left_to_do"], "failover"); !strings.HasPrefix(left, "stop the ECS services of cluster "+s.topo.Primary.ECSCluster+" in us-east-1 (desired count 0) once the region answers: aws ecs update-service --region us-east-1 --cluster "+s.topo.Primary.ECSCluster) || strings.Contains(left, "; ") {
		t.Errorf("left_to_do %q", left)
	}
}

// A dual-stack hostname (an A and an AAAA alias to dual-stack load
// balancers) moves whole: a failover moves both aliases and the name
// servers answer the DR load balancer over IPv4 and IPv6; a failure after
// the switch rolls both back; the failback moves both again.
func TestDualStackAAAA(t *testing.T) {
	t.Parallel()
	s := newSimWith(t, "default", func(o *topology.Options) { o.DualStack = true })
	ctx := s.ctx()
	primary, drLB := strings.ToLower(s.topo.Primary.LoadBalancerDNS), strings.ToLower(s.topo.DR.LoadBalancerDNS)
	if got := s.aliases(); got["A"] != primary || got["AAAA"] != primary {
		t.Fatalf("seeded aliases %v", got)
	}
	// The IoT record's change is refused: the server's two aliases, already
	// moved, are moved back with the rest.
	if _, err := s.proxy.AddRule(faultproxy.Rule{Service: "route53", Operation: "ChangeResourceRecordSets", BodyContains: "<Type>CNAME</Type>", ErrorRate: 1, Error: faultproxy.ServerError}); err != nil {
		t.Fatal(err)
	}
	res := s.runbook(ctx, func(e journal.Record, _ *exec.Cmd) {
		if e.Type == journal.RollbackStarted {
			s.proxy.Clear()
		}
	}, append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...)...)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.code, res.stderr)
	}
	if ok := res.eventsOf(dr("dns_server"), journal.StepSucceeded); len(ok) != 1 || !slices.Equal(toStrings(ok[0].Outputs["types"]), []string{"A", "AAAA"}) {
		t.Errorf("dns_server: %+v", res.eventsOf(dr("dns_server"), ""))
	}
	if rb := res.eventsOf(dr("dns_server"), journal.RollbackSucceeded); len(rb) != 1 || rb[0].Outputs["changed"] != true {
		t.Errorf("dns_server rollback: %+v", rb)
	}
	if got := s.aliases(); got["A"] != primary || got["AAAA"] != primary {
		t.Errorf("after the rollback the aliases are %v, want both at %s", got, primary)
	}

	res = s.runbook(ctx, nil, append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...)...)
	if res.code != 0 {
		t.Fatalf("failover exit %d\n%s", res.code, res.stderr)
	}
	if got := s.aliases(); got["A"] != drLB || got["AAAA"] != drLB {
		t.Errorf("after the failover the aliases are %v, want both at %s", got, drLB)
	}
	assertDNSChecked(t, s, res, "dns_check_server", "dns_check_iot")
	ok := res.eventsOf(dr("dns_check_server"), journal.StepSucceeded)
	if b, _ := json.Marshal(ok); !strings.Contains(string(b), `"type":"AAAA"`) || !strings.Contains(string(b), "AAAA 2001:db8:2::") {
		t.Errorf("the check did not ask for the AAAA answer of the DR load balancer: %s", b)
	}
	if ev, _ := runFinished(t, res).Outputs["traffic_evidence"].(string); !strings.Contains(ev, "Route 53 A and AAAA aliases of "+s.topo.ServerRecordName+" moved") {
		t.Errorf("traffic_evidence %q", ev)
	}

	res = s.runbook(ctx, nil, append([]string{"run", failback, "--auto-approve", "-o", "json"}, s.drArgs()...)...)
	if res.code != 0 {
		t.Fatalf("failback exit %d\n%s", res.code, res.stderr)
	}
	if got := s.aliases(); got["A"] != primary || got["AAAA"] != primary {
		t.Errorf("after the failback the aliases are %v, want both at %s", got, primary)
	}
}

func toStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, x := range l {
		s, _ := x.(string)
		out = append(out, s)
	}
	return out
}

// Cloudflare as it is: a proxied IoT broker record is refused at pre-flight
// with the reason (MQTT does not pass the HTTP proxy), nothing changed; a
// proxied server record is moved with TTL 1 (automatic) and is not checked
// in DNS (Cloudflare answers its own edge addresses for it).
func TestCloudflareProxiedRecords(t *testing.T) {
	t.Parallel()
	s := newSim(t)
	p := s.startPaths()
	ctx := s.ctx()
	if err := p.cf.SetProxied(s.topo.IoTRecordName, "CNAME", true); err != nil {
		t.Fatal(err)
	}
	before := s.state()
	s.proxy.ResetLog()
	res := s.runbook(ctx, nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), p.args(s, "cloudflare", "asg")...)...)
	if res.code != 1 {
		t.Fatalf("exit %d, want 1\n%s", res.code, res.stderr)
	}
	f := res.eventsOf(dr("cloudflare_iot_record"), journal.StepFailed)
	if len(f) != 1 || f[0].Error == nil || f[0].Error.Code != "ProxiedRecord" || !strings.Contains(f[0].Error.Message, "MQTT") || !strings.Contains(f[0].Error.Message, s.topo.IoTRecordName) {
		t.Errorf("cloudflare_iot_record: want the refusal with the reason, got %+v", f)
	}
	if diff := diffState(before, s.state()); diff != "" {
		t.Errorf("a refused pre-flight changed the world: %s", diff)
	}
	for _, e := range s.proxy.Log() {
		if e.Forwarded && isMutating(e.Operation) {
			t.Errorf("mutating call %s %s after a refused pre-flight", e.Service, e.Operation)
		}
	}
	if m := p.cf.Mutations(); len(m) != 0 {
		t.Errorf("Cloudflare changed: %+v", m)
	}

	// The IoT record DNS only again, the server record proxied (TTL 300 before).
	if err := p.cf.SetProxied(s.topo.IoTRecordName, "CNAME", false); err != nil {
		t.Fatal(err)
	}
	if err := p.cf.SetProxied(s.topo.ServerRecordName, "CNAME", true); err != nil {
		t.Fatal(err)
	}
	res = s.runbook(ctx, nil, append(append([]string{"run", failover, "--auto-approve", "-o", "json"}, s.drArgs()...), p.args(s, "cloudflare", "asg")...)...)
	if res.code != 0 {
		t.Fatalf("failover exit %d\n%s", res.code, res.stderr)
	}
	r := p.cf.Records(s.topo.ServerRecordName)
	if len(r) != 1 || !r[0].Proxied || r[0].TTL != 1 || r[0].Content != s.topo.DR.LoadBalancerDNS {
		t.Errorf("server record %+v, want proxied, TTL 1, at %s", r, s.topo.DR.LoadBalancerDNS)
	}
	if ev := res.eventsOf(dr("dns_check_server"), journal.StepSkipped); len(ev) != 1 {
		t.Errorf("dns_check_server of a proxied record: %+v", res.eventsOf(dr("dns_check_server"), ""))
	}
	assertDNSChecked(t, s, res, "dns_check_iot")
	if ev, _ := runFinished(t, res).Outputs["traffic_evidence"].(string); !strings.Contains(ev, "proxied: answers are Cloudflare's edge") {
		t.Errorf("traffic_evidence %q", ev)
	}
}
