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
	"net/url"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// The two operations the plugin sends. Spacelift exchanges an API key for a
// short-lived JWT with apiKeyUser; workerPoolCycle returns a Boolean.
const (
	tokenMutation = `mutation RunbookAPIKeyToken($id: ID!, $secret: String!) { apiKeyUser(id: $id, secret: $secret) { jwt } }`
	cycleMutation = `mutation RunbookWorkerPoolCycle($id: ID!) { workerPoolCycle(id: $id) }`
)

// graphQLClient talks to one Spacelift GraphQL endpoint.
type graphQLClient struct {
	http     *http.Client
	endpoint string
	// redact scrubs the credentials from server text before it is shown.
	redact func(string) string
}

type gqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName,omitempty"`
	Variables     map[string]any `json:"variables"`
}

type gqlError struct {
	Message    string         `json:"message"`
	Path       []any          `json:"path"`
	Extensions map[string]any `json:"extensions"`
}

type gqlResponse struct {
	Data   json.RawMessage `json:"data"`
	Errors []gqlError      `json:"errors"`
}

// do posts one operation and decodes data into dst. Failures come back as
// *plugin.Error: retryable for 429, 5xx, network errors and rate-limit
// GraphQL errors; fatal for the rest. what names the operation in errors.
func (c *graphQLClient) do(ctx context.Context, what, jwt string, req gqlRequest, dst any) error {
	body, err := json.Marshal(req)
	if err != nil {
		return err
	}
	hr, err := http.NewRequestWithContext(ctx, http.MethodPost, c.endpoint, bytes.NewReader(body))
	if err != nil {
		return plugin.FatalCode("InvalidParams", "%s: invalid endpoint", what)
	}
	hr.Header.Set("Content-Type", "application/json")
	hr.Header.Set("Accept", "application/json")
	hr.Header.Set("User-Agent", "runbook-plugin-spacelift/"+version)
	if jwt != "" {
		hr.Header.Set("Authorization", "Bearer "+jwt)
	}
	resp, err := c.http.Do(hr)
	if err != nil {
		if ctx.Err() != nil {
			return ctx.Err()
		}
		var ue *url.Error
		if errors.As(err, &ue) {
			err = ue.Err // drop the method and URL net/http adds
		}
		var ne net.Error
		if errors.As(err, &ne) && ne.Timeout() {
			return plugin.RetryableCode("Timeout", "%s: no answer from %s in time: %s", what, c.host(), c.redact(err.Error()))
		}
		return plugin.RetryableCode("Unreachable", "%s: cannot reach %s: %s", what, c.host(), c.redact(err.Error()))
	}
	defer resp.Body.Close()
	raw, err := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if err != nil {
		return plugin.RetryableCode("Unreachable", "%s: reading the answer from %s: %v", what, c.host(), err)
	}
	var gr gqlResponse
	jsonErr := json.Unmarshal(raw, &gr)

	switch s := resp.StatusCode; {
	case s == http.StatusUnauthorized || s == http.StatusForbidden:
		return plugin.FatalCode("Unauthorized", "%s: %s answered HTTP %d %s%s: check the API key id and secret, and that the key may do this", what, c.host(), s, http.StatusText(s), c.detail(gr, raw))
	case s == http.StatusTooManyRequests:
		return retryAfterOf(resp, plugin.RetryableCode("RateLimited", "%s: %s is rate limiting (HTTP 429)%s", what, c.host(), c.detail(gr, raw)))
	case s >= 500 || s == http.StatusRequestTimeout:
		return retryAfterOf(resp, plugin.RetryableCode("ServerError", "%s: %s answered HTTP %d %s%s", what, c.host(), s, http.StatusText(s), c.detail(gr, raw)))
	case s == http.StatusNotFound:
		return plugin.FatalCode("NotFound", "%s: %s has no GraphQL API at this URL (HTTP 404): check endpoint/hostname", what, c.host())
	case s >= 300 && s < 400:
		return plugin.FatalCode("Redirected", "%s: %s redirected (HTTP %d): give the final GraphQL URL as endpoint", what, c.host(), s)
	case s != http.StatusOK && len(gr.Errors) == 0:
		return plugin.FatalCode("BadRequest", "%s: %s answered HTTP %d %s%s", what, c.host(), s, http.StatusText(s), c.detail(gr, raw))
	}
	if jsonErr != nil {
		return plugin.FatalCode("NotGraphQL", "%s: the answer from %s is not a GraphQL response (HTTP %d, %q...): check endpoint/hostname", what, c.host(), resp.StatusCode, c.redact(excerpt(raw)))
	}
	if len(gr.Errors) > 0 {
		return c.graphQLError(what, gr.Errors)
	}
	if len(gr.Data) == 0 || string(gr.Data) == "null" {
		return plugin.FatalCode("EmptyResponse", "%s: %s returned neither data nor errors", what, c.host())
	}
	if err := json.Unmarshal(gr.Data, dst); err != nil {
		return plugin.FatalCode("UnexpectedResponse", "%s: unexpected data from %s: %v", what, c.host(), err)
	}
	return nil
}

// graphQLError maps a GraphQL errors array: authentication and permission
// problems are fatal and say so, rate limits and internal errors are
// retryable, anything else (a missing pool, a schema mismatch) is fatal.
func (c *graphQLClient) graphQLError(what string, errs []gqlError) error {
	var msgs []string
	kind := "other"
	for _, e := range errs {
		m := c.redact(strings.TrimSpace(e.Message))
		msgs = append(msgs, m)
		code, _ := e.Extensions["code"].(string)
		probe := strings.ToLower(m + " " + code)
		switch {
		case containsAny(probe, "unauthorized", "unauthenticated", "forbidden", "permission", "access denied", "not allowed", "invalid token", "token expired"):
			kind = "auth"
		case kind != "auth" && containsAny(probe, "rate limit", "rate_limit", "ratelimit", "too many requests", "throttl"):
			kind = "rate"
		case kind == "other" && containsAny(probe, "internal server error", "internal error", "internal_server_error", "temporarily unavailable", "try again"):
			kind = "transient"
		}
	}
	joined := strings.Join(msgs, "; ")
	switch kind {
	case "auth":
		return plugin.FatalCode("Unauthorized", "%s: Spacelift refused: %s (check the API key id and secret, and that the key is an admin of the worker pool's space)", what, joined)
	case "rate":
		return plugin.RetryableCode("RateLimited", "%s: Spacelift is rate limiting: %s", what, joined)
	case "transient":
		return plugin.RetryableCode("ServerError", "%s: Spacelift reported a temporary error: %s", what, joined)
	}
	return plugin.FatalCode("GraphQLError", "%s: Spacelift reported: %s", what, joined)
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

func (c *graphQLClient) host() string {
	if u, err := url.Parse(c.endpoint); err == nil && u.Host != "" {
		return u.Host
	}
	return "the endpoint"
}

// detail is the server's explanation for an HTTP error: GraphQL error
// messages if it sent some, else the first line of the body.
func (c *graphQLClient) detail(gr gqlResponse, raw []byte) string {
	var msgs []string
	for _, e := range gr.Errors {
		msgs = append(msgs, c.redact(e.Message))
	}
	if len(msgs) > 0 {
		return ": " + strings.Join(msgs, "; ")
	}
	if e := c.redact(excerpt(raw)); e != "" {
		return ": " + e
	}
	return ""
}

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

// token exchanges an API key for a JWT.
func (c *graphQLClient) token(ctx context.Context, keyID, secret string) (string, error) {
	var data struct {
		APIKeyUser *struct {
			JWT string `json:"jwt"`
		} `json:"apiKeyUser"`
	}
	err := c.do(ctx, "exchanging the API key for a token", "", gqlRequest{
		Query: tokenMutation, OperationName: "RunbookAPIKeyToken",
		Variables: map[string]any{"id": keyID, "secret": secret},
	}, &data)
	if err != nil {
		return "", err
	}
	if data.APIKeyUser == nil || data.APIKeyUser.JWT == "" {
		return "", plugin.FatalCode("Unauthorized", "exchanging the API key for a token: Spacelift did not accept the API key (no token returned): check the API key id and secret")
	}
	return data.APIKeyUser.JWT, nil
}

// cycle sends workerPoolCycle and returns what the API answered.
func (c *graphQLClient) cycle(ctx context.Context, jwt, poolID string) (bool, error) {
	var data struct {
		WorkerPoolCycle *bool `json:"workerPoolCycle"`
	}
	err := c.do(ctx, fmt.Sprintf("cycling worker pool %s", poolID), jwt, gqlRequest{
		Query: cycleMutation, OperationName: "RunbookWorkerPoolCycle",
		Variables: map[string]any{"id": poolID},
	}, &data)
	if err != nil {
		return false, err
	}
	if data.WorkerPoolCycle == nil {
		return false, plugin.FatalCode("UnexpectedResponse", "cycling worker pool %s: Spacelift returned no result for workerPoolCycle", poolID)
	}
	return *data.WorkerPoolCycle, nil
}

func newHTTPClient(timeout time.Duration) *http.Client {
	return &http.Client{
		Timeout: timeout,
		// A redirect would resend the API key to wherever it points.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}
}

// redactor replaces each secret (at least 4 characters) with [redacted].
func redactor(secrets ...string) func(string) string {
	var ss []string
	for _, s := range secrets {
		if len(s) >= 4 {
			ss = append(ss, s)
		}
	}
	return func(s string) string {
		for _, x := range ss {
			s = strings.ReplaceAll(s, x, "[redacted]")
		}
		return s
	}
}

// retryAfterOf passes a 429 or 5xx answer's Retry-After header (RFC 9110,
// section 10.2.3) on to the engine with err, so that the step's next
// attempt waits at least that long.
func retryAfterOf(resp *http.Response, err error) error {
	if d, ok := plugin.ParseRetryAfter(resp.Header.Get("Retry-After"), time.Now()); ok {
		return plugin.RetryAfter(err, d)
	}
	return err
}
