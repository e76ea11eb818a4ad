package resolve

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
	"github.com/runbookhq/runbook/sim/dnsserver"
	"github.com/runbookhq/runbook/sim/fakes/cloudflareapi"
)

const (
	zone      = "spacelift.example.com"
	iot       = "worker-iot.spacelift.example.com"
	primaryLB = "primary-alb.eu-west-1.elb.amazonaws.com"
	drLB      = "dr-alb.eu-west-3.elb.amazonaws.com"
	iotOld    = "abc-ats.iot.eu-west-1.amazonaws.com"
	iotNew    = "abc-ats.iot.eu-west-3.amazonaws.com"
)

var lbs = dnsserver.TargetNames{
	primaryLB: {IPv4: []string{"192.0.2.10", "192.0.2.11"}, IPv6: []string{"2001:db8:1::10"}},
	drLB:      {IPv4: []string{"192.0.2.20", "192.0.2.21"}, IPv6: []string{"2001:db8:2::10"}},
}

// provider is a Cloudflare zone (the fake) served by the simulation's DNS
// server, which also answers for the load balancers' names.
type provider struct {
	api  *cloudflareapi.Server
	dns  *dnsserver.Server
	zone string
}

func startProvider(t *testing.T) *provider {
	t.Helper()
	api, err := cloudflareapi.Start("token-0123456789")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = api.Close() })
	p := &provider{api: api, zone: api.AddZone(zone)}
	for name, target := range map[string]string{zone: primaryLB, iot: iotOld} {
		if _, err := api.AddRecord(p.zone, name, "CNAME", target, 60, false); err != nil {
			t.Fatal(err)
		}
	}
	p.dns, err = dnsserver.Start(&dnsserver.Cloudflare{API: api, Targets: dnsserver.StaticTargets(lbs)}, lbs)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.dns.Close() })
	return p
}

func start(t *testing.T) *plugintest.Client {
	return plugintest.Start(t, plugin.Info{Name: "dns", Version: "test"}, Action())
}

func checks(cs ...map[string]any) []any {
	out := []any{}
	for _, c := range cs {
		out = append(out, c)
	}
	return out
}

func TestWaitsUntilEveryServerAnswersTheTarget(t *testing.T) {
	t.Parallel()
	a, b := startProvider(t), startProvider(t) // two name servers of one zone
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	params := map[string]any{
		"checks": checks(
			map[string]any{"name": zone, "address_of": drLB},
			map[string]any{"name": zone, "type": "AAAA", "address_of": drLB},
			map[string]any{"name": iot, "type": "CNAME", "cname": iotNew + "."},
		),
		"nameservers": []any{a.dns.Addr(), b.dns.Addr()}, "resolver": a.dns.Addr(), "poll_interval": "50ms",
	}
	done := make(chan error, 1)
	var out map[string]any
	go func() {
		var err error
		out, err = c.Apply(ctx, "resolve_check", params)
		done <- err
	}()
	time.Sleep(300 * time.Millisecond)
	// One server moves; the other still answers the old targets.
	for _, p := range []*provider{a} {
		must(t, p.api.SetContent(zone, "CNAME", drLB), p.api.SetContent(iot, "CNAME", iotNew))
	}
	time.Sleep(300 * time.Millisecond)
	select {
	case err := <-done:
		t.Fatalf("returned while one server still answers the old targets: %v %v", out, err)
	default:
	}
	must(t, b.api.SetContent(zone, "CNAME", drLB), b.api.SetContent(iot, "CNAME", iotNew))
	if err := <-done; err != nil {
		t.Fatal(err)
	}
	evs := out["evidence"].([]any)
	if len(evs) != 6 || out["rounds"].(float64) < 3 {
		t.Fatalf("outputs = %v", out)
	}
	var got []string
	for _, e := range evs {
		ev := e.(map[string]any)
		if ev["matches"] != true || ev["at"] == "" {
			t.Errorf("evidence %v", ev)
		}
		got = append(got, fmt.Sprint(ev["server"] == a.dns.Addr(), " ", ev["type"], " ", ev["answer"]))
	}
	want := "[true A [A 192.0.2.20 A 192.0.2.21] true AAAA [AAAA 2001:db8:2::10] true CNAME [CNAME " + iotNew + "] " +
		"false A [A 192.0.2.20 A 192.0.2.21] false AAAA [AAAA 2001:db8:2::10] false CNAME [CNAME " + iotNew + "]]"
	if fmt.Sprint(got) != want {
		t.Errorf("evidence\n%v\nwant\n%s", got, want)
	}
	var notYet []string
	for _, p := range c.Progress() {
		if strings.HasPrefix(p.Message, "not yet") {
			notYet = append(notYet, p.Message)
		}
	}
	// First both servers answer the old targets, then only b.
	if len(notYet) != 2 || !strings.Contains(notYet[0], a.dns.Addr()+" answers "+iot+" CNAME: CNAME "+iotOld) ||
		strings.Contains(notYet[1], a.dns.Addr()) || !strings.Contains(notYet[1], b.dns.Addr()+" answers "+zone+" A: A 192.0.2.10, A 192.0.2.11 (want addresses of "+drLB+" (192.0.2.20, 192.0.2.21))") {
		t.Errorf("progress = %q", notYet)
	}
}

func must(t *testing.T, errs ...error) {
	t.Helper()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
}

// On timeout the error says what each server still answers, before the
// step's own deadline cuts it off.
func TestTimeoutNamesWhatServersAnswer(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
	defer cancel()
	_, err := c.Apply(ctx, "resolve_check", map[string]any{
		"checks":      checks(map[string]any{"name": iot, "type": "CNAME", "cname": iotNew}, map[string]any{"name": "nosuch." + zone, "addresses": []any{"192.0.2.1"}}),
		"nameservers": []any{p.dns.Addr()}, "poll_interval": "100ms", "query_timeout": "500ms",
	})
	var pe *plugin.Error
	if !errors.As(err, &pe) || pe.Code != "NotPropagated" || pe.Retryable ||
		!strings.Contains(pe.Message, p.dns.Addr()+" answers "+iot+" CNAME: CNAME "+iotOld+" (want CNAME "+iotNew+")") ||
		!strings.Contains(pe.Message, "nosuch."+zone+" A: NXDOMAIN (want addresses 192.0.2.1)") {
		t.Fatalf("err = %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("the action ran into the deadline instead of stopping before it")
	}
}

// Plan asks once and never waits, even when the answer is not the target yet.
func TestPlanAsksOnce(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	began := time.Now()
	plan, err := c.Plan(ctx, plugin.PlanCall{Action: "resolve_check", Params: map[string]any{
		"checks":      checks(map[string]any{"name": zone, "address_of": drLB}, map[string]any{"name": iot, "type": "CNAME", "cname": nil}),
		"nameservers": []any{p.dns.Addr()}, "resolver": p.dns.Addr(), "poll_interval": "5s",
	}, Unknown: []string{"/checks/1/cname"}})
	if err != nil {
		t.Fatal(err)
	}
	if time.Since(began) > 4*time.Second {
		t.Errorf("plan waited %s", time.Since(began))
	}
	want := "now: " + p.dns.Addr() + " answers " + zone + " A: A 192.0.2.10, A 192.0.2.11 (want addresses of " + drLB + " (192.0.2.20, 192.0.2.21)); known at run time: " + iot
	if !strings.Contains(plan.Summary, want) {
		t.Fatalf("plan summary = %q\nwant it to contain %q", plan.Summary, want)
	}
}

func TestValidate(t *testing.T) {
	t.Parallel()
	c := start(t)
	ctx := plugintest.Context(t)
	cases := map[string]struct {
		params map[string]any
		paths  string
	}{
		"ok":            {map[string]any{"checks": checks(map[string]any{"name": "a.b", "cname": "c.d", "type": "CNAME"})}, "[]"},
		"no checks":     {map[string]any{"checks": checks()}, "[/checks]"},
		"two expects":   {map[string]any{"checks": checks(map[string]any{"name": "a.b", "cname": "c.d", "address_of": "x"})}, "[/checks/0]"},
		"none":          {map[string]any{"checks": checks(map[string]any{"name": "a.b"})}, "[/checks/0]"},
		"bad address":   {map[string]any{"checks": checks(map[string]any{"name": "a.b", "addresses": []any{"192.0.2.300"}})}, "[/checks/0/addresses/0]"},
		"CNAME and ips": {map[string]any{"checks": checks(map[string]any{"name": "a.b", "type": "CNAME", "addresses": []any{"192.0.2.1"}})}, "[/checks/0/type]"},
	}
	for name, tc := range cases {
		diags, err := c.Validate(ctx, "resolve_check", tc.params, nil)
		if err != nil {
			t.Fatal(err)
		}
		var paths []string
		for _, d := range diags {
			paths = append(paths, d.Path)
		}
		if got := fmt.Sprint(paths); got != tc.paths && !(tc.paths == "[]" && len(paths) == 0) {
			t.Errorf("%s: diagnostics %+v, want paths %s", name, diags, tc.paths)
		}
	}
}

// address_of also accepts a CNAME to the load balancer's name (a DNS-only
// record below the apex), with or without the dualstack. prefix, and nothing
// else.
func TestAddressOfAcceptsACNAMEToTheTarget(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	if _, err := p.api.AddRecord(p.zone, "app."+zone, "CNAME", "dualstack."+drLB, 60, false); err != nil {
		t.Fatal(err)
	}
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	params := func(target string) map[string]any {
		return map[string]any{"checks": checks(map[string]any{"name": "app." + zone, "address_of": target}),
			"nameservers": []any{p.dns.Addr()}, "resolver": p.dns.Addr(), "poll_interval": "100ms"}
	}
	out, err := c.Apply(ctx, "resolve_check", params(drLB))
	if err != nil || out["rounds"].(float64) != 1 {
		t.Fatalf("a CNAME to the load balancer: %v, %v", out, err)
	}
	short, cancel2 := context.WithTimeout(context.Background(), 1500*time.Millisecond)
	defer cancel2()
	if _, err := c.Apply(short, "resolve_check", params(primaryLB)); err == nil || !strings.Contains(err.Error(), "CNAME dualstack."+drLB) {
		t.Fatalf("a CNAME to another load balancer: %v", err)
	}
}

// max_wait bounds the wait below the step's timeout: the failure comes after
// it, naming what the servers answer.
func TestMaxWaitBoundsTheWait(t *testing.T) {
	t.Parallel()
	p := startProvider(t)
	c := start(t)
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	start := time.Now()
	_, err := c.Apply(ctx, "resolve_check", map[string]any{
		"checks":      checks(map[string]any{"name": iot, "type": "CNAME", "cname": iotNew}),
		"nameservers": []any{p.dns.Addr()}, "poll_interval": "100ms", "query_timeout": "500ms", "max_wait": "1s",
	})
	took := time.Since(start)
	var pe *plugin.Error
	if !errors.As(err, &pe) || pe.Code != "NotPropagated" || !strings.Contains(pe.Message, "CNAME "+iotOld) {
		t.Fatalf("err = %v", err)
	}
	// It gives up when the next round would end past max_wait: within one
	// poll interval before it.
	if took < 800*time.Millisecond || took > 5*time.Second {
		t.Fatalf("gave up after %s, want about max_wait (1s)", took)
	}
}
