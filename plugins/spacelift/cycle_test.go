package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

const (
	keyID     = "01HKEYID0000000000000000"
	keySecret = "s3cr3t-api-key-secret-value"
	poolID    = "01HPOOL00000000000000000"
)

// fakeSpacelift speaks the two GraphQL operations the plugin uses, the way
// Spacelift's /graphql endpoint does, and checks their shape and auth.
type fakeSpacelift struct {
	t   *testing.T
	srv *httptest.Server
	jwt string

	mu    sync.Mutex
	calls []string // operation names seen, in order
	// override, if set, answers instead of the default behaviour; ok=false
	// falls through to it.
	override func(op string, w http.ResponseWriter, r *http.Request, vars map[string]any) bool
}

func newFakeSpacelift(t *testing.T, tls bool) *fakeSpacelift {
	f := &fakeSpacelift{t: t, jwt: "eyJhbGciOi.fake-jwt-payload.signature"}
	h := http.HandlerFunc(f.serve)
	if tls {
		f.srv = httptest.NewTLSServer(h)
	} else {
		f.srv = httptest.NewServer(h)
	}
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeSpacelift) endpoint() string { return f.srv.URL + "/graphql" }

func (f *fakeSpacelift) ops() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.calls...)
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// compact collapses whitespace so query checks do not depend on layout.
func compact(q string) string { return strings.Join(strings.Fields(q), " ") }

func (f *fakeSpacelift) serve(w http.ResponseWriter, r *http.Request) {
	if r.URL.Path != "/graphql" {
		http.NotFound(w, r)
		return
	}
	if r.Method != http.MethodPost || !strings.HasPrefix(r.Header.Get("Content-Type"), "application/json") {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []any{map[string]any{"message": "POST application/json only"}}})
		return
	}
	var body struct {
		Query         string         `json:"query"`
		OperationName string         `json:"operationName"`
		Variables     map[string]any `json:"variables"`
	}
	if err := json.NewDecoder(r.Body).Decode(&body); err != nil {
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []any{map[string]any{"message": "bad JSON"}}})
		return
	}
	q := compact(body.Query)
	var op string
	switch {
	case strings.Contains(q, "apiKeyUser"):
		op = "apiKeyUser"
		if !strings.HasPrefix(q, "mutation ") || !strings.Contains(q, "($id: ID!, $secret: String!)") ||
			!strings.Contains(q, "apiKeyUser(id: $id, secret: $secret) { jwt }") {
			f.t.Errorf("apiKeyUser query has the wrong shape: %q", q)
		}
		if r.Header.Get("Authorization") != "" {
			f.t.Errorf("the token exchange must not carry an Authorization header")
		}
	case strings.Contains(q, "workerPoolCycle"):
		op = "workerPoolCycle"
		if !strings.HasPrefix(q, "mutation ") || !strings.Contains(q, "($id: ID!)") || !strings.Contains(q, "workerPoolCycle(id: $id)") {
			f.t.Errorf("workerPoolCycle query has the wrong shape: %q", q)
		}
	default:
		f.t.Errorf("unexpected query %q", q)
		writeJSON(w, http.StatusBadRequest, map[string]any{"errors": []any{map[string]any{"message": "unknown operation"}}})
		return
	}
	if body.OperationName == "" || !strings.Contains(q, body.OperationName) {
		f.t.Errorf("operationName %q does not name the operation in %q", body.OperationName, q)
	}
	f.mu.Lock()
	f.calls = append(f.calls, op)
	f.mu.Unlock()
	if f.override != nil && f.override(op, w, r, body.Variables) {
		return
	}
	switch op {
	case "apiKeyUser":
		if body.Variables["id"] != keyID || body.Variables["secret"] != keySecret {
			// What Spacelift does for a wrong key: no user, and an error.
			writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"apiKeyUser": nil},
				"errors": []any{map[string]any{"message": "unauthorized", "path": []any{"apiKeyUser"}}}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"apiKeyUser": map[string]any{"jwt": f.jwt}}})
	case "workerPoolCycle":
		if r.Header.Get("Authorization") != "Bearer "+f.jwt {
			writeJSON(w, http.StatusOK, map[string]any{"data": nil,
				"errors": []any{map[string]any{"message": "unauthorized", "path": []any{"workerPoolCycle"}}}})
			return
		}
		if body.Variables["id"] != poolID {
			writeJSON(w, http.StatusOK, map[string]any{"data": nil,
				"errors": []any{map[string]any{"message": fmt.Sprintf("worker pool %v not found", body.Variables["id"]), "path": []any{"workerPoolCycle"}}}})
			return
		}
		writeJSON(w, http.StatusOK, map[string]any{"data": map[string]any{"workerPoolCycle": true}})
	}
}

func cycleParamsFor(f *fakeSpacelift) map[string]any {
	return map[string]any{
		"worker_pool_id": poolID,
		"endpoint":       f.endpoint(),
		"api_key_id":     keyID,
		"api_key_secret": keySecret,
	}
}

func assertNoSecret(t *testing.T, h *harness, out map[string]any, err error, secrets ...string) {
	t.Helper()
	ob, _ := json.Marshal(out)
	places := map[string]string{"outputs": string(ob), "logs and progress": h.everything()}
	if err != nil {
		places["error"] = err.Error()
	}
	for where, text := range places {
		for _, s := range secrets {
			if strings.Contains(text, s) {
				t.Errorf("%s contain the secret %q:\n%s", where, s, text)
			}
		}
	}
}

func TestCycleWorkerPool(t *testing.T) {
	f := newFakeSpacelift(t, false)
	h := start(t, cycleAction())
	before := time.Now().UTC().Add(-time.Second)
	out, err := h.apply(plugintest.Context(t), "worker_pool_cycle", cycleParamsFor(f))
	if err != nil {
		t.Fatal(err)
	}
	if out["worker_pool_id"] != poolID || out["cycled"] != true || out["endpoint"] != f.endpoint() {
		t.Fatalf("outputs = %v", out)
	}
	ts, err := time.Parse(time.RFC3339, fmt.Sprint(out["time"]))
	if err != nil || ts.Before(before) {
		t.Fatalf("time = %v", out["time"])
	}
	if got := fmt.Sprint(f.ops()); got != "[apiKeyUser workerPoolCycle]" {
		t.Fatalf("operations = %s", got)
	}
	assertNoSecret(t, h, out, nil, keySecret, f.jwt)
}

func TestCycleByHostnameOverHTTPS(t *testing.T) {
	f := newFakeSpacelift(t, true)
	cy := &cycler{httpClient: func(d time.Duration) *http.Client {
		c := newHTTPClient(d)
		c.Transport = f.srv.Client().Transport // trusts the test server's certificate
		return c
	}}
	h := start(t, cy.action())
	p := cycleParamsFor(f)
	delete(p, "endpoint")
	p["hostname"] = strings.TrimPrefix(f.srv.URL, "https://")
	out, err := h.apply(plugintest.Context(t), "worker_pool_cycle", p)
	if err != nil {
		t.Fatal(err)
	}
	if out["endpoint"] != f.srv.URL+"/graphql" || out["cycled"] != true {
		t.Fatalf("outputs = %v", out)
	}
}

func TestCycleCredentialsFromEnvironment(t *testing.T) {
	f := newFakeSpacelift(t, false)
	t.Setenv("SPACELIFT_API_KEY_ID", keyID)
	t.Setenv("SPACELIFT_API_KEY_SECRET", keySecret)
	h := start(t, cycleAction())
	p := cycleParamsFor(f)
	delete(p, "api_key_id")
	delete(p, "api_key_secret")
	if _, err := h.apply(plugintest.Context(t), "worker_pool_cycle", p); err != nil {
		t.Fatal(err)
	}

	t.Setenv("SPACELIFT_API_KEY_SECRET", "")
	_, err := h.apply(plugintest.Context(t), "worker_pool_cycle", p)
	if pe := pluginError(t, err); pe.Code != "MissingCredentials" || pe.Retryable {
		t.Fatalf("err = %+v", pe)
	}
}

func TestCycleFailures(t *testing.T) {
	gqlErr := func(status int, msg string) func(string, http.ResponseWriter, *http.Request, map[string]any) bool {
		return func(op string, w http.ResponseWriter, _ *http.Request, _ map[string]any) bool {
			if op != "workerPoolCycle" {
				return false
			}
			writeJSON(w, status, map[string]any{"data": nil, "errors": []any{map[string]any{"message": msg, "path": []any{"workerPoolCycle"}}}})
			return true
		}
	}
	httpErr := func(atOp string, status int, body string, hdr map[string]string) func(string, http.ResponseWriter, *http.Request, map[string]any) bool {
		return func(op string, w http.ResponseWriter, _ *http.Request, _ map[string]any) bool {
			if op != atOp {
				return false
			}
			for k, v := range hdr {
				w.Header().Set(k, v)
			}
			w.WriteHeader(status)
			_, _ = io.WriteString(w, body)
			return true
		}
	}
	cases := map[string]struct {
		params    map[string]any
		override  func(string, http.ResponseWriter, *http.Request, map[string]any) bool
		retryable bool
		code      string
		contains  string
		ops       string
		// retryAfter: the wait the error passes on (the answer's Retry-After).
		retryAfter time.Duration
	}{
		"wrong secret": {
			params: map[string]any{"api_key_secret": "not-the-secret"}, code: "Unauthorized",
			contains: "exchanging the API key for a token: Spacelift refused: unauthorized", ops: "[apiKeyUser]",
		},
		"no token without errors": {
			override: func(op string, w http.ResponseWriter, _ *http.Request, _ map[string]any) bool {
				if op != "apiKeyUser" {
					return false
				}
				writeJSON(w, 200, map[string]any{"data": map[string]any{"apiKeyUser": nil}})
				return true
			},
			code: "Unauthorized", contains: "did not accept the API key", ops: "[apiKeyUser]",
		},
		"HTTP 401": {
			override: httpErr("apiKeyUser", 401, `{"errors":[{"message":"invalid credentials"}]}`, nil),
			code:     "Unauthorized", contains: "answered HTTP 401 Unauthorized: invalid credentials: check the API key", ops: "[apiKeyUser]",
		},
		"HTTP 403 on the cycle": {
			override: httpErr("workerPoolCycle", 403, "Forbidden", nil),
			code:     "Unauthorized", contains: "cycling worker pool " + poolID + ": 127.0.0.1", ops: "[apiKeyUser workerPoolCycle]",
		},
		"HTTP 429": {
			override:  httpErr("workerPoolCycle", 429, "slow down", map[string]string{"Retry-After": "3"}),
			retryable: true, code: "RateLimited", contains: "rate limiting (HTTP 429): slow down", ops: "[apiKeyUser workerPoolCycle]",
			retryAfter: 3 * time.Second,
		},
		"HTTP 503": {
			override:  httpErr("apiKeyUser", 503, "<html>Service Unavailable</html>", nil),
			retryable: true, code: "ServerError", contains: "HTTP 503 Service Unavailable: <html>Service Unavailable</html>", ops: "[apiKeyUser]",
		},
		"HTTP 502 from a proxy": {
			override:  httpErr("workerPoolCycle", 502, "bad gateway", nil),
			retryable: true, code: "ServerError", contains: "HTTP 502 Bad Gateway", ops: "[apiKeyUser workerPoolCycle]",
		},
		"HTTP 404": {
			override: httpErr("apiKeyUser", 404, "not found", nil),
			code:     "NotFound", contains: "has no GraphQL API at this URL", ops: "[apiKeyUser]",
		},
		"not GraphQL": {
			override: httpErr("apiKeyUser", 200, "<html>login page</html>", nil),
			code:     "NotGraphQL", contains: "not a GraphQL response", ops: "[apiKeyUser]",
		},
		"unknown pool": {
			params: map[string]any{"worker_pool_id": "01HNOSUCHPOOL"}, code: "GraphQLError",
			contains: "cycling worker pool 01HNOSUCHPOOL: Spacelift reported: worker pool 01HNOSUCHPOOL not found", ops: "[apiKeyUser workerPoolCycle]",
		},
		"GraphQL unauthorized on the cycle": {
			override: gqlErr(200, "Unauthorized: you need admin access to this worker pool's space"),
			code:     "Unauthorized", contains: "admin of the worker pool's space", ops: "[apiKeyUser workerPoolCycle]",
		},
		"GraphQL rate limit": {
			override:  gqlErr(200, "rate limit exceeded, try later"),
			retryable: true, code: "RateLimited", contains: "rate limit exceeded", ops: "[apiKeyUser workerPoolCycle]",
		},
		"GraphQL internal error": {
			override:  gqlErr(200, "internal error"),
			retryable: true, code: "ServerError", contains: "temporary error: internal error", ops: "[apiKeyUser workerPoolCycle]",
		},
		"GraphQL error echoing the secret": {
			override: func(op string, w http.ResponseWriter, _ *http.Request, vars map[string]any) bool {
				if op != "apiKeyUser" {
					return false
				}
				writeJSON(w, 200, map[string]any{"data": nil, "errors": []any{map[string]any{"message": fmt.Sprintf("bad secret %v for key", vars["secret"])}}})
				return true
			},
			code: "GraphQLError", contains: "bad secret [redacted] for key", ops: "[apiKeyUser]",
		},
		"cycle answered false": {
			override: func(op string, w http.ResponseWriter, _ *http.Request, _ map[string]any) bool {
				if op != "workerPoolCycle" {
					return false
				}
				writeJSON(w, 200, map[string]any{"data": map[string]any{"workerPoolCycle": false}})
				return true
			},
			code: "NotCycled", contains: "workerPoolCycle = false", ops: "[apiKeyUser workerPoolCycle]",
		},
		"redirect": {
			override: httpErr("apiKeyUser", 307, "", map[string]string{"Location": "https://elsewhere.example.com/graphql"}),
			code:     "Redirected", contains: "redirected (HTTP 307)", ops: "[apiKeyUser]",
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			f := newFakeSpacelift(t, false)
			f.override = tc.override
			h := start(t, cycleAction())
			p := cycleParamsFor(f)
			for k, v := range tc.params {
				p[k] = v
			}
			out, err := h.apply(plugintest.Context(t), "worker_pool_cycle", p)
			pe := pluginError(t, err)
			if pe.Retryable != tc.retryable || pe.Code != tc.code || !strings.Contains(pe.Message, tc.contains) {
				t.Fatalf("err = %+v\nwant code %s retryable %v containing %q", pe, tc.code, tc.retryable, tc.contains)
			}
			if pe.RetryAfter != tc.retryAfter {
				t.Errorf("retry after %s, want %s", pe.RetryAfter, tc.retryAfter)
			}
			if got := fmt.Sprint(f.ops()); got != tc.ops {
				t.Errorf("operations = %s, want %s", got, tc.ops)
			}
			assertNoSecret(t, h, out, err, keySecret, f.jwt)
		})
	}
}

func TestCycleUnreachableIsRetryable(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	h := start(t, cycleAction())
	_, err = h.apply(plugintest.Context(t), "worker_pool_cycle", map[string]any{
		"worker_pool_id": poolID, "endpoint": "http://" + addr + "/graphql", "api_key_id": keyID, "api_key_secret": keySecret,
	})
	pe := pluginError(t, err)
	if !pe.Retryable || pe.Code != "Unreachable" || !strings.Contains(pe.Message, "cannot reach "+addr) {
		t.Fatalf("err = %+v", pe)
	}
}

func TestCycleStopsOnCancellation(t *testing.T) {
	f := newFakeSpacelift(t, false)
	arrived := make(chan struct{})
	f.override = func(op string, w http.ResponseWriter, r *http.Request, _ map[string]any) bool {
		close(arrived)
		<-r.Context().Done() // hang until the client gives up
		return true
	}
	h := start(t, cycleAction())
	ctx, cancel := context.WithCancel(plugintest.Context(t))
	go func() { <-arrived; cancel() }()
	if _, err := h.apply(ctx, "worker_pool_cycle", cycleParamsFor(f)); err == nil {
		t.Fatal("want an error after cancellation")
	}
	if got := fmt.Sprint(f.ops()); got != "[apiKeyUser]" {
		t.Fatalf("operations = %s", got)
	}
}

func TestCycleValidate(t *testing.T) {
	h := start(t, cycleAction())
	ctx := plugintest.Context(t)
	cases := map[string]struct {
		params  map[string]any
		unknown []string
		paths   string
	}{
		"hostname":                 {params: map[string]any{"hostname": "spacelift.myorg.com"}, paths: "[]"},
		"hostname with port":       {params: map[string]any{"hostname": "spacelift.myorg.com:8443"}, paths: "[]"},
		"https endpoint":           {params: map[string]any{"endpoint": "https://spacelift.myorg.com/graphql"}, paths: "[]"},
		"loopback http":            {params: map[string]any{"endpoint": "http://127.0.0.1:8080/graphql"}, paths: "[]"},
		"localhost http":           {params: map[string]any{"endpoint": "http://localhost:8080/graphql"}, paths: "[]"},
		"neither":                  {params: map[string]any{}, paths: "[/hostname]"},
		"both":                     {params: map[string]any{"hostname": "a.example.com", "endpoint": "https://a.example.com/graphql"}, paths: "[/hostname]"},
		"remote http":              {params: map[string]any{"endpoint": "http://spacelift.myorg.com/graphql"}, paths: "[/endpoint]"},
		"endpoint with userinfo":   {params: map[string]any{"endpoint": "https://u:p@spacelift.myorg.com/graphql"}, paths: "[/endpoint]"},
		"hostname with a path":     {params: map[string]any{"hostname": "spacelift.myorg.com/graphql"}, paths: "[/hostname]"},
		"relative endpoint":        {params: map[string]any{"endpoint": "/graphql"}, paths: "[/endpoint]"},
		"empty pool":               {params: map[string]any{"hostname": "a.example.com", "worker_pool_id": " "}, paths: "[/worker_pool_id]"},
		"unknown hostname is fine": {params: map[string]any{"hostname": nil}, unknown: []string{"/hostname"}, paths: "[]"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := map[string]any{"worker_pool_id": poolID}
			for k, v := range tc.params {
				p[k] = v
			}
			diags, err := h.Validate(ctx, "worker_pool_cycle", p, tc.unknown)
			if err != nil {
				t.Fatal(err)
			}
			paths := []string{}
			for _, d := range diags {
				paths = append(paths, d.Path)
			}
			if fmt.Sprint(paths) != tc.paths {
				t.Fatalf("diagnostics = %+v, want paths %s", diags, tc.paths)
			}
		})
	}
}

func TestCyclePlanCallsNothing(t *testing.T) {
	f := newFakeSpacelift(t, false)
	h := start(t, cycleAction())
	ctx := plugintest.Context(t)
	plan, err := h.Plan(ctx, plugin.PlanCall{Action: "worker_pool_cycle", Params: cycleParamsFor(f)})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary != "cycle worker pool "+poolID+" via "+f.endpoint() || len(plan.Changes) != 1 ||
		plan.Changes[0].Kind != plugin.ChangeAction || plan.Changes[0].Resource != "worker pool "+poolID {
		t.Fatalf("plan = %+v", plan)
	}
	if len(f.ops()) != 0 {
		t.Fatalf("plan called the API: %v", f.ops())
	}
	p := cycleParamsFor(f)
	p["worker_pool_id"] = nil
	plan, err = h.Plan(ctx, plugin.PlanCall{Action: "worker_pool_cycle", Params: p, Unknown: []string{"/worker_pool_id"}})
	if err != nil || plan.Changes[0].Resource != "worker pool (known after apply)" {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}
}

func TestDescribeSpacelift(t *testing.T) {
	h := start(t, cycleAction(), installerConfigAction())
	d, err := h.Describe(plugintest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	c, ok := d.Action("worker_pool_cycle")
	if !ok || !c.Idempotent || !c.SupportsPlan || fmt.Sprint(c.Params.SecretPaths()) != "[/api_key_secret]" {
		t.Fatalf("worker_pool_cycle = %+v", c)
	}
	i, ok := d.Action("installer_config_update")
	if !ok || !i.Idempotent || !i.SupportsPlan {
		t.Fatalf("installer_config_update = %+v", i)
	}
}
