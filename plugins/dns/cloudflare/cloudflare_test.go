package cloudflare

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
	"github.com/runbookhq/runbook/sim/fakes/cloudflareapi"
)

// harness runs the action over the real plugin protocol and keeps the
// plugin's logs and progress, so tests can look for the token.
type harness struct {
	*plugin.Client
	mu       sync.Mutex
	logs     bytes.Buffer
	progress []plugin.Progress
}

func (h *harness) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.Write(p)
}

func start(t *testing.T) *harness {
	t.Helper()
	h := &harness{}
	srv, err := plugin.NewServer(plugin.Info{Name: "dns", Version: "test"}, Action(), CheckAction())
	if err != nil {
		t.Fatal(err)
	}
	srv.SetLogger(hclog.New(&hclog.LoggerOptions{Name: "dns", Output: io.MultiWriter(h, testLog{t}), Level: hclog.Trace}))
	gc, gs := goplugin.TestPluginGRPCConn(t, false, goplugin.PluginSet{plugin.PluginName: &plugin.GRPCPlugin{Impl: srv}})
	// Stop the server before closing the client: closing first asks the
	// server to stop itself, which races with gs.Stop (go-plugin v1.8.0).
	t.Cleanup(func() { gs.Stop(); _ = gc.Close() })
	raw, err := gc.Dispense(plugin.PluginName)
	if err != nil {
		t.Fatal(err)
	}
	h.Client = raw.(*plugin.Client)
	return h
}

type testLog struct{ t *testing.T }

func (w testLog) Write(p []byte) (int, error) {
	defer func() { _ = recover() }()
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

func (h *harness) apply(ctx context.Context, params map[string]any) (map[string]any, error) {
	return h.applyAction(ctx, "cloudflare_record", params)
}

func (h *harness) applyAction(ctx context.Context, action string, params map[string]any) (map[string]any, error) {
	return h.Client.Apply(ctx, plugin.ApplyCall{RunID: "run-1", StepID: "dns_server", Action: action, Attempt: 1,
		IdempotencyKey: "run-1/dns_server", Params: params}, func(p plugin.Progress) {
		h.mu.Lock()
		h.progress = append(h.progress, p)
		h.mu.Unlock()
	})
}

func (h *harness) plan(ctx context.Context, params map[string]any, unknown ...string) (*plugin.Plan, error) {
	return h.Client.Plan(ctx, plugin.PlanCall{Action: "cloudflare_record", Params: params, Unknown: unknown})
}

func (h *harness) everything() string {
	h.mu.Lock()
	defer h.mu.Unlock()
	var b strings.Builder
	b.WriteString(h.logs.String())
	for _, p := range h.progress {
		fmt.Fprintf(&b, "%s %v\n", p.Message, p.Fields)
	}
	return b.String()
}

func (f *fakeAPI) params(extra map[string]any) map[string]any {
	p := map[string]any{"zone": zoneName, "name": serverHost, "api_token": testToken, "base_url": f.baseURL()}
	for k, v := range extra {
		p[k] = v
	}
	return p
}

func pluginError(t *testing.T, err error) *plugin.Error {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *plugin.Error", err, err)
	}
	return pe
}

// record decodes an output record.
func record(t *testing.T, v any) Record {
	t.Helper()
	b, _ := json.Marshal(v)
	var r Record
	if err := json.Unmarshal(b, &r); err != nil {
		t.Fatal(err)
	}
	return r
}

func TestUpdateExistingRecordAndRollBack(t *testing.T) {
	f := newFakeAPI(t)
	orig := f.add(t, serverHost, "CNAME", primaryLB, 60, false)
	f.add(t, "worker-iot."+zoneName, "CNAME", "iot-primary.example.com", 60, false)
	h := start(t)
	ctx := plugintest.Context(t)

	out, err := h.apply(ctx, f.params(map[string]any{"content": drLB}))
	if err != nil {
		t.Fatal(err)
	}
	prev := record(t, out["previous"])
	want := Record{Exists: true, ZoneID: zoneID, ID: orig.ID, Name: serverHost, Type: "CNAME", Content: primaryLB, TTL: 60}
	if prev != want {
		t.Fatalf("previous = %+v\nwant %+v", prev, want)
	}
	if out["changed"] != true || record(t, out["record"]).Content != drLB {
		t.Fatalf("outputs = %v", out)
	}
	recs := f.at(serverHost)
	if len(recs) != 1 || recs[0].ID != orig.ID || recs[0].Content != drLB || recs[0].TTL != 60 ||
		recs[0].Comment == nil || *recs[0].Comment != "managed by hand" || fmt.Sprint(recs[0].Tags) != "[team:platform]" {
		t.Fatalf("record after update = %+v (the PATCH must keep id, TTL, comment and tags)", recs)
	}
	if got := fmt.Sprint(f.mutations()); got != "[PATCH /zones/"+zoneID+"/dns_records/"+orig.ID+"]" {
		t.Fatalf("mutations = %s", got)
	}
	if f.at("worker-iot." + zoneName)[0].Content != "iot-primary.example.com" {
		t.Fatal("another record changed")
	}
	if !strings.Contains(h.everything(), "current record: CNAME "+primaryLB+" (ttl 60)") {
		t.Errorf("the previous record was not reported before the change:\n%s", h.everything())
	}

	// Idempotent: the same step again changes nothing.
	out, err = h.apply(ctx, f.params(map[string]any{"content": drLB}))
	if err != nil || out["changed"] != false || len(f.mutations()) != 1 {
		t.Fatalf("second apply: %v %v, mutations %v", out, err, f.mutations())
	}

	// Rollback: restore the first step's previous record.
	out, err = h.apply(ctx, map[string]any{"restore": prev, "api_token": testToken, "base_url": f.baseURL()})
	if err != nil {
		t.Fatal(err)
	}
	if recs := f.at(serverHost); len(recs) != 1 || recs[0].Content != primaryLB || out["changed"] != true {
		t.Fatalf("after restore: %+v, outputs %v", recs, out)
	}
	assertNoToken(t, h, out, nil)
}

func TestCreateMissingRecordAndRollBackDeletes(t *testing.T) {
	f := newFakeAPI(t)
	h := start(t)
	ctx := plugintest.Context(t)
	out, err := h.apply(ctx, f.params(map[string]any{"name": "worker-iot.myorg.com.", "content": "iot-dr.example.com", "ttl": 120}))
	if err != nil {
		t.Fatal(err)
	}
	prev := record(t, out["previous"])
	if prev.Exists || prev.Name != "worker-iot.myorg.com" || prev.Type != "CNAME" || prev.ZoneID != zoneID {
		t.Fatalf("previous = %+v", prev)
	}
	recs := f.at("worker-iot.myorg.com")
	if len(recs) != 1 || recs[0].Content != "iot-dr.example.com" || recs[0].TTL != 120 || recs[0].Proxied ||
		recs[0].Comment == nil || *recs[0].Comment != "created by runbook run run-1 step dns_server" {
		t.Fatalf("created = %+v", recs)
	}
	if got := fmt.Sprint(f.mutations()); got != "[POST /zones/"+zoneID+"/dns_records]" {
		t.Fatalf("mutations = %s", got)
	}
	// Restoring "did not exist" deletes the record the step created.
	out, err = h.apply(ctx, map[string]any{"restore": prev, "api_token": testToken, "base_url": f.baseURL()})
	if err != nil {
		t.Fatal(err)
	}
	if len(f.at("worker-iot.myorg.com")) != 0 || out["changed"] != true || record(t, out["record"]).Exists {
		t.Fatalf("after restore: %+v, outputs %v", f.at("worker-iot.myorg.com"), out)
	}
	// And again: nothing left to delete.
	out, err = h.apply(ctx, map[string]any{"restore": prev, "api_token": testToken, "base_url": f.baseURL()})
	if err != nil || out["changed"] != false {
		t.Fatalf("second restore: %v %v", out, err)
	}
}

func TestReplaceARecordWithCNAMEByZoneIDAndTokenFromEnv(t *testing.T) {
	f := newFakeAPI(t)
	old := f.add(t, serverHost, "A", "203.0.113.10", 1, true) // proxied: TTL automatic
	t.Setenv("CLOUDFLARE_API_TOKEN", testToken)
	h := start(t)
	p := f.params(map[string]any{"zone": zoneID, "content": drLB, "proxied": false, "ttl": 60})
	delete(p, "api_token")
	out, err := h.apply(plugintest.Context(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if prev := record(t, out["previous"]); prev.Type != "A" || prev.Content != "203.0.113.10" || !prev.Proxied || prev.TTL != 1 {
		t.Fatalf("previous = %+v", prev)
	}
	recs := f.at(serverHost)
	if len(recs) != 1 || recs[0].ID != old.ID || recs[0].Type != "CNAME" || recs[0].Content != drLB || recs[0].Proxied || recs[0].TTL != 60 {
		t.Fatalf("records = %+v", recs)
	}
	if got := fmt.Sprint(f.requests()[0]); got != "GET /zones/"+zoneID {
		t.Fatalf("zone lookup by id: first request %s", got)
	}
}

func TestKeepsTTLAndProxiedWhenNotGiven(t *testing.T) {
	f := newFakeAPI(t)
	f.add(t, serverHost, "CNAME", primaryLB, 1, true)
	h := start(t)
	out, err := h.apply(plugintest.Context(t), f.params(map[string]any{"content": drLB}))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.at(serverHost)[0]; !r.Proxied || r.TTL != 1 || r.Content != drLB {
		t.Fatalf("record = %+v", r)
	}
	if r := record(t, out["record"]); !r.Proxied || r.TTL != 1 {
		t.Fatalf("record output = %+v", r)
	}
}

func TestDeleteRecord(t *testing.T) {
	f := newFakeAPI(t)
	f.add(t, serverHost, "CNAME", primaryLB, 60, false)
	h := start(t)
	out, err := h.apply(plugintest.Context(t), f.params(map[string]any{"delete": true, "type": "CNAME"}))
	if err != nil {
		t.Fatal(err)
	}
	if len(f.at(serverHost)) != 0 || !record(t, out["previous"]).Exists || record(t, out["record"]).Exists {
		t.Fatalf("records %+v, outputs %v", f.at(serverHost), out)
	}
}

func TestFailures(t *testing.T) {
	type failure func(w http.ResponseWriter, r *http.Request, n int) bool
	always := func(status int, body string, hdr map[string]string) failure {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			for k, v := range hdr {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return true
		}
	}
	onMutation := func(inner failure) failure {
		return func(w http.ResponseWriter, r *http.Request, n int) bool {
			return r.Method != http.MethodGet && inner(w, r, n)
		}
	}
	cases := map[string]struct {
		params    map[string]any
		fail      failure
		retryable bool
		code      string
		contains  string
		requests  int // 0: do not check
		// retryAfter: the wait the error passes on (the last answer's
		// Retry-After).
		retryAfter time.Duration
	}{
		"bad token": {
			params: map[string]any{"api_token": "wrong-token-value"}, code: "Unauthorized",
			contains: "looking up zone myorg.com: Cloudflare rejected the API token (code 9109: Invalid access token)", requests: 1,
		},
		"token without permission": {
			fail: onMutation(always(403, `{"success":false,"errors":[{"code":10000,"message":"Authentication error"}],"messages":[],"result":null}`, map[string]string{"Content-Type": "application/json"})),
			code: "Unauthorized", contains: "code 10000: Authentication error",
		},
		"missing zone by name": {
			params: map[string]any{"zone": "nosuch.example", "name": "a.nosuch.example"}, code: "NoSuchZone",
			contains: "no zone named nosuch.example",
		},
		"missing zone by id": {
			params: map[string]any{"zone": "ffffffffffffffffffffffffffffffff"}, code: "NoSuchZone",
			contains: "zone ffffffffffffffffffffffffffffffff not found",
		},
		"name outside the zone": {
			params: map[string]any{"name": "spacelift.other.example"}, code: "NameOutsideZone",
			contains: "spacelift.other.example is not in zone myorg.com",
		},
		"rate limited": {
			params: map[string]any{"max_retries": 2},
			fail: always(429, `{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[],"result":null}`,
				map[string]string{"Content-Type": "application/json", "Retry-After": "0"}),
			retryable: true, code: "RateLimited", contains: "code 971: Please wait", requests: 3,
		},
		"rate limited, asking for a wait": {
			params: map[string]any{"max_retries": 0},
			fail: always(429, `{"success":false,"errors":[{"code":971,"message":"Please wait and consider throttling your request speed"}],"messages":[],"result":null}`,
				map[string]string{"Content-Type": "application/json", "Retry-After": "7"}),
			retryable: true, code: "RateLimited", contains: "code 971: Please wait", requests: 1, retryAfter: 7 * time.Second,
		},
		"server error with an HTML body": {
			params:    map[string]any{"max_retries": 1},
			fail:      onMutation(always(502, "<html><body>502 Bad Gateway</body></html>", map[string]string{"Content-Type": "text/html", "Retry-After": "0"})),
			retryable: true, code: "ServerError", contains: "HTTP 502 Bad Gateway",
		},
		"server error": {
			params:    map[string]any{"max_retries": 0},
			fail:      always(500, `{"success":false,"errors":[{"code":10001,"message":"Internal error"}],"messages":[],"result":null}`, map[string]string{"Content-Type": "application/json"}),
			retryable: true, code: "ServerError", contains: "code 10001: Internal error", requests: 1,
		},
		"invalid content for Cloudflare": {
			params:   map[string]any{"ttl": 45},
			code:     "Rejected",
			contains: "code 9021: Invalid TTL",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeAPI(t)
			f.add(t, serverHost, "CNAME", primaryLB, 60, false)
			f.SetFailureHook(cloudflareapi.FailureHook(tc.fail))
			h := start(t)
			p := f.params(map[string]any{"content": drLB})
			for k, v := range tc.params {
				p[k] = v
			}
			out, err := h.apply(plugintest.Context(t), p)
			pe := pluginError(t, err)
			if pe.Retryable != tc.retryable || pe.Code != tc.code || !strings.Contains(pe.Message, tc.contains) {
				t.Fatalf("err = %+v\nwant code %s retryable %v containing %q", pe, tc.code, tc.retryable, tc.contains)
			}
			if pe.RetryAfter != tc.retryAfter {
				t.Errorf("retry after %s, want %s", pe.RetryAfter, tc.retryAfter)
			}
			if tc.requests > 0 && len(f.requests()) != tc.requests {
				t.Errorf("requests = %v, want %d", f.requests(), tc.requests)
			}
			if r := f.at(serverHost); len(r) != 1 || r[0].Content != primaryLB {
				t.Errorf("a failed step changed the record: %+v", r)
			}
			assertNoToken(t, h, out, err)
		})
	}
}

func TestRetriesThenSucceeds(t *testing.T) {
	f := newFakeAPI(t)
	f.add(t, serverHost, "CNAME", primaryLB, 60, false)
	patches := 0
	f.SetFailureHook(func(w http.ResponseWriter, r *http.Request, _ int) bool {
		if r.Method != http.MethodPatch {
			return false
		}
		patches++
		if patches > 2 {
			return false
		}
		w.Header().Set("Retry-After", "0")
		cloudflareapi.WriteError(w, 429, 971, "Please wait and consider throttling your request speed")
		return true
	})
	h := start(t)
	out, err := h.apply(plugintest.Context(t), f.params(map[string]any{"content": drLB}))
	if err != nil {
		t.Fatal(err)
	}
	if out["changed"] != true || f.at(serverHost)[0].Content != drLB || patches != 3 {
		t.Fatalf("outputs %v, patches %d", out, patches)
	}
	if n := strings.Count(h.everything(), "Cloudflare answered HTTP 429; the SDK retries"); n != 2 {
		t.Errorf("retry progress events = %d:\n%s", n, h.everything())
	}
}

func TestConflictingRecordsAreRefused(t *testing.T) {
	f := newFakeAPI(t)
	f.add(t, serverHost, "A", "203.0.113.10", 60, false)
	f.add(t, serverHost, "A", "203.0.113.11", 60, false)
	h := start(t)
	_, err := h.apply(plugintest.Context(t), f.params(map[string]any{"content": drLB}))
	pe := pluginError(t, err)
	if pe.Code != "ConflictingRecords" || pe.Retryable || !strings.Contains(pe.Message, "has 2 records a CNAME record replaces") {
		t.Fatalf("err = %+v", pe)
	}
	if len(f.mutations()) != 0 {
		t.Fatalf("mutations = %v", f.mutations())
	}
}

func TestUnreachableAPIIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := start(t)
	_, err = h.apply(plugintest.Context(t), map[string]any{"zone": zoneName, "name": serverHost, "content": drLB,
		"api_token": testToken, "base_url": "http://" + addr + "/client/v4", "max_retries": 0})
	pe := pluginError(t, err)
	if !pe.Retryable || pe.Code != "Unreachable" {
		t.Fatalf("err = %+v", pe)
	}
}

func assertNoToken(t *testing.T, h *harness, out map[string]any, err error) {
	t.Helper()
	ob, _ := json.Marshal(out)
	text := string(ob) + "\n" + h.everything()
	if err != nil {
		text += "\n" + err.Error()
	}
	for _, tok := range []string{testToken, "wrong-token-value"} {
		if strings.Contains(text, tok) {
			t.Errorf("the API token appears in outputs, logs, progress or the error:\n%s", text)
		}
	}
}

func TestPlan(t *testing.T) {
	f := newFakeAPI(t)
	f.add(t, serverHost, "CNAME", primaryLB, 60, false)
	h := start(t)
	ctx := plugintest.Context(t)

	plan, err := h.plan(ctx, f.params(map[string]any{"content": drLB}))
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary != serverHost+": CNAME "+primaryLB+" (ttl 60) -> CNAME "+drLB+" (ttl 60)" || len(plan.Changes) != 1 {
		t.Fatalf("plan = %+v", plan)
	}
	c := plan.Changes[0]
	before, after := record(t, c.Before), record(t, c.After)
	if c.Kind != plugin.ChangeUpdate || before.Content != primaryLB || after.Content != drLB || c.Resource != "cloudflare record CNAME "+serverHost+" (zone myorg.com)" {
		t.Fatalf("change = %+v", c)
	}

	cases := map[string]struct {
		params  map[string]any
		unknown []string
		kind    string
	}{
		"noop":           {params: map[string]any{"content": primaryLB}, kind: plugin.ChangeNoop},
		"create":         {params: map[string]any{"name": "new.myorg.com", "content": drLB}, kind: plugin.ChangeCreate},
		"delete":         {params: map[string]any{"delete": true, "type": "CNAME"}, kind: plugin.ChangeDelete},
		"replace":        {params: map[string]any{"type": "A", "content": "192.0.2.7"}, kind: plugin.ChangeReplace},
		"unknown target": {params: map[string]any{"content": nil}, unknown: []string{"/content"}, kind: plugin.ChangeUpdate},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			plan, err := h.plan(ctx, f.params(tc.params), tc.unknown...)
			if err != nil {
				t.Fatal(err)
			}
			if plan.Changes[0].Kind != tc.kind || (tc.unknown != nil) != plan.Changes[0].AfterUnknown {
				t.Fatalf("plan = %+v", plan)
			}
		})
	}
	if len(f.mutations()) != 0 {
		t.Fatalf("plan changed something: %v", f.mutations())
	}
	_, err = h.plan(ctx, f.params(map[string]any{"content": drLB, "api_token": "wrong-token-value"}))
	if err == nil || !strings.Contains(err.Error(), "Cloudflare rejected the API token") || strings.Contains(err.Error(), "wrong-token-value") {
		t.Fatalf("plan with a bad token: %v", err)
	}
}

func TestValidate(t *testing.T) {
	h := start(t)
	ctx := plugintest.Context(t)
	cases := map[string]struct {
		params  map[string]any
		unknown []string
		paths   string
		modes   bool // expect the one root diagnostic "give exactly one of ..."
	}{
		"content":                {params: map[string]any{"zone": zoneName, "name": serverHost, "content": drLB}, paths: "[]"},
		"nothing to do":          {params: map[string]any{"zone": zoneName, "name": serverHost}, paths: "[]", modes: true},
		"content and delete":     {params: map[string]any{"zone": zoneName, "name": serverHost, "content": drLB, "delete": true, "type": "CNAME"}, paths: "[]", modes: true},
		"delete without type":    {params: map[string]any{"zone": zoneName, "name": serverHost, "delete": true}, paths: "[/type]"},
		"missing zone and name":  {params: map[string]any{"content": drLB}, paths: "[/name /zone]"},
		"restore alone":          {params: map[string]any{"restore": map[string]any{"exists": false, "zone_id": zoneID, "name": serverHost, "type": "CNAME", "proxied": false}}, paths: "[]"},
		"A with a host name":     {params: map[string]any{"zone": zoneName, "name": serverHost, "type": "A", "content": drLB}, paths: "[/content]"},
		"CNAME with an address":  {params: map[string]any{"zone": zoneName, "name": serverHost, "content": "192.0.2.1"}, paths: "[/content]"},
		"ttl out of range":       {params: map[string]any{"zone": zoneName, "name": serverHost, "content": drLB, "ttl": 5}, paths: "[/ttl]"},
		"proxied with a ttl":     {params: map[string]any{"zone": zoneName, "name": serverHost, "content": drLB, "ttl": 60, "proxied": true}, paths: "[]"},
		"remote http base_url":   {params: map[string]any{"zone": zoneName, "name": serverHost, "content": drLB, "base_url": "http://api.example.com/v4"}, paths: "[/base_url]"},
		"unknown content is ok":  {params: map[string]any{"zone": zoneName, "name": serverHost, "content": nil}, unknown: []string{"/content"}, paths: "[]"},
		"bad type":               {params: map[string]any{"zone": zoneName, "name": serverHost, "content": drLB, "type": "MX"}, paths: "[/type]"},
		"token is a secret only": {params: map[string]any{"zone": zoneName, "name": serverHost, "content": drLB, "api_token": 3}, paths: "[/api_token]"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			diags, err := h.Validate(ctx, "cloudflare_record", tc.params, tc.unknown)
			if err != nil {
				t.Fatal(err)
			}
			paths := []string{}
			for _, d := range diags {
				paths = append(paths, d.Path)
			}
			got := fmt.Sprint(paths)
			if tc.modes {
				if len(diags) != 1 || diags[0].Path != "" || !strings.Contains(diags[0].Summary, "exactly one of content, delete") {
					t.Fatalf("diagnostics = %+v", diags)
				}
				return
			}
			if got != tc.paths {
				t.Fatalf("diagnostics = %+v, want paths %s", diags, tc.paths)
			}
		})
	}
}

func TestDescribe(t *testing.T) {
	h := start(t)
	d, err := h.Describe(plugintest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := d.Action("cloudflare_record")
	if !ok || !a.Idempotent || !a.SupportsPlan || fmt.Sprint(a.Params.SecretPaths()) != "[/api_token]" {
		t.Fatalf("spec = %+v", a)
	}
}

// A proxied record's TTL is automatic: the step's ttl is not refused but not
// sent either (TTL 1 goes to the API), and the run says so.
func TestProxiedRecordGetsAutomaticTTL(t *testing.T) {
	f := newFakeAPI(t)
	f.add(t, serverHost, "CNAME", primaryLB, 300, false)
	h := start(t)
	out, err := h.apply(plugintest.Context(t), f.params(map[string]any{"content": drLB, "proxied": true, "ttl": 60}))
	if err != nil {
		t.Fatal(err)
	}
	if r := f.at(serverHost); len(r) != 1 || !r[0].Proxied || r[0].TTL != 1 || r[0].Content != drLB {
		t.Fatalf("record = %+v, want proxied with TTL 1", r)
	}
	if r := record(t, out["record"]); !r.Proxied || r.TTL != 1 {
		t.Fatalf("record output = %+v", r)
	}
	muts := f.Mutations()
	if len(muts) != 1 || !strings.Contains(muts[0].Body, `"ttl":1`) || !strings.Contains(muts[0].Body, `"proxied":true`) {
		t.Fatalf("sent %+v, want TTL 1 and proxied in the one PATCH", muts)
	}
	if !strings.Contains(h.everything(), "the record is proxied: its TTL is automatic (1), ttl 60 is not used") {
		t.Errorf("the unused ttl was not reported:\n%s", h.everything())
	}
	// Back to DNS only with the TTL asked for.
	if _, err := h.apply(plugintest.Context(t), f.params(map[string]any{"content": drLB, "proxied": false, "ttl": 60})); err != nil {
		t.Fatal(err)
	}
	if r := f.at(serverHost); r[0].Proxied || r[0].TTL != 60 {
		t.Fatalf("record = %+v, want DNS only with TTL 60", r)
	}
}

func TestRecordCheck(t *testing.T) {
	f := newFakeAPI(t)
	iot := "worker-iot." + zoneName
	f.add(t, serverHost, "CNAME", primaryLB, 1, true)
	f.add(t, iot, "CNAME", "abc-ats.iot.eu-west-1.amazonaws.com", 60, false)
	h := start(t)
	ctx := plugintest.Context(t)
	check := func(extra map[string]any) (map[string]any, error) {
		p := f.params(extra)
		return h.applyAction(ctx, "cloudflare_record_check", p)
	}

	// A DNS-only IoT record passes and is reported.
	out, err := check(map[string]any{"name": iot, "dns_only": true})
	if err != nil {
		t.Fatal(err)
	}
	if r := record(t, out["record"]); out["exists"] != true || out["proxied"] != false || r.Content != "abc-ats.iot.eu-west-1.amazonaws.com" || r.Proxied {
		t.Fatalf("outputs = %v", out)
	}

	// The same record proxied is refused, with the reason, before anything changes.
	if _, err := h.apply(ctx, f.params(map[string]any{"name": iot, "content": "abc-ats.iot.eu-west-1.amazonaws.com", "proxied": true})); err != nil {
		t.Fatal(err)
	}
	before := len(f.Mutations())
	_, err = check(map[string]any{"name": iot, "dns_only": true})
	pe := pluginError(t, err)
	if pe.Code != "ProxiedRecord" || pe.Retryable || !strings.Contains(pe.Message, iot+" in zone myorg.com is proxied by Cloudflare") ||
		!strings.Contains(pe.Message, "MQTT") || !strings.Contains(pe.Message, "DNS only") {
		t.Fatalf("err = %+v", pe)
	}
	if len(f.Mutations()) != before {
		t.Fatalf("the check changed something: %v", f.mutations())
	}
	// With its own reason.
	_, err = check(map[string]any{"name": iot, "dns_only": true, "reason": "clients pin the origin certificate"})
	if pe := pluginError(t, err); !strings.Contains(pe.Message, "clients pin the origin certificate") {
		t.Fatalf("err = %+v", pe)
	}

	// A proxied server record is fine without dns_only.
	out, err = check(map[string]any{"type": "CNAME"})
	if err != nil || out["proxied"] != true {
		t.Fatalf("server record: %v, %v", out, err)
	}

	// A missing record: refused, or reported with must_exist false.
	_, err = check(map[string]any{"name": "nothing." + zoneName})
	if pe := pluginError(t, err); pe.Code != "NoSuchRecord" || !strings.Contains(pe.Message, "nothing.myorg.com has no CNAME/A/AAAA record") {
		t.Fatalf("err = %+v", pe)
	}
	out, err = check(map[string]any{"name": "nothing." + zoneName, "must_exist": false})
	if err != nil || out["exists"] != false {
		t.Fatalf("must_exist false: %v, %v", out, err)
	}
	assertNoToken(t, h, out, err)

	// Described as read-only, so plan runs it as a pre-flight read.
	d, err := h.Describe(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if a, ok := d.Action("cloudflare_record_check"); !ok || !a.ReadOnly || fmt.Sprint(a.Params.SecretPaths()) != "[/api_token]" {
		t.Fatalf("spec = %+v", a)
	}
}
