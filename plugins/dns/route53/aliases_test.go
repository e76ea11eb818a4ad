package route53

import (
	"fmt"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/route53/types"
	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

const (
	primaryALB = "dualstack.primary-alb.eu-west-1.elb.amazonaws.com"
	drALB      = "dualstack.dr-alb.eu-west-3.elb.amazonaws.com"
	primaryZID = "Z32O12XQLNTSW2" // eu-west-1's load balancer zone
)

func aliasSet(name string, typ types.RRType, target, zone string) types.ResourceRecordSet {
	return types.ResourceRecordSet{Name: aws.String(name), Type: typ,
		AliasTarget: &types.AliasTarget{DNSName: aws.String(target + "."), HostedZoneId: aws.String(zone), EvaluateTargetHealth: true}}
}

func drAlias() map[string]any {
	return map[string]any{"dns_name": drALB, "hosted_zone_id": albZone, "evaluate_target_health": true}
}

func startAliases(t *testing.T) *fixture {
	t.Helper()
	f := setup(t)
	f.c = plugintest.Start(t, plugin.Info{Name: "dns", Version: "test"}, AliasesAction())
	return f
}

// A dual-stack hostname: both aliases move in one change, the rollback puts
// both back, and records that do not carry traffic are left alone.
func TestAliasesMoveBothTypesAndRestore(t *testing.T) {
	t.Parallel()
	f := startAliases(t)
	ctx := plugintest.Context(t)
	host := f.n("spacelift")
	f.put(t, aliasSet(host, types.RRTypeA, primaryALB, primaryZID))
	f.put(t, aliasSet(host, types.RRTypeAaaa, primaryALB, primaryZID))
	f.put(t, types.ResourceRecordSet{Name: aws.String(host), Type: types.RRTypeTxt, TTL: aws.Int64(300), ResourceRecords: []types.ResourceRecord{{Value: aws.String(`"v=spf1 -all"`)}}})

	params := f.params(map[string]any{"zone_id": f.zone, "name": host, "alias": drAlias(), "require": []any{"A", "AAAA"}})
	out, err := f.c.Apply(ctx, "route53_aliases", params)
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"A alias " + drALB, "AAAA alias " + drALB, `TXT "v=spf1 -all" ttl=300`}
	if d := cmp.Diff(want, f.records(t, host)); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	if fmt.Sprint(out["types"]) != "[A AAAA]" || fmt.Sprint(out["left_alone"]) != "[TXT]" || out["changed"] != true || out["change_id"] == "" {
		t.Fatalf("outputs = %v", out)
	}
	prev := out["previous"].([]any)
	if len(prev) != 2 {
		t.Fatalf("previous = %v", prev)
	}
	for i, typ := range []string{"A", "AAAA"} {
		r := prev[i].(map[string]any)
		if r["type"] != typ || r["alias"].(map[string]any)["dns_name"] != primaryALB || r["zone_id"] != f.zone || r["name"] != host {
			t.Fatalf("previous[%d] = %v", i, r)
		}
	}
	// One change, both types: the progress names a single submission that
	// lists both, and it waited for INSYNC.
	msgs := progress(f.c)
	var submitted []string
	for _, m := range msgs {
		if strings.HasPrefix(m, "change submitted") {
			submitted = append(submitted, m)
		}
	}
	if len(submitted) != 1 || !strings.Contains(submitted[0], "A alias -> "+drALB) || !strings.Contains(submitted[0], "AAAA alias -> "+drALB) || !hasMessage(msgs, "change insync") {
		t.Fatalf("progress = %v", msgs)
	}

	// Idempotent.
	again, err := f.c.Apply(ctx, "route53_aliases", params)
	if err != nil || again["changed"] != false || again["change_id"] != "" {
		t.Fatalf("re-run: %v, %v", again, err)
	}

	// The rollback restores both.
	if _, err := f.c.Apply(ctx, "route53_aliases", f.params(map[string]any{"restore": prev})); err != nil {
		t.Fatal(err)
	}
	want = []string{"A alias " + primaryALB, "AAAA alias " + primaryALB, `TXT "v=spf1 -all" ttl=300`}
	if d := cmp.Diff(want, f.records(t, host)); d != "" {
		t.Fatalf("after restore (-want +got):\n%s", d)
	}
}

func TestAliasesRequireAndSingleStack(t *testing.T) {
	t.Parallel()
	f := startAliases(t)
	ctx := plugintest.Context(t)
	host := f.n("spacelift")
	f.put(t, aliasSet(host, types.RRTypeA, primaryALB, primaryZID))

	_, err := f.c.Apply(ctx, "route53_aliases", f.params(map[string]any{"zone_name": f.domain, "name": host, "alias": drAlias(), "require": []any{"A", "AAAA"}}))
	if pe := wantFatal(t, err, host, "has no AAAA alias record (it has A)"); pe.Code != "MissingAlias" {
		t.Fatalf("code = %s", pe.Code)
	}
	if d := cmp.Diff([]string{"A alias " + primaryALB}, f.records(t, host)); d != "" {
		t.Fatalf("a refused step changed records (-want +got):\n%s", d)
	}
	// By default only the A alias is required, and the A alias moves.
	out, err := f.c.Apply(ctx, "route53_aliases", f.params(map[string]any{"zone_name": f.domain, "name": host, "alias": drAlias()}))
	if err != nil || fmt.Sprint(out["types"]) != "[A]" {
		t.Fatalf("outputs %v, err %v", out, err)
	}
	if d := cmp.Diff([]string{"A alias " + drALB}, f.records(t, host)); d != "" {
		t.Fatalf("records (-want +got):\n%s", d)
	}
	_, err = f.c.Apply(ctx, "route53_aliases", f.params(map[string]any{"zone_id": f.zone, "name": f.n("nothing"), "alias": drAlias(), "require": []any{}}))
	wantFatal(t, err, "has no A or AAAA alias record to move")
}

// Whatever the action cannot move safely is refused by name, with nothing
// changed.
func TestAliasesRefuseWhatTheyCannotMove(t *testing.T) {
	t.Parallel()
	f := startAliases(t)
	ctx := plugintest.Context(t)
	cases := map[string]struct {
		sets []types.ResourceRecordSet
		want string
	}{
		"plain A": {
			sets: []types.ResourceRecordSet{{Type: types.RRTypeA, TTL: aws.Int64(60), ResourceRecords: []types.ResourceRecord{{Value: aws.String("192.0.2.10")}}}},
			want: "a non-alias A 192.0.2.10 (ttl 60)",
		},
		"alias A beside a plain AAAA": {
			sets: []types.ResourceRecordSet{
				aliasSet("", types.RRTypeA, primaryALB, primaryZID),
				{Type: types.RRTypeAaaa, TTL: aws.Int64(60), ResourceRecords: []types.ResourceRecord{{Value: aws.String("2001:db8::10")}}},
			},
			want: "a non-alias AAAA 2001:db8::10 (ttl 60)",
		},
		"CNAME": {
			sets: []types.ResourceRecordSet{{Type: types.RRTypeCname, TTL: aws.Int64(60), ResourceRecords: []types.ResourceRecord{{Value: aws.String("primary.example.net")}}}},
			want: "a CNAME record (CNAME primary.example.net (ttl 60))",
		},
		"failover": {
			sets: []types.ResourceRecordSet{
				withPolicy(aliasSet("", types.RRTypeA, primaryALB, primaryZID), "primary", func(rs *types.ResourceRecordSet) { rs.Failover = types.ResourceRecordSetFailoverPrimary }),
				withPolicy(aliasSet("", types.RRTypeA, drALB, albZone), "secondary", func(rs *types.ResourceRecordSet) { rs.Failover = types.ResourceRecordSetFailoverSecondary }),
			},
			want: `A record with failover routing (PRIMARY) (set identifier "primary")`,
		},
		"weighted": {
			sets: []types.ResourceRecordSet{withPolicy(aliasSet("", types.RRTypeAaaa, primaryALB, primaryZID), "w1", func(rs *types.ResourceRecordSet) { rs.Weight = aws.Int64(100) })},
			want: `AAAA record with weighted routing (set identifier "w1")`,
		},
	}
	i := 0
	for name, tc := range cases {
		i++
		host := f.n(fmt.Sprintf("h%d", i))
		for _, rs := range tc.sets {
			rs.Name = aws.String(host)
			f.put(t, rs)
		}
		before := f.records(t, host)
		_, err := f.c.Apply(ctx, "route53_aliases", f.params(map[string]any{"zone_id": f.zone, "name": host, "alias": drAlias()}))
		pe := wantFatal(t, err, host+" in hosted zone "+f.zone+" has ", tc.want, "moves simple A/AAAA alias records only")
		if pe.Code != "UnsupportedRecord" {
			t.Errorf("%s: code %s", name, pe.Code)
		}
		if d := cmp.Diff(before, f.records(t, host)); d != "" {
			t.Errorf("%s: records changed (-before +after):\n%s", name, d)
		}
		// Plan refuses the same way, so pre-flight and plan show it.
		if _, err := f.c.PlanParams(ctx, "route53_aliases", f.params(map[string]any{"zone_id": f.zone, "name": host, "alias": drAlias()})); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%s: plan err = %v", name, err)
		}
	}
}

func withPolicy(rs types.ResourceRecordSet, id string, set func(*types.ResourceRecordSet)) types.ResourceRecordSet {
	rs.SetIdentifier = aws.String(id)
	set(&rs)
	return rs
}

func TestAliasesPlan(t *testing.T) {
	t.Parallel()
	f := startAliases(t)
	ctx := plugintest.Context(t)
	host := f.n("spacelift")
	f.put(t, aliasSet(host, types.RRTypeA, primaryALB, primaryZID))
	f.put(t, aliasSet(host, types.RRTypeAaaa, drALB, albZone))
	plan, err := f.c.PlanParams(ctx, "route53_aliases", f.params(map[string]any{"zone_id": f.zone, "name": host, "alias": drAlias()}))
	if err != nil {
		t.Fatal(err)
	}
	if len(plan.Changes) != 2 || plan.Changes[0].Kind != plugin.ChangeUpdate || plan.Changes[1].Kind != plugin.ChangeNoop ||
		plan.Summary != host+": A alias -> "+primaryALB+" (zone "+primaryZID+") -> A alias -> "+drALB+" (zone "+albZone+"); AAAA alias -> "+drALB+" (zone "+albZone+") (unchanged)" {
		t.Fatalf("plan = %+v", plan)
	}
	plan, err = f.c.Plan(ctx, plugin.PlanCall{Action: "route53_aliases", Params: f.params(map[string]any{"zone_id": f.zone, "name": host, "alias": nil}), Unknown: []string{"/alias"}})
	if err != nil || len(plan.Changes) != 2 || !plan.Changes[0].AfterUnknown {
		t.Fatalf("unknown target: plan = %+v, err = %v", plan, err)
	}
	if d := cmp.Diff([]string{"A alias " + primaryALB, "AAAA alias " + drALB}, f.records(t, host)); d != "" {
		t.Fatalf("plan changed records (-want +got):\n%s", d)
	}
}

func TestAliasesValidate(t *testing.T) {
	t.Parallel()
	c := plugintest.Start(t, plugin.Info{Name: "dns"}, AliasesAction())
	ctx := plugintest.Context(t)
	alias := map[string]any{"dns_name": "x", "hosted_zone_id": "Z"}
	cases := map[string]struct {
		params map[string]any
		paths  string
	}{
		"ok":               {map[string]any{"zone_id": "Z", "name": "a.b", "alias": alias, "require": []any{"A", "AAAA"}}, "[]"},
		"restore alone":    {map[string]any{"restore": []any{}}, "[]"},
		"neither":          {map[string]any{"zone_id": "Z", "name": "a.b"}, "[]"},
		"both":             {map[string]any{"zone_id": "Z", "name": "a.b", "alias": alias, "restore": []any{}}, "[]"},
		"no name":          {map[string]any{"zone_id": "Z", "alias": alias}, "[/name]"},
		"no zone":          {map[string]any{"name": "a.b", "alias": alias}, "[]"},
		"require a CNAME":  {map[string]any{"zone_id": "Z", "name": "a.b", "alias": alias, "require": []any{"A", "CNAME"}}, "[/require/1]"},
		"zone id and name": {map[string]any{"zone_id": "Z", "zone_name": "b", "name": "a.b", "alias": alias}, "[/zone_name]"},
	}
	for name, tc := range cases {
		diags, err := c.Validate(ctx, "route53_aliases", tc.params, nil)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, d := range diags {
			paths = append(paths, d.Path)
		}
		wantDiags := tc.paths != "[]" || name == "neither" || name == "both" || name == "no zone"
		if (len(diags) > 0) != wantDiags || (tc.paths != "[]" && fmt.Sprint(paths) != tc.paths) {
			t.Errorf("%s: diags = %+v", name, diags)
		}
	}
}
