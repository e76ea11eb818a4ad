package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
)

type noticeParams struct {
	Hostname     string            `json:"hostname" required:"true" doc:"the server hostname users open (e.g. spacelift.myorg.com): the cookies to clear are this host's"`
	ActiveRegion string            `json:"active_region" required:"true" doc:"the region that now serves the hostname (e.g. eu-west-3)"`
	FailoverTime time.Time         `json:"failover_time" doc:"when traffic moved, RFC 3339; default: the time the notice is sent"`
	ServiceName  string            `json:"service_name" default:"Spacelift" doc:"the product name used in the message"`
	ExtraText    string            `json:"extra_text" doc:"an extra paragraph appended to the message (e.g. who to contact)"`
	Console      bool              `json:"console" default:"true" doc:"log the message in the run's output"`
	SlackWebhook string            `json:"slack_webhook_url" secret:"true" doc:"a Slack incoming webhook URL; empty: no Slack message"`
	WebhookURL   string            `json:"webhook_url" secret:"true" doc:"a URL that receives the notice as a JSON POST; empty: none"`
	WebhookHdrs  map[string]string `json:"webhook_headers" secret:"true" doc:"extra HTTP headers for webhook_url (e.g. Authorization)"`
	Attempts     int               `json:"attempts" default:"5" min:"1" doc:"deliveries tried per channel before giving up on HTTP 408/429/5xx or a network error"`
	RetryDelay   time.Duration     `json:"retry_delay" default:"1s" doc:"first wait between tries; doubles each time up to max_retry_delay (a Retry-After from the server wins)"`
	MaxDelay     time.Duration     `json:"max_retry_delay" default:"30s" doc:"longest wait between tries"`
	Timeout      time.Duration     `json:"request_timeout" default:"15s" doc:"limit for one HTTP request"`
}

type noticeOutputs struct {
	Message      string    `json:"message" doc:"the notice as plain text"`
	DeliveredTo  []string  `json:"delivered_to" doc:"channel kinds that accepted the notice: console, slack, webhook"`
	FailoverTime time.Time `json:"failover_time" doc:"the failover time stated in the notice"`
	SentAt       time.Time `json:"sent_at" doc:"when the notice was sent"`
}

func noticeAction(s *sender) plugin.Action {
	return plugin.NewAction("cookie_invalidation_notice", s.sendNotice).
		Doc("Tells users that a failover invalidated their sessions: clear the cookies for the hostname, then log in again. " +
			"Sends to a Slack incoming webhook, a generic JSON webhook and/or the run's console. " +
			"Not idempotent: a second run sends a second notice.").
		Plan(planNotice).
		Validate(validateNotice)
}

// channels lists the channel kinds params select, in delivery order.
func channels(p noticeParams, unknown func(string) bool) []string {
	var out []string
	if p.Console {
		out = append(out, "console")
	}
	if p.SlackWebhook != "" || unknown("/slack_webhook_url") {
		out = append(out, "slack")
	}
	if p.WebhookURL != "" || unknown("/webhook_url") {
		out = append(out, "webhook")
	}
	return out
}

func validateNotice(req plugin.ValidateRequest[noticeParams]) []plugin.Diagnostic {
	p := req.Params
	var diags []plugin.Diagnostic
	if len(channels(p, req.Unknown)) == 0 {
		diags = append(diags, plugin.Errorf("", "no channel to notify: set slack_webhook_url or webhook_url, or leave console true"))
	}
	for path, u := range map[string]string{"/slack_webhook_url": p.SlackWebhook, "/webhook_url": p.WebhookURL} {
		if u == "" || req.Unknown(path) {
			continue
		}
		if err := checkURL(u); err != nil {
			diags = append(diags, plugin.Errorf(path, "the URL %v", err))
		}
	}
	for k := range p.WebhookHdrs {
		if !validHeaderName(k) {
			diags = append(diags, plugin.Errorf("/webhook_headers", "%q is not a valid HTTP header name", k))
		}
	}
	if len(p.WebhookHdrs) > 0 && p.WebhookURL == "" && !req.Unknown("/webhook_url") {
		diags = append(diags, plugin.Errorf("/webhook_headers", "webhook_headers is set but webhook_url is empty"))
	}
	if p.MaxDelay < p.RetryDelay {
		diags = append(diags, plugin.Errorf("/max_retry_delay", "max_retry_delay (%s) is shorter than retry_delay (%s)", p.MaxDelay, p.RetryDelay))
	}
	return diags
}

func validHeaderName(k string) bool {
	if k == "" {
		return false
	}
	for _, c := range k {
		if c <= ' ' || c >= 0x7f || strings.ContainsRune("\"(),/:;<=>?@[\\]{}", c) {
			return false
		}
	}
	return true
}

func planNotice(_ context.Context, req plugin.PlanRequest[noticeParams]) (plugin.Plan, error) {
	p := req.Params
	chs := channels(p, req.Unknown)
	known := !req.Unknown("/hostname") && !req.Unknown("/active_region") && !req.Unknown("/failover_time") &&
		!req.Unknown("/service_name") && !req.Unknown("/extra_text")
	var msg any
	if known {
		t := p.FailoverTime
		if t.IsZero() {
			t = time.Now()
		}
		msg = renderText(p, t)
	}
	plan := plugin.Plan{Summary: "send the cookie-invalidation notice to " + strings.Join(chs, ", ")}
	for _, ch := range chs {
		c := plugin.Change{Resource: channelLabel(ch), Field: "message", After: msg, AfterUnknown: !known, Kind: plugin.ChangeAction}
		plan.Changes = append(plan.Changes, c)
	}
	if len(chs) == 0 {
		plan.Summary = "no channel to notify"
	}
	return plan, nil
}

func channelLabel(kind string) string {
	switch kind {
	case "slack":
		return "Slack incoming webhook"
	case "webhook":
		return "JSON webhook"
	}
	return "run console"
}

func (s *sender) sendNotice(ctx context.Context, req plugin.Request[noticeParams]) (noticeOutputs, error) {
	p := req.Params
	for path, u := range map[string]string{"slack_webhook_url": p.SlackWebhook, "webhook_url": p.WebhookURL} {
		if u != "" {
			if err := checkURL(u); err != nil {
				return noticeOutputs{}, plugin.FatalCode("InvalidParams", "%s: the URL %v", path, err)
			}
		}
	}
	chs := channels(p, func(string) bool { return false })
	if len(chs) == 0 {
		return noticeOutputs{}, plugin.FatalCode("InvalidParams", "no channel to notify: set slack_webhook_url or webhook_url, or leave console true")
	}
	secrets := []string{p.SlackWebhook, p.WebhookURL}
	for _, v := range p.WebhookHdrs {
		secrets = append(secrets, v)
	}
	redact := redactor(secrets...)

	sentAt := s.now().UTC()
	when := p.FailoverTime
	if when.IsZero() {
		when = sentAt
	}
	when = when.UTC()
	text := renderText(p, when)
	out := noticeOutputs{Message: text, DeliveredTo: []string{}, FailoverTime: when, SentAt: sentAt}
	policy := retryPolicy{attempts: p.Attempts, delay: p.RetryDelay, maxDelay: p.MaxDelay, requestTimeout: p.Timeout}

	var failed []*deliveryError
	for _, ch := range chs {
		var d delivery
		switch ch {
		case "console":
			req.Log.Info("cookie-invalidation notice", "message", text)
			req.Progress("notice written to the run console", "channel", "console")
			out.DeliveredTo = append(out.DeliveredTo, ch)
			continue
		case "slack":
			d = delivery{url: p.SlackWebhook, body: slackPayload(p, when, text)}
		case "webhook":
			hdrs := map[string]string{}
			if req.IdempotencyKey != "" {
				hdrs["Idempotency-Key"] = req.IdempotencyKey
			}
			for k, v := range p.WebhookHdrs {
				hdrs[k] = v
			}
			d = delivery{url: p.WebhookURL, headers: hdrs, body: webhookPayload(req, p, when, sentAt, text)}
		}
		d.kind, d.redact = ch, redact
		d.onRetry = func(attempt int, cause string, wait time.Duration) {
			req.Log.Warn("notice delivery failed, retrying", "channel", ch, "attempt", attempt, "cause", cause, "wait", wait.String())
			req.Progress(fmt.Sprintf("%s: %s; retrying in %s", ch, cause, wait.Round(time.Millisecond)), "channel", ch, "attempt", attempt)
		}
		req.Progress("sending the notice", "channel", ch)
		attempts, err := s.post(ctx, d, policy)
		if err != nil {
			var de *deliveryError
			if !errors.As(err, &de) {
				de = &deliveryError{kind: ch, msg: redact(err.Error())}
			}
			req.Log.Error("notice delivery failed", "channel", ch, "attempts", attempts, "error", de.msg)
			failed = append(failed, de)
			continue
		}
		req.Log.Info("notice delivered", "channel", ch, "attempts", attempts)
		req.Progress("notice delivered", "channel", ch, "attempts", attempts)
		out.DeliveredTo = append(out.DeliveredTo, ch)
	}
	if len(failed) > 0 {
		return noticeOutputs{}, failure(out.DeliveredTo, failed)
	}
	return out, nil
}

// failure reports every failed channel, and the ones that did get the
// notice (a retry of the step sends to those again). It is retryable only if
// every failure was transient.
func failure(delivered []string, failed []*deliveryError) error {
	retryable := true
	var parts []string
	for _, f := range failed {
		retryable = retryable && f.retryable
		parts = append(parts, f.Error())
	}
	msg := "cookie-invalidation notice not delivered: " + strings.Join(parts, "; ")
	if len(delivered) > 0 {
		msg += " (already delivered to " + strings.Join(delivered, ", ") + ")"
	}
	if retryable {
		return plugin.RetryableCode("DeliveryFailed", "%s", msg)
	}
	return plugin.FatalCode("DeliveryRejected", "%s", msg)
}

// renderText is the notice as plain text: what happened, and what every
// user must do.
func renderText(p noticeParams, when time.Time) string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s (%s) has moved to %s. The switch happened at %s.\n",
		p.ServiceName, p.Hostname, p.ActiveRegion, when.UTC().Format("2006-01-02 15:04 MST"))
	fmt.Fprintf(&b, "Sessions from before the switch are no longer valid. To keep working, everyone must:\n")
	fmt.Fprintf(&b, "1. Clear the cookies for %s in the browser.\n", p.Hostname)
	fmt.Fprintf(&b, "2. Log in again at https://%s.\n", p.Hostname)
	if t := strings.TrimSpace(p.ExtraText); t != "" {
		b.WriteString("\n" + t + "\n")
	}
	return strings.TrimRight(b.String(), "\n")
}

// slackEscape escapes what Slack's mrkdwn treats as markup.
func slackEscape(s string) string {
	return strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;").Replace(s)
}

type slackText struct {
	Type string `json:"type"`
	Text string `json:"text"`
}

type slackBlock struct {
	Type     string      `json:"type"`
	Text     *slackText  `json:"text,omitempty"`
	Elements []slackText `json:"elements,omitempty"`
}

// slackPayload is an incoming-webhook message: text is the notification
// fallback, blocks the formatted message.
func slackPayload(p noticeParams, when time.Time, text string) []byte {
	header := fmt.Sprintf("%s moved to %s: clear your cookies and log in again", p.ServiceName, p.ActiveRegion)
	if len(header) > 150 { // Slack's limit for a header block
		header = header[:147] + "..."
	}
	host := slackEscape(p.Hostname)
	body := fmt.Sprintf("*%s* (`%s`) now runs in *%s* (since %s).\n"+
		"Sessions from before the switch are no longer valid. To keep working:\n"+
		"1. Clear the cookies for `%s` in your browser.\n"+
		"2. Log in again at https://%s.",
		slackEscape(p.ServiceName), host, slackEscape(p.ActiveRegion), when.UTC().Format("2006-01-02 15:04 MST"), host, host)
	blocks := []slackBlock{
		{Type: "header", Text: &slackText{Type: "plain_text", Text: header}},
		{Type: "section", Text: &slackText{Type: "mrkdwn", Text: body}},
	}
	if t := strings.TrimSpace(p.ExtraText); t != "" {
		blocks = append(blocks, slackBlock{Type: "section", Text: &slackText{Type: "mrkdwn", Text: slackEscape(t)}})
	}
	b, _ := json.Marshal(struct {
		Text   string       `json:"text"`
		Blocks []slackBlock `json:"blocks"`
	}{Text: slackEscape(text), Blocks: blocks})
	return b
}

// webhookPayload is the generic webhook's JSON body. idempotency_key (also
// sent as the Idempotency-Key header) lets a receiver drop a repeated notice.
func webhookPayload(req plugin.Request[noticeParams], p noticeParams, when, sentAt time.Time, text string) []byte {
	b, _ := json.Marshal(map[string]any{
		"event":           "cookie_invalidation_notice",
		"service":         p.ServiceName,
		"hostname":        p.Hostname,
		"active_region":   p.ActiveRegion,
		"failover_time":   when.Format(time.RFC3339),
		"sent_at":         sentAt.Format(time.RFC3339),
		"message":         text,
		"extra_text":      strings.TrimSpace(p.ExtraText),
		"actions":         []string{"clear the cookies for " + p.Hostname, "log in again at https://" + p.Hostname},
		"run_id":          req.RunID,
		"step_id":         req.StepID,
		"idempotency_key": req.IdempotencyKey,
	})
	return b
}
