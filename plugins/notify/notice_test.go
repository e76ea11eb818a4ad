package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/hashicorp/go-hclog"
	goplugin "github.com/hashicorp/go-plugin"

	"github.com/runbookhq/runbook/sdk/plugin"
	"github.com/runbookhq/runbook/sdk/plugin/plugintest"
)

// harness runs the action over the real plugin protocol, capturing the
// plugin's log so tests can check that no secret reaches it.
type harness struct {
	*plugin.Client
	mu       sync.Mutex
	logs     bytes.Buffer
	progress []plugin.Progress
	waits    []time.Duration
}

func (h *harness) Write(p []byte) (int, error) {
	h.mu.Lock()
	defer h.mu.Unlock()
	return h.logs.Write(p)
}

func (h *harness) apply(ctx context.Context, params map[string]any) (map[string]any, error) {
	return h.applyCall(ctx, plugin.ApplyCall{RunID: "run-1", StepID: "notify", Action: "cookie_invalidation_notice",
		Attempt: 1, IdempotencyKey: "run-1/notify", Params: params})
}

func (h *harness) applyCall(ctx context.Context, call plugin.ApplyCall) (map[string]any, error) {
	return h.Client.Apply(ctx, call, func(p plugin.Progress) {
		h.mu.Lock()
		h.progress = append(h.progress, p)
		h.mu.Unlock()
	})
}

// everything returns all the text the plugin showed: logs and progress.
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

// start serves the action with a sender whose sleep records the wait
// instead of waiting (unless realSleep).
func start(t *testing.T, realSleep bool) *harness {
	t.Helper()
	h := &harness{}
	s := newSender()
	if !realSleep {
		s.sleep = func(ctx context.Context, d time.Duration) error {
			h.mu.Lock()
			h.waits = append(h.waits, d)
			h.mu.Unlock()
			return ctx.Err()
		}
	}
	srv, err := plugin.NewServer(plugin.Info{Name: "notify", Version: version}, noticeAction(s))
	if err != nil {
		t.Fatal(err)
	}
	srv.SetLogger(hclog.New(&hclog.LoggerOptions{Name: "notify", Output: io.MultiWriter(h, testLog{t}), Level: hclog.Trace}))
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
	defer func() { _ = recover() }() // a line after the test ended
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// receiver is a local webhook endpoint. respond decides each answer; the
// requests it got are kept.
type receiver struct {
	*httptest.Server
	mu      sync.Mutex
	reqs    []received
	respond func(n int, r received) (status int, headers map[string]string, body string)
}

type received struct {
	header http.Header
	body   []byte
	path   string
}

func newReceiver(t *testing.T, respond func(n int, r received) (int, map[string]string, string)) *receiver {
	rc := &receiver{respond: respond}
	rc.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b, _ := io.ReadAll(r.Body)
		if r.Method != http.MethodPost {
			http.Error(w, "method", http.StatusMethodNotAllowed)
			return
		}
		got := received{header: r.Header.Clone(), body: b, path: r.URL.RequestURI()}
		rc.mu.Lock()
		rc.reqs = append(rc.reqs, got)
		n := len(rc.reqs)
		rc.mu.Unlock()
		status, hdrs, body := 200, map[string]string(nil), "ok"
		if rc.respond != nil {
			status, hdrs, body = rc.respond(n, got)
		}
		for k, v := range hdrs {
			w.Header().Set(k, v)
		}
		w.WriteHeader(status)
		_, _ = io.WriteString(w, body)
	}))
	t.Cleanup(rc.Close)
	return rc
}

func (rc *receiver) requests() []received {
	rc.mu.Lock()
	defer rc.mu.Unlock()
	return append([]received(nil), rc.reqs...)
}

const slackPath = "/services/T0SECRET1/B0SECRET2/xoxbSECRETtoken3"

func baseParams() map[string]any {
	return map[string]any{
		"hostname":      "spacelift.myorg.com",
		"active_region": "eu-west-3",
		"failover_time": "2025-03-04T05:06:07Z",
		"retry_delay":   "10ms",
	}
}

func pluginError(t *testing.T, err error) *plugin.Error {
	t.Helper()
	var pe *plugin.Error
	if !errors.As(err, &pe) {
		t.Fatalf("err = %v (%T), want *plugin.Error", err, err)
	}
	return pe
}

func TestNoticeToEveryChannel(t *testing.T) {
	slack := newReceiver(t, nil)
	hook := newReceiver(t, func(int, received) (int, map[string]string, string) { return 204, nil, "" })
	h := start(t, false)
	p := baseParams()
	p["slack_webhook_url"] = slack.URL + slackPath
	p["webhook_url"] = hook.URL + "/hooks/dr?token=hooktoken123"
	p["webhook_headers"] = map[string]any{"Authorization": "Bearer headersecret456", "X-Team": "platform"}
	p["extra_text"] = "Questions: #platform <on-call> & friends"

	out, err := h.apply(plugintest.Context(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if got := fmt.Sprint(out["delivered_to"]); got != "[console slack webhook]" {
		t.Fatalf("delivered_to = %s", got)
	}
	msg, _ := out["message"].(string)
	for _, want := range []string{"spacelift.myorg.com", "eu-west-3", "2025-03-04 05:06 UTC", "Clear the cookies for spacelift.myorg.com", "Log in again at https://spacelift.myorg.com", "Questions: #platform <on-call> & friends"} {
		if !strings.Contains(msg, want) {
			t.Errorf("message lacks %q:\n%s", want, msg)
		}
	}
	if out["failover_time"] != "2025-03-04T05:06:07Z" {
		t.Errorf("failover_time = %v", out["failover_time"])
	}

	sr := slack.requests()
	if len(sr) != 1 || sr[0].path != slackPath || sr[0].header.Get("Content-Type") != "application/json" {
		t.Fatalf("slack requests = %+v", sr)
	}
	var sp struct {
		Text   string `json:"text"`
		Blocks []struct {
			Type string `json:"type"`
			Text struct {
				Type string `json:"type"`
				Text string `json:"text"`
			} `json:"text"`
		} `json:"blocks"`
	}
	if err := json.Unmarshal(sr[0].body, &sp); err != nil {
		t.Fatalf("slack payload: %v\n%s", err, sr[0].body)
	}
	if !strings.Contains(sp.Text, "Clear the cookies for spacelift.myorg.com") || !strings.Contains(sp.Text, "&lt;on-call&gt; &amp; friends") {
		t.Errorf("slack text (fallback, escaped) = %q", sp.Text)
	}
	if len(sp.Blocks) != 3 || sp.Blocks[0].Type != "header" || sp.Blocks[0].Text.Type != "plain_text" ||
		sp.Blocks[1].Type != "section" || sp.Blocks[1].Text.Type != "mrkdwn" || sp.Blocks[2].Text.Text != "Questions: #platform &lt;on-call&gt; &amp; friends" {
		t.Fatalf("slack blocks = %+v", sp.Blocks)
	}
	if !strings.Contains(sp.Blocks[1].Text.Text, "Clear the cookies for `spacelift.myorg.com`") || !strings.Contains(sp.Blocks[1].Text.Text, "*eu-west-3*") {
		t.Errorf("slack section = %q", sp.Blocks[1].Text.Text)
	}

	hr := hook.requests()
	if len(hr) != 1 {
		t.Fatalf("webhook requests = %d", len(hr))
	}
	if hr[0].header.Get("Authorization") != "Bearer headersecret456" || hr[0].header.Get("X-Team") != "platform" ||
		hr[0].header.Get("Idempotency-Key") != "run-1/notify" || hr[0].path != "/hooks/dr?token=hooktoken123" {
		t.Fatalf("webhook request = %+v", hr[0])
	}
	var wp map[string]any
	if err := json.Unmarshal(hr[0].body, &wp); err != nil {
		t.Fatal(err)
	}
	if wp["event"] != "cookie_invalidation_notice" || wp["hostname"] != "spacelift.myorg.com" || wp["active_region"] != "eu-west-3" ||
		wp["failover_time"] != "2025-03-04T05:06:07Z" || wp["message"] != msg || wp["idempotency_key"] != "run-1/notify" || wp["run_id"] != "run-1" {
		t.Fatalf("webhook payload = %v", wp)
	}
	if !strings.Contains(h.everything(), "Clear the cookies for spacelift.myorg.com") {
		t.Errorf("console channel did not log the message")
	}
	assertNoSecrets(t, h, out, nil, slack.URL+slackPath, "T0SECRET1", "xoxbSECRETtoken3", "hooktoken123", "headersecret456", hook.URL)
}

func TestConsoleOnlyDefaultsTheTime(t *testing.T) {
	h := start(t, false)
	p := baseParams()
	delete(p, "failover_time")
	before := time.Now().UTC().Add(-time.Second)
	out, err := h.apply(plugintest.Context(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(out["delivered_to"]) != "[console]" {
		t.Fatalf("delivered_to = %v", out["delivered_to"])
	}
	ft, err := time.Parse(time.RFC3339, out["failover_time"].(string))
	if err != nil || ft.Before(before) || out["failover_time"] != out["sent_at"] {
		t.Fatalf("failover_time = %v, sent_at = %v", out["failover_time"], out["sent_at"])
	}
}

func TestRetriesTransientFailures(t *testing.T) {
	slack := newReceiver(t, func(n int, _ received) (int, map[string]string, string) {
		switch n {
		case 1:
			return 503, nil, "upstream unavailable"
		case 2:
			return 429, map[string]string{"Retry-After": "7"}, "rate_limited"
		}
		return 200, nil, "ok"
	})
	h := start(t, false)
	p := baseParams()
	p["console"] = false
	p["slack_webhook_url"] = slack.URL + slackPath
	out, err := h.apply(plugintest.Context(t), p)
	if err != nil {
		t.Fatal(err)
	}
	if len(slack.requests()) != 3 || fmt.Sprint(out["delivered_to"]) != "[slack]" {
		t.Fatalf("requests = %d, outputs = %v", len(slack.requests()), out)
	}
	// The first wait is the jittered backoff (5ms..10ms); the second honours Retry-After.
	if len(h.waits) != 2 || h.waits[0] < 5*time.Millisecond || h.waits[0] > 10*time.Millisecond || h.waits[1] != 7*time.Second {
		t.Fatalf("waits = %v", h.waits)
	}
	if !strings.Contains(h.everything(), "HTTP 429 Too Many Requests: rate_limited; retrying in 7s") {
		t.Errorf("no retry progress:\n%s", h.everything())
	}
}

func TestFailures(t *testing.T) {
	cases := map[string]struct {
		respond   func(int, received) (int, map[string]string, string)
		attempts  int
		deadline  time.Duration
		retryable bool
		code      string
		contains  []string
		requests  int
	}{
		"slack 404 is fatal": {
			respond:  func(int, received) (int, map[string]string, string) { return 404, nil, "no_service" },
			code:     "DeliveryRejected",
			contains: []string{"slack: the receiver rejected the notice with HTTP 404 Not Found: no_service", "incoming webhook URL"},
			requests: 1,
		},
		"400 echoing the URL is fatal and redacted": {
			respond: func(_ int, r received) (int, map[string]string, string) {
				return 400, nil, "invalid_payload for " + r.path
			},
			code:     "DeliveryRejected",
			contains: []string{"HTTP 400 Bad Request: invalid_payload for [redacted]"},
			requests: 1,
		},
		"redirect is fatal": {
			respond: func(int, received) (int, map[string]string, string) {
				return 302, map[string]string{"Location": "http://127.0.0.1:1/elsewhere"}, ""
			},
			code:     "DeliveryRejected",
			contains: []string{"HTTP 302 Found", "must not redirect"},
			requests: 1,
		},
		"5xx until attempts run out is retryable": {
			respond:   func(int, received) (int, map[string]string, string) { return 500, nil, "oops" },
			attempts:  3,
			retryable: true,
			code:      "DeliveryFailed",
			contains:  []string{"slack: HTTP 500 Internal Server Error: oops (gave up after 3 attempts)"},
			requests:  3,
		},
		"Retry-After past the deadline gives up at once": {
			respond: func(int, received) (int, map[string]string, string) {
				return 429, map[string]string{"Retry-After": "3600"}, "rate_limited"
			},
			deadline:  30 * time.Second,
			retryable: true,
			code:      "DeliveryFailed",
			contains:  []string{"HTTP 429", "the next attempt (in 1h0m0s) would pass the step's deadline"},
			requests:  1,
		},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			slack := newReceiver(t, tc.respond)
			h := start(t, false)
			p := baseParams()
			p["slack_webhook_url"] = slack.URL + slackPath
			if tc.attempts > 0 {
				p["attempts"] = tc.attempts
			}
			call := plugin.ApplyCall{RunID: "r", StepID: "s", Action: "cookie_invalidation_notice", Attempt: 1, Params: p}
			if tc.deadline > 0 {
				call.Deadline = time.Now().Add(tc.deadline)
			}
			out, err := h.applyCall(plugintest.Context(t), call)
			pe := pluginError(t, err)
			if pe.Retryable != tc.retryable || pe.Code != tc.code {
				t.Fatalf("err = %+v", pe)
			}
			for _, want := range tc.contains {
				if !strings.Contains(pe.Message, want) {
					t.Errorf("error %q lacks %q", pe.Message, want)
				}
			}
			if !strings.Contains(pe.Message, "(already delivered to console)") {
				t.Errorf("error does not say the console got the notice: %q", pe.Message)
			}
			if n := len(slack.requests()); n != tc.requests {
				t.Errorf("requests = %d, want %d", n, tc.requests)
			}
			assertNoSecrets(t, h, out, err, slack.URL+slackPath, slackPath, "xoxbSECRETtoken3", strings.TrimPrefix(slack.URL, "http://"))
		})
	}
}

func TestOneChannelFailsTheOthersStillGetIt(t *testing.T) {
	slack := newReceiver(t, nil)
	hook := newReceiver(t, func(int, received) (int, map[string]string, string) { return 401, nil, "bad token" })
	h := start(t, false)
	p := baseParams()
	p["slack_webhook_url"] = slack.URL + slackPath
	p["webhook_url"] = hook.URL + "/hook"
	p["webhook_headers"] = map[string]any{"Authorization": "Bearer headersecret456"}
	out, err := h.apply(plugintest.Context(t), p)
	pe := pluginError(t, err)
	if pe.Retryable || !strings.Contains(pe.Message, "webhook: the receiver rejected the notice with HTTP 401 Unauthorized: bad token") ||
		!strings.Contains(pe.Message, "already delivered to console, slack") || !strings.Contains(pe.Message, "authentication headers") {
		t.Fatalf("err = %+v", pe)
	}
	if len(slack.requests()) != 1 || len(hook.requests()) != 1 {
		t.Fatalf("slack %d, webhook %d requests", len(slack.requests()), len(hook.requests()))
	}
	assertNoSecrets(t, h, out, err, slack.URL+slackPath, hook.URL, "headersecret456", "xoxbSECRETtoken3")
}

func TestUnreachableReceiverIsRetryableWithoutTheURL(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there now
	h := start(t, false)
	p := baseParams()
	p["webhook_url"] = "http://" + addr + "/hook?token=hooktoken123"
	p["attempts"] = 2
	out, err := h.apply(plugintest.Context(t), p)
	pe := pluginError(t, err)
	if !pe.Retryable || !strings.Contains(pe.Message, "webhook: request failed") || !strings.Contains(pe.Message, "gave up after 2 attempts") {
		t.Fatalf("err = %+v", pe)
	}
	if len(h.waits) != 1 {
		t.Fatalf("waits = %v", h.waits)
	}
	assertNoSecrets(t, h, out, err, addr, "hooktoken123")
}

func TestCancellationStopsTheRetries(t *testing.T) {
	hits := make(chan struct{}, 10)
	hook := newReceiver(t, func(int, received) (int, map[string]string, string) {
		hits <- struct{}{}
		return 503, map[string]string{"Retry-After": "600"}, ""
	})
	h := start(t, true)
	p := baseParams()
	p["webhook_url"] = hook.URL
	ctx, cancel := context.WithCancel(plugintest.Context(t))
	go func() { <-hits; cancel() }()
	_, err := h.apply(ctx, p)
	if err == nil {
		t.Fatal("want an error after cancellation")
	}
	if len(hook.requests()) != 1 {
		t.Fatalf("requests = %d", len(hook.requests()))
	}
}

// assertNoSecrets fails if any secret appears in the outputs, the error,
// the plugin's logs or its progress events.
func assertNoSecrets(t *testing.T, h *harness, out map[string]any, err error, secrets ...string) {
	t.Helper()
	ob, _ := json.Marshal(out)
	places := map[string]string{"outputs": string(ob), "logs and progress": h.everything()}
	if err != nil {
		places["error"] = err.Error()
	}
	for where, text := range places {
		for _, s := range secrets {
			if s != "" && strings.Contains(text, s) {
				t.Errorf("%s contain the secret %q:\n%s", where, s, text)
			}
		}
	}
}

func TestValidate(t *testing.T) {
	h := start(t, false)
	ctx := plugintest.Context(t)
	cases := map[string]struct {
		params  map[string]any
		unknown []string
		paths   []string
	}{
		"console only":           {params: map[string]any{}, paths: nil},
		"no channel":             {params: map[string]any{"console": false}, paths: []string{""}},
		"unknown url is enough":  {params: map[string]any{"console": false, "slack_webhook_url": nil}, unknown: []string{"/slack_webhook_url"}},
		"http to a remote host":  {params: map[string]any{"slack_webhook_url": "http://hooks.example.com/services/SECRETPATH"}, paths: []string{"/slack_webhook_url"}},
		"not a url":              {params: map[string]any{"webhook_url": "hooks/SECRETPATH"}, paths: []string{"/webhook_url"}},
		"http loopback is fine":  {params: map[string]any{"webhook_url": "http://127.0.0.1:8080/hook"}},
		"bad header name":        {params: map[string]any{"webhook_url": "https://x.example.com/h", "webhook_headers": map[string]any{"Bad Header": "v"}}, paths: []string{"/webhook_headers"}},
		"headers without url":    {params: map[string]any{"webhook_headers": map[string]any{"Authorization": "v"}}, paths: []string{"/webhook_headers"}},
		"max delay below delay":  {params: map[string]any{"retry_delay": "10s", "max_retry_delay": "1s"}, paths: []string{"/max_retry_delay"}},
		"attempts must be >= 1":  {params: map[string]any{"attempts": 0}, paths: []string{"/attempts"}},
		"hostname is required":   {params: map[string]any{"hostname": nil}, paths: []string{""}},
		"unknown field rejected": {params: map[string]any{"slack_url": "x"}, paths: []string{"/slack_url"}},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			p := map[string]any{"hostname": "h.example.com", "active_region": "eu-west-3"}
			for k, v := range tc.params {
				if v == nil && k == "hostname" {
					delete(p, k)
					continue
				}
				p[k] = v
			}
			diags, err := h.Validate(ctx, "cookie_invalidation_notice", p, tc.unknown)
			if err != nil {
				t.Fatal(err)
			}
			var paths []string
			for _, d := range diags {
				paths = append(paths, d.Path)
				if strings.Contains(d.Summary, "SECRETPATH") {
					t.Errorf("diagnostic shows the URL: %q", d.Summary)
				}
			}
			if fmt.Sprint(paths) != fmt.Sprint(tc.paths) {
				t.Fatalf("diagnostics = %+v, want paths %v", diags, tc.paths)
			}
		})
	}
}

func TestPlan(t *testing.T) {
	h := start(t, false)
	ctx := plugintest.Context(t)
	p := baseParams()
	p["slack_webhook_url"] = "https://hooks.slack.com/services/T/B/SECRET"
	plan, err := h.Plan(ctx, plugin.PlanCall{Action: "cookie_invalidation_notice", Params: p})
	if err != nil {
		t.Fatal(err)
	}
	if plan.Summary != "send the cookie-invalidation notice to console, slack" || len(plan.Changes) != 2 {
		t.Fatalf("plan = %+v", plan)
	}
	for _, c := range plan.Changes {
		msg, _ := c.After.(string)
		if c.Kind != plugin.ChangeAction || !strings.Contains(msg, "Clear the cookies for spacelift.myorg.com") || strings.Contains(c.Resource, "SECRET") {
			t.Fatalf("change = %+v", c)
		}
	}
	if plan.Changes[1].Resource != "Slack incoming webhook" {
		t.Fatalf("resource = %q", plan.Changes[1].Resource)
	}

	// A region known only at run time: the message is unknown too.
	p["active_region"] = nil
	plan, err = h.Plan(ctx, plugin.PlanCall{Action: "cookie_invalidation_notice", Params: p, Unknown: []string{"/active_region"}})
	if err != nil || len(plan.Changes) != 2 || !plan.Changes[0].AfterUnknown || plan.Changes[0].After != nil {
		t.Fatalf("plan = %+v, err = %v", plan, err)
	}
}

func TestDescribe(t *testing.T) {
	h := start(t, false)
	d, err := h.Describe(plugintest.Context(t))
	if err != nil {
		t.Fatal(err)
	}
	a, ok := d.Action("cookie_invalidation_notice")
	if !ok || a.Idempotent || !a.SupportsPlan {
		t.Fatalf("spec = %+v", a)
	}
	if got := fmt.Sprint(a.Params.SecretPaths()); got != "[/slack_webhook_url /webhook_url /webhook_headers]" {
		t.Fatalf("secret paths = %s", got)
	}
}

func TestRenderText(t *testing.T) {
	p := noticeParams{Hostname: "spacelift.myorg.com", ActiveRegion: "eu-west-3", ServiceName: "Spacelift", ExtraText: "  Ask in #platform.  "}
	got := renderText(p, time.Date(2025, 3, 4, 5, 6, 7, 0, time.FixedZone("CET", 3600)))
	want := `Spacelift (spacelift.myorg.com) has moved to eu-west-3. The switch happened at 2025-03-04 04:06 UTC.
Sessions from before the switch are no longer valid. To keep working, everyone must:
1. Clear the cookies for spacelift.myorg.com in the browser.
2. Log in again at https://spacelift.myorg.com.

Ask in #platform.`
	if got != want {
		t.Fatalf("got:\n%s\nwant:\n%s", got, want)
	}
}

func TestParseRetryAfter(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	cases := map[string]time.Duration{
		"":                              0,
		"5":                             5 * time.Second,
		"-3":                            0,
		"soon":                          0,
		"Wed, 01 Jan 2025 00:00:30 GMT": 30 * time.Second,
		"Tue, 31 Dec 2024 23:00:00 GMT": 0,
	}
	for in, want := range cases {
		if got := parseRetryAfter(in, now); got != want {
			t.Errorf("parseRetryAfter(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestBackoffIsBounded(t *testing.T) {
	p := retryPolicy{delay: time.Second, maxDelay: 8 * time.Second}
	for attempt, max := range map[int]time.Duration{1: time.Second, 2: 2 * time.Second, 4: 8 * time.Second, 10: 8 * time.Second} {
		for range 50 {
			if d := backoff(p, attempt); d < max/2 || d > max {
				t.Fatalf("backoff(attempt %d) = %v, want in [%v, %v]", attempt, d, max/2, max)
			}
		}
	}
}
