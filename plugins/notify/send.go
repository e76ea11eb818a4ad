package main

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"
)

// sender posts JSON to webhooks, retrying transient failures. Its clock and
// sleep are fields so tests can see the waits without waiting.
type sender struct {
	client *http.Client
	now    func() time.Time
	// sleep waits d or until ctx ends.
	sleep func(ctx context.Context, d time.Duration) error
}

func newSender() *sender {
	return &sender{
		client: &http.Client{
			// A webhook that redirects is misconfigured; following it would
			// turn the POST into a GET and report success for nothing.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		},
		now:   time.Now,
		sleep: sleepCtx,
	}
}

func sleepCtx(ctx context.Context, d time.Duration) error {
	t := time.NewTimer(d)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retryPolicy bounds the retries of one delivery.
type retryPolicy struct {
	attempts       int
	delay          time.Duration // first backoff; doubles per attempt
	maxDelay       time.Duration
	requestTimeout time.Duration
}

// delivery is one POST of a notice to one channel.
type delivery struct {
	kind    string // "slack" or "webhook": the only name errors and logs use
	url     string
	headers map[string]string
	body    []byte
	// redact scrubs the channel's secrets from anything shown to people.
	redact func(string) string
	// onRetry reports a transient failure before the wait.
	onRetry func(attempt int, cause string, wait time.Duration)
}

// deliveryError is a failed delivery; retryable reports whether a later
// attempt of the step might succeed.
type deliveryError struct {
	kind      string
	msg       string
	retryable bool
}

func (e *deliveryError) Error() string { return e.kind + ": " + e.msg }

// post delivers d, retrying 408/429/5xx and transport errors with
// exponential backoff (or the server's Retry-After) until the attempts run
// out or the next wait would pass the context's deadline.
func (s *sender) post(ctx context.Context, d delivery, p retryPolicy) (attempts int, err error) {
	for attempt := 1; ; attempt++ {
		status, retryAfter, detail, terr := s.once(ctx, d, p.requestTimeout)
		if ctx.Err() != nil {
			return attempt, &deliveryError{kind: d.kind, msg: "interrupted: " + ctx.Err().Error(), retryable: errors.Is(ctx.Err(), context.DeadlineExceeded)}
		}
		var cause string
		switch {
		case terr != nil:
			cause = d.redact(terr.Error())
		case status >= 200 && status < 300:
			return attempt, nil
		case status == http.StatusRequestTimeout || status == http.StatusTooManyRequests || status >= 500:
			cause = httpCause(status, d.redact(detail))
		default:
			return attempt, &deliveryError{kind: d.kind, msg: rejectedMessage(d.kind, status, d.redact(detail))}
		}
		if attempt >= p.attempts {
			return attempt, &deliveryError{kind: d.kind, msg: fmt.Sprintf("%s (gave up after %d attempts)", cause, attempt), retryable: true}
		}
		wait := backoff(p, attempt)
		if retryAfter > 0 {
			wait = retryAfter
		}
		if dl, ok := ctx.Deadline(); ok && s.now().Add(wait).After(dl) {
			return attempt, &deliveryError{kind: d.kind, msg: fmt.Sprintf("%s; the next attempt (in %s) would pass the step's deadline", cause, wait), retryable: true}
		}
		if d.onRetry != nil {
			d.onRetry(attempt, cause, wait)
		}
		if err := s.sleep(ctx, wait); err != nil {
			return attempt, &deliveryError{kind: d.kind, msg: fmt.Sprintf("%s; interrupted while waiting to retry: %v", cause, err), retryable: errors.Is(err, context.DeadlineExceeded)}
		}
	}
}

// once makes one POST and returns the status, the server's Retry-After (0
// if none) and a short excerpt of the response body.
func (s *sender) once(ctx context.Context, d delivery, timeout time.Duration) (status int, retryAfter time.Duration, detail string, err error) {
	if timeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, timeout)
		defer cancel()
	}
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, d.url, bytes.NewReader(d.body))
	if err != nil {
		return 0, 0, "", errors.New("invalid request (check the URL)")
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("User-Agent", "runbook-plugin-notify/"+version)
	for k, v := range d.headers {
		req.Header.Set(k, v)
	}
	resp, err := s.client.Do(req)
	if err != nil {
		return 0, 0, "", transportError(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 512))
	return resp.StatusCode, parseRetryAfter(resp.Header.Get("Retry-After"), s.now()), excerpt(b), nil
}

// transportError drops the URL that net/http puts into its errors.
func transportError(err error) error {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return fmt.Errorf("request timed out: %v", err)
	}
	return fmt.Errorf("request failed: %v", err)
}

func httpCause(status int, detail string) string {
	s := fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	if detail != "" {
		s += ": " + detail
	}
	return s
}

func rejectedMessage(kind string, status int, detail string) string {
	msg := "the receiver rejected the notice with " + httpCause(status, detail)
	switch {
	case status >= 300 && status < 400:
		msg += " (webhooks must not redirect: use the final URL)"
	case status == http.StatusUnauthorized || status == http.StatusForbidden || status == http.StatusNotFound || status == http.StatusGone:
		if kind == "slack" {
			msg += " (check that the Slack incoming webhook URL is current and its channel still exists)"
		} else {
			msg += " (check the webhook URL and its authentication headers)"
		}
	}
	return msg
}

// excerpt keeps the first line of a response body, short enough for an
// error message.
func excerpt(b []byte) string {
	s := strings.TrimSpace(string(b))
	if i := strings.IndexAny(s, "\r\n"); i >= 0 {
		s = s[:i]
	}
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}

// parseRetryAfter reads Retry-After as seconds or an HTTP date.
func parseRetryAfter(v string, now time.Time) time.Duration {
	v = strings.TrimSpace(v)
	if v == "" {
		return 0
	}
	if n, err := strconv.Atoi(v); err == nil {
		if n < 0 {
			return 0
		}
		return time.Duration(n) * time.Second
	}
	if t, err := http.ParseTime(v); err == nil && t.After(now) {
		return t.Sub(now)
	}
	return 0
}

// backoff is the wait after the attempt-th failure: delay doubling up to
// maxDelay, with the upper half jittered so that many runners do not retry
// in step.
func backoff(p retryPolicy, attempt int) time.Duration {
	d := p.delay
	for i := 1; i < attempt && d < p.maxDelay; i++ {
		d *= 2
	}
	if d > p.maxDelay {
		d = p.maxDelay
	}
	if d <= 1 {
		return d
	}
	half := d / 2
	return half + rand.N(half+1)
}

// redactor returns a function that replaces every secret, and the parts of
// the secret URLs a server might echo (host, path, query), with [redacted].
func redactor(secrets ...string) func(string) string {
	var parts []string
	add := func(s string) {
		if len(s) >= 4 {
			parts = append(parts, s)
		}
	}
	for _, s := range secrets {
		add(s)
		if u, err := url.Parse(s); err == nil && u.Host != "" {
			add(u.Host)
			add(u.Hostname())
			if u.Path != "/" {
				add(u.Path)
				add(strings.TrimPrefix(u.Path, "/"))
			}
			add(u.RawQuery)
			if u.User != nil {
				add(u.User.String())
			}
		}
	}
	// Longest first, so a URL is replaced whole before its host is.
	for i := 1; i < len(parts); i++ {
		for j := i; j > 0 && len(parts[j]) > len(parts[j-1]); j-- {
			parts[j], parts[j-1] = parts[j-1], parts[j]
		}
	}
	return func(s string) string {
		for _, p := range parts {
			s = strings.ReplaceAll(s, p, "[redacted]")
		}
		return s
	}
}

// checkURL checks a webhook URL without ever echoing it: https, or http to
// a loopback address (a local receiver in tests or a sidecar).
func checkURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return errors.New("is not an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		if isLoopback(u.Hostname()) {
			return nil
		}
		return errors.New("must use https (http is allowed only for loopback addresses)")
	}
	return errors.New("must be an https URL")
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
