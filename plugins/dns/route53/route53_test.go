package route53

import (
	"context"
	"errors"
	"net"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	r53 "github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/plugins/aws/awstest"
	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"

	"github.com/runbookhq/runbook/internal/docgen"
	"github.com/runbookhq/runbook/sdk/iam"
)

// albZone is a load balancer's canonical hosted zone id (eu-west-3).
const albZone = "Z3Q77PNBQS71R4"

func TestMain(m *testing.M) { awstest.Main(m) }

type fixture struct {
	c    *plugintest.Client
	env  *awstest.Env
	r53  *r53.Client
	zone string
	// domain is the test's own zone name (tests share the emulator).
	domain string
}

func setup(t *testing.T) *fixture {
	t.Helper()
	env := awstest.Shared(t)
	c := plugintest.Start(t, plugin.Info{Name: "dns", Version: "test"}, Action())
	f := &fixture{c: c, env: env, r53: r53.NewFromConfig(env.Config(t, "us-east-1")), domain: awstest.Name(t, "myorg") + ".com"}
	f.zone = f.createZone(t, f.domain, false)
	return f
}

// n is a name in the test's zone: n("spacelift") = "spacelift.<domain>".
func (f *fixture) n(label string) string { return label + "." + f.domain }

func (f *fixture) createZone(t *testing.T, name string, private bool) string {
	t.Helper()
	in := &r53.CreateHostedZoneInput{Name: aws.String(name), CallerReference: aws.String(name + t.Name() + map[bool]string{true: "p", false: ""}[private])}
	if private {
		in.HostedZoneConfig = &types.HostedZoneConfig{PrivateZone: true}
		in.VPC = &types.VPC{VPCId: aws.String("vpc-12345678"), VPCRegion: types.VPCRegionEuWest1}
	}
	out, err := f.r53.CreateHostedZone(context.Background(), in)
	if err != nil {
		t.Fatal(err)
	}
	return strings.TrimPrefix(aws.ToString(out.HostedZone.Id), "/hostedzone/")
}

func (f *fixture) put(t *testing.T, rs types.ResourceRecordSet) {
	t.Helper()
	_, err := f.r53.ChangeResourceRecordSets(context.Background(), &r53.ChangeResourceRecordSetsInput{
		HostedZoneId: aws.String(f.zone),
		ChangeBatch:  &types.ChangeBatch{Changes: []types.Change{{Action: types.ChangeActionUpsert, ResourceRecordSet: &rs}}},
	})
	if err != nil {
		t.Fatal(err)
	}
}

// records reads every record set at name from the emulator, as "TYPE
// value(s)" strings.
func (f *fixture) records(t *testing.T, name string) []string {
	t.Helper()
	out, err := f.r53.ListResourceRecordSets(context.Background(), &r53.ListResourceRecordSetsInput{HostedZoneId: aws.String(f.zone)})
	if err != nil {
		t.Fatal(err)
	}
	var got []string
	for _, rs := range out.ResourceRecordSets {
		if normalizeName(aws.ToString(rs.Name)) != name {
			continue
		}
		s := string(rs.Type)
		if rs.AliasTarget != nil {
			s += " alias " + strings.TrimSuffix(aws.ToString(rs.AliasTarget.DNSName), ".")
		}
		for _, v := range rs.ResourceRecords {
			s += " " + aws.ToString(v.Value)
		}
		if rs.TTL != nil {
			s += " ttl=" + strconv.FormatInt(*rs.TTL, 10)
		}
		got = append(got, s)
	}
	return got
}

func (f *fixture) params(more map[string]any) map[string]any {
	p := map[string]any{"endpoint_url": f.env.URL, "poll_interval": "100ms"}
	for k, v := range more {
		p[k] = v
	}
	return p
}

func wantFatal(t *testing.T, err error, parts ...string) *plugin.Error {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) || pe.Retryable {
		t.Fatalf("err = %v, want a fatal action error", err)
	}
	for _, p := range parts {
		if !strings.Contains(pe.Message, p) {
			t.Fatalf("error %q does not mention %q", pe.Message, p)
		}
	}
	return pe
}

func TestCreateThenRestoreDeletes(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := plugintest.Context(t)
	out, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{
		"zone_id": f.zone, "name": f.n("spacelift"), "value": "dr-alb.eu-west-3.elb.amazonaws.com", "ttl": 30,
	}))
	if err != nil {
		t.Fatal(err)
	}
	prev := out["previous"].(map[string]any)
	if prev["exists"] != false || prev["name"] != f.n("spacelift") || prev["type"] != "CNAME" || prev["zone_id"] != f.zone {
		t.Fatalf("previous = %v", prev)
	}
	if out["changed"] != true || out["change_id"] == "" {
		t.Fatalf("outputs = %v", out)
	}
	if d := cmp.Diff([]string{"CNAME dr-alb.eu-west-3.elb.amazonaws.com ttl=30"}, f.records(t, f.n("spacelift"))); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	// The emulator reports the change PENDING first: the action waited for INSYNC.
	if msgs := progress(f.c); !hasMessage(msgs, "current record: (none)") || !hasMessage(msgs, "change submitted") || !hasMessage(msgs, "change insync") {
		t.Fatalf("progress = %v", msgs)
	}

	// The rollback: restore the previous output as it is.
	back, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{"restore": prev}))
	if err != nil {
		t.Fatal(err)
	}
	if got := f.records(t, f.n("spacelift")); len(got) != 0 {
		t.Fatalf("after restore: %v", got)
	}
	if back["record"].(map[string]any)["exists"] != false {
		t.Fatalf("restore outputs = %v", back)
	}
}

func TestUpdateIsIdempotentAndRestorable(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := plugintest.Context(t)
	f.put(t, types.ResourceRecordSet{Name: aws.String(f.n("worker-iot")), Type: types.RRTypeCname, TTL: aws.Int64(300),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("abc-ats.iot.eu-west-1.amazonaws.com")}}})
	params := f.params(map[string]any{"zone_name": f.domain, "name": f.n("worker-iot"), "value": "abc-ats.iot.eu-west-3.amazonaws.com"})
	out, err := f.c.Apply(ctx, "route53_record", params)
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]any{"exists": true, "zone_id": f.zone, "name": f.n("worker-iot"), "type": "CNAME", "ttl": 300.0, "values": []any{"abc-ats.iot.eu-west-1.amazonaws.com"}}
	if d := cmp.Diff(want, out["previous"]); d != "" {
		t.Fatalf("previous (-want +got):\n%s", d)
	}
	if d := cmp.Diff([]string{"CNAME abc-ats.iot.eu-west-3.amazonaws.com ttl=60"}, f.records(t, f.n("worker-iot"))); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	again, err := f.c.Apply(ctx, "route53_record", params)
	if err != nil {
		t.Fatal(err)
	}
	if again["changed"] != false || again["change_id"] != "" {
		t.Fatalf("re-run outputs = %v", again)
	}
	if _, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{"restore": out["previous"]})); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"CNAME abc-ats.iot.eu-west-1.amazonaws.com ttl=300"}, f.records(t, f.n("worker-iot"))); d != "" {
		t.Fatalf("after restore (-want +got):\n%s", d)
	}
}

func TestAliasReplacedByCNAMEAndBack(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := plugintest.Context(t)
	f.put(t, types.ResourceRecordSet{Name: aws.String(f.n("spacelift")), Type: types.RRTypeA,
		AliasTarget: &types.AliasTarget{DNSName: aws.String("primary-alb.eu-west-1.elb.amazonaws.com."), HostedZoneId: aws.String("Z32O12XQLNTSW2"), EvaluateTargetHealth: true}})
	out, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{"zone_id": "/hostedzone/" + f.zone, "name": strings.ToUpper(f.n("spacelift")) + ".", "value": "dr.example.net"}))
	if err != nil {
		t.Fatal(err)
	}
	prev := out["previous"].(map[string]any)
	if prev["type"] != "A" || prev["alias"].(map[string]any)["dns_name"] != "primary-alb.eu-west-1.elb.amazonaws.com" || prev["alias"].(map[string]any)["evaluate_target_health"] != true {
		t.Fatalf("previous = %v", prev)
	}
	if d := cmp.Diff([]string{"CNAME dr.example.net ttl=60"}, f.records(t, f.n("spacelift"))); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	if _, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{"restore": prev})); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"A alias primary-alb.eu-west-1.elb.amazonaws.com"}, f.records(t, f.n("spacelift"))); d != "" {
		t.Fatalf("after restore (-want +got):\n%s", d)
	}

	// An alias to the DR load balancer, then delete it.
	if _, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{"zone_id": f.zone, "name": f.n("spacelift"),
		"alias": map[string]any{"dns_name": "dr-alb.eu-west-3.elb.amazonaws.com", "hosted_zone_id": albZone}})); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"A alias dr-alb.eu-west-3.elb.amazonaws.com"}, f.records(t, f.n("spacelift"))); d != "" {
		t.Fatalf("alias (-want +got):\n%s", d)
	}
	if _, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{"zone_id": f.zone, "name": f.n("spacelift"), "type": "A", "delete": true})); err != nil {
		t.Fatal(err)
	}
	if got := f.records(t, f.n("spacelift")); len(got) != 0 {
		t.Fatalf("after delete: %v", got)
	}
}

func TestZoneErrors(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := plugintest.Context(t)
	_, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{"zone_id": "ZNOSUCHZONE", "name": f.n("a"), "value": "x"}))
	if pe := wantFatal(t, err, "hosted zone ZNOSUCHZONE not found"); pe.Code != "NoSuchHostedZone" {
		t.Fatalf("code = %q", pe.Code)
	}
	_, err = f.c.Apply(ctx, "route53_record", f.params(map[string]any{"zone_name": awstest.Name(t, "nosuch") + ".org", "name": "a.nosuch.org", "value": "x"}))
	wantFatal(t, err, "no hosted zone named "+awstest.Name(t, "nosuch")+".org")
	_, err = f.c.Apply(ctx, "route53_record", f.params(map[string]any{"zone_id": f.zone, "name": "a.other.org", "value": "x"}))
	wantFatal(t, err, "a.other.org is not in hosted zone")

	f.createZone(t, f.domain, true)
	_, err = f.c.Apply(ctx, "route53_record", f.params(map[string]any{"zone_name": f.domain, "name": f.n("a"), "value": "x"}))
	wantFatal(t, err, "2 hosted zones are named "+f.domain)
	if _, err := f.c.Apply(ctx, "route53_record", f.params(map[string]any{"zone_name": f.domain, "private_zone": false, "name": f.n("a"), "value": "x"})); err != nil {
		t.Fatal(err)
	}
	if d := cmp.Diff([]string{"CNAME x ttl=60"}, f.records(t, f.n("a"))); d != "" {
		t.Fatalf("public zone record (-want +got):\n%s", d)
	}
}

func TestPlanChangesNothing(t *testing.T) {
	t.Parallel()
	f := setup(t)
	ctx := plugintest.Context(t)
	f.put(t, types.ResourceRecordSet{Name: aws.String(f.n("spacelift")), Type: types.RRTypeCname, TTL: aws.Int64(60),
		ResourceRecords: []types.ResourceRecord{{Value: aws.String("primary.example.net")}}})
	plan, err := f.c.PlanParams(ctx, "route53_record", f.params(map[string]any{"zone_id": f.zone, "name": f.n("spacelift"), "value": "dr.example.net"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 1 || plan.Changes[0].Kind != plugin.ChangeUpdate || !strings.Contains(plan.Summary, "primary.example.net") || !strings.Contains(plan.Summary, "dr.example.net") {
		t.Fatalf("plan = %+v", plan)
	}
	before := plan.Changes[0].Before.(map[string]any)["values"].([]any)
	after := plan.Changes[0].After.(map[string]any)["values"].([]any)
	if before[0] != "primary.example.net" || after[0] != "dr.example.net" {
		t.Fatalf("change = %+v", plan.Changes[0])
	}
	if d := cmp.Diff([]string{"CNAME primary.example.net ttl=60"}, f.records(t, f.n("spacelift"))); d != "" {
		t.Fatalf("plan changed the record (-want +got):\n%s", d)
	}
	plan, err = f.c.PlanParams(ctx, "route53_record", f.params(map[string]any{"zone_id": f.zone, "name": f.n("spacelift"), "value": "primary.example.net."}))
	if err != nil || plan.Changes[0].Kind != plugin.ChangeNoop {
		t.Fatalf("equal record: plan = %+v, err = %v", plan, err)
	}
	plan, err = f.c.PlanParams(ctx, "route53_record", f.params(map[string]any{"zone_id": f.zone, "name": f.n("new"), "value": "x.example.net"}))
	if err != nil || plan.Changes[0].Kind != plugin.ChangeCreate || plan.Changes[0].Before != nil {
		t.Fatalf("new record: plan = %+v, err = %v", plan, err)
	}
	if _, err := f.c.PlanParams(ctx, "route53_record", f.params(map[string]any{"zone_id": "ZNOSUCHZONE", "name": f.n("a"), "value": "x"})); err == nil || !strings.Contains(err.Error(), "ZNOSUCHZONE") {
		t.Fatalf("plan with an unknown zone: err = %v", err)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := plugintest.Start(t, plugin.Info{Name: "dns"}, Action())
	ctx := plugintest.Context(t)
	cases := map[string]struct {
		params map[string]any
		path   string
	}{
		"no mode":       {map[string]any{"zone_id": "Z", "name": "a.b"}, ""},
		"two modes":     {map[string]any{"zone_id": "Z", "name": "a.b", "value": "x", "delete": true, "type": "CNAME"}, ""},
		"no zone":       {map[string]any{"name": "a.b", "value": "x"}, ""},
		"no name":       {map[string]any{"zone_id": "Z", "value": "x"}, "/name"},
		"alias cname":   {map[string]any{"zone_id": "Z", "name": "a.b", "type": "CNAME", "alias": map[string]any{"dns_name": "x", "hosted_zone_id": "Z"}}, "/type"},
		"delete notype": {map[string]any{"zone_id": "Z", "name": "a.b", "delete": true}, "/type"},
	}
	for name, tc := range cases {
		diags, err := c.Validate(ctx, "route53_record", tc.params, nil)
		if err != nil {
			t.Fatal(err)
		}
		if len(diags) != 1 || diags[0].Path != tc.path {
			t.Errorf("%s: diags = %+v", name, diags)
		}
	}
	diags, _ := c.Validate(ctx, "route53_record", map[string]any{"restore": nil}, []string{"/restore"})
	if len(diags) != 0 {
		t.Fatalf("restore known at run time: %+v", diags)
	}
}

func progress(c *plugintest.Client) []string {
	var out []string
	for _, p := range c.Progress() {
		out = append(out, p.Message)
	}
	return out
}

func hasMessage(msgs []string, part string) bool {
	for _, m := range msgs {
		if strings.Contains(m, part) {
			return true
		}
	}
	return false
}

func TestDeclaresItsPermissions(t *testing.T) {
	srv, err := plugin.NewServer(plugin.Info{Name: "dns"}, Action(), AliasesAction(), FailoverAction())
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range srv.Description().Actions {
		var acts []string
		for _, p := range a.Permissions {
			acts = append(acts, p.Actions...)
		}
		for _, want := range []string{"route53:ChangeResourceRecordSets", "route53:GetChange", "route53:ListResourceRecordSets"} {
			if !slices.Contains(acts, want) {
				t.Errorf("%s does not declare %s (declares %v)", a.Name, want, acts)
			}
		}
	}
}

// The IAM table of docs/plugins/dns.md is generated from the declarations
// (-update rewrites it).
func TestDocsListThePermissions(t *testing.T) {
	srv, err := plugin.NewServer(plugin.Info{Name: "dns"}, Action(), AliasesAction(), FailoverAction())
	if err != nil {
		t.Fatal(err)
	}
	docgen.Check(t, "docs/plugins/dns.md", "permissions", iam.DocTable("dns", srv.Description().Actions))
}

// A Route 53 that does not answer (its control plane, in us-east-1, dark)
// fails the step naming the cause, retryable, without the SDK's words alone.
func TestUnreachableNamesTheControlPlane(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "AKIDSIMULATION")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "simulation")
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	url := "http://" + ln.Addr().String()
	ln.Close() // nothing listens there any more: connection refused
	c := plugintest.Start(t, plugin.Info{Name: "dns", Version: "test"}, Action(), AliasesAction())
	ctx := plugintest.Context(t)
	for _, action := range []string{"route53_record", "route53_aliases"} {
		p := map[string]any{"endpoint_url": url, "zone_id": "Z0SIM", "name": "a.example.com"}
		if action == "route53_record" {
			p["value"] = "x.example.com"
		} else {
			p["alias"] = map[string]any{"dns_name": "lb.example.com", "hosted_zone_id": "Z1"}
		}
		_, err := c.Apply(ctx, action, p)
		var pe *plugin.Error
		if !errors.As(err, &pe) || pe.Code != "ControlPlaneUnreachable" || !pe.Retryable ||
			!strings.Contains(pe.Message, "the Route 53 control plane (us-east-1) is unreachable: reading hosted zone Z0SIM") {
			t.Errorf("%s: err = %v", action, err)
		}
	}
}
