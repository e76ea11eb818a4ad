package cloudflare

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/zones"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// client is the slice of the Cloudflare API the action uses, through the
// SDK's zone and DNS record services (not the root client, which would link
// every Cloudflare service into the plugin).
type client struct {
	zones   *zones.ZoneService
	records *dns.RecordService
	// status is the HTTP status of the last response (0: none), seen by a
	// middleware, so that errors the SDK cannot decode are still classified.
	status int
	// retryAfter is the last response's Retry-After header ("" when none):
	// what Cloudflare asks a rate-limited client to wait (its API docs,
	// "Rate limits": a 429 carries Retry-After in seconds).
	retryAfter string
	token      string
}

func newClient(baseURL, token string, maxRetries int, timeout time.Duration, onRetry func(method, path string, status int)) *client {
	c := &client{token: token}
	opts := []option.RequestOption{
		option.WithBaseURL(baseURL),
		option.WithAPIToken(token),
		option.WithMaxRetries(maxRetries),
		option.WithHTTPClient(&http.Client{
			// A redirect would carry the token to wherever it points.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}),
		option.WithMiddleware(func(r *http.Request, next option.MiddlewareNext) (*http.Response, error) {
			res, err := next(r)
			c.status, c.retryAfter = 0, ""
			if res != nil {
				c.status, c.retryAfter = res.StatusCode, res.Header.Get("Retry-After")
			}
			if onRetry != nil && retried(c.status, err) && r.Context().Err() == nil {
				onRetry(r.Method, r.URL.Path, c.status)
			}
			return res, err
		}),
	}
	if timeout > 0 {
		opts = append(opts, option.WithRequestTimeout(timeout))
	}
	c.zones = zones.NewZoneService(opts...)
	c.records = dns.NewRecordService(opts...)
	return c
}

// retried reports whether the SDK retries a response like this one (its
// rule: network errors, 408, 409, 429, 5xx).
func retried(status int, err error) bool {
	if err != nil {
		return !errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
	}
	return status == http.StatusRequestTimeout || status == http.StatusConflict || status == http.StatusTooManyRequests || status >= 500
}

// zone is a resolved Cloudflare zone.
type zone struct {
	ID, Name string
}

func (c *client) zone(ctx context.Context, ref string) (zone, error) {
	ref = normalizeName(ref)
	if zoneIDPattern.MatchString(ref) {
		var q zones.ZoneGetParams
		q.ZoneID.Value, q.ZoneID.Present = ref, true
		c.status = 0
		z, err := c.zones.Get(ctx, q)
		if err != nil {
			if c.status == http.StatusNotFound || hasCode(err, 1001, 7003) {
				return zone{}, plugin.FatalCode("NoSuchZone", "zone %s not found (or the API token cannot see it)", ref)
			}
			return zone{}, c.classify(err, "reading zone %s", ref)
		}
		return zone{ID: z.ID, Name: normalizeName(z.Name)}, nil
	}
	var q zones.ZoneListParams
	q.Name.Value, q.Name.Present = ref, true
	q.PerPage.Value, q.PerPage.Present = 50, true
	c.status = 0
	page, err := c.zones.List(ctx, q)
	if err != nil {
		return zone{}, c.classify(err, "looking up zone %s", ref)
	}
	var found []zone
	for _, z := range page.Result {
		if normalizeName(z.Name) == ref {
			found = append(found, zone{ID: z.ID, Name: ref})
		}
	}
	switch len(found) {
	case 0:
		return zone{}, plugin.FatalCode("NoSuchZone", "no zone named %s (or the API token cannot see it)", ref)
	case 1:
		return found[0], nil
	}
	var ids []string
	for _, z := range found {
		ids = append(ids, z.ID)
	}
	return zone{}, plugin.FatalCode("AmbiguousZone", "%d zones are named %s (%s): give the zone id", len(found), ref, strings.Join(ids, ", "))
}

// nameInZone resolves the zone and the record name in it (@ is the apex),
// refusing a name outside the zone.
func (c *client) nameInZone(ctx context.Context, zref, name string) (zone, string, error) {
	z, err := c.zone(ctx, zref)
	if err != nil {
		return zone{}, "", err
	}
	name = normalizeName(name)
	if name == "@" {
		name = z.Name
	}
	if name != z.Name && !strings.HasSuffix(name, "."+z.Name) {
		return zone{}, "", plugin.FatalCode("NameOutsideZone", "%s is not in zone %s (%s)", name, z.Name, z.ID)
	}
	return z, name, nil
}

// conflicts reports whether records of types a and b cannot share a name.
func conflicts(a, b string) bool {
	return a == b || a == "CNAME" || b == "CNAME"
}

// recordsAt lists the records at exactly name (every type).
func (c *client) recordsAt(ctx context.Context, z zone, name string) ([]dns.RecordResponse, error) {
	var q dns.RecordListParams
	q.ZoneID.Value, q.ZoneID.Present = z.ID, true
	var n dns.RecordListParamsName
	n.Exact.Value, n.Exact.Present = name, true
	q.Name.Value, q.Name.Present = n, true
	q.PerPage.Value, q.PerPage.Present = 100, true
	c.status = 0
	page, err := c.records.List(ctx, q)
	if err != nil {
		return nil, c.classify(err, "listing records %s in zone %s", name, z.Name)
	}
	var out []dns.RecordResponse
	for _, r := range page.Result {
		if normalizeName(r.Name) == name {
			out = append(out, r)
		}
	}
	return out, nil
}

// current returns the record at name that a record of type typ replaces
// (same type, or a type that cannot coexist with it), or exists: false.
func (c *client) current(ctx context.Context, z zone, name, typ string) (Record, error) {
	all, err := c.recordsAt(ctx, z, name)
	if err != nil {
		return Record{}, err
	}
	var hits []dns.RecordResponse
	for _, r := range all {
		if conflicts(string(r.Type), typ) {
			hits = append(hits, r)
		}
	}
	switch len(hits) {
	case 0:
		return Record{ZoneID: z.ID, Name: name, Type: typ}, nil
	case 1:
		return fromResponse(z.ID, hits[0]), nil
	}
	var kinds []string
	for _, r := range hits {
		kinds = append(kinds, fmt.Sprintf("%s %s", r.Type, r.Content))
	}
	return Record{}, plugin.FatalCode("ConflictingRecords", "%s in zone %s has %d records a %s record replaces (%s); this action manages a single record, refusing to choose", name, z.Name, len(hits), typ, strings.Join(kinds, ", "))
}

func fromResponse(zoneID string, r dns.RecordResponse) Record {
	return Record{Exists: true, ZoneID: zoneID, ID: r.ID, Name: normalizeName(r.Name), Type: string(r.Type),
		Content: r.Content, TTL: int64(r.TTL), Proxied: r.Proxied}
}

// body is the request body for a record of r's type. TTL and proxied are
// always sent so that the record ends up exactly as r says.
func body(r Record, comment string) interface {
	dns.RecordNewParamsBodyUnion
	dns.RecordEditParamsBodyUnion
} {
	switch r.Type {
	case "A":
		var b dns.ARecordParam
		b.Name.Value, b.Name.Present = r.Name, true
		b.Type.Value, b.Type.Present = dns.ARecordTypeA, true
		b.Content.Value, b.Content.Present = r.Content, true
		b.TTL.Value, b.TTL.Present = dns.TTL(r.TTL), true
		b.Proxied.Value, b.Proxied.Present = r.Proxied, true
		if comment != "" {
			b.Comment.Value, b.Comment.Present = comment, true
		}
		return b
	case "AAAA":
		var b dns.AAAARecordParam
		b.Name.Value, b.Name.Present = r.Name, true
		b.Type.Value, b.Type.Present = dns.AAAARecordTypeAAAA, true
		b.Content.Value, b.Content.Present = r.Content, true
		b.TTL.Value, b.TTL.Present = dns.TTL(r.TTL), true
		b.Proxied.Value, b.Proxied.Present = r.Proxied, true
		if comment != "" {
			b.Comment.Value, b.Comment.Present = comment, true
		}
		return b
	default:
		var b dns.CNAMERecordParam
		b.Name.Value, b.Name.Present = r.Name, true
		b.Type.Value, b.Type.Present = dns.CNAMERecordTypeCNAME, true
		b.Content.Value, b.Content.Present = r.Content, true
		b.TTL.Value, b.TTL.Present = dns.TTL(r.TTL), true
		b.Proxied.Value, b.Proxied.Present = r.Proxied, true
		if comment != "" {
			b.Comment.Value, b.Comment.Present = comment, true
		}
		return b
	}
}

func (c *client) createRecord(ctx context.Context, z zone, want Record, comment string) (Record, error) {
	var q dns.RecordNewParams
	q.ZoneID.Value, q.ZoneID.Present = z.ID, true
	q.Body = body(want, comment)
	c.status = 0
	r, err := c.records.New(ctx, q)
	if err != nil {
		return Record{}, c.classify(err, "creating %s %s in zone %s", want.Type, want.Name, z.Name)
	}
	return fromResponse(z.ID, *r), nil
}

// editRecord changes cur into want with a PATCH, which keeps the fields the
// action does not manage (comment, tags, settings).
func (c *client) editRecord(ctx context.Context, z zone, cur, want Record) (Record, error) {
	var q dns.RecordEditParams
	q.ZoneID.Value, q.ZoneID.Present = z.ID, true
	q.Body = body(want, "")
	c.status = 0
	r, err := c.records.Edit(ctx, cur.ID, q)
	if err != nil {
		return Record{}, c.classify(err, "changing %s in zone %s from %s to %s", want.Name, z.Name, describe(cur), describe(want))
	}
	return fromResponse(z.ID, *r), nil
}

func (c *client) deleteRecord(ctx context.Context, z zone, cur Record) error {
	var q dns.RecordDeleteParams
	q.ZoneID.Value, q.ZoneID.Present = z.ID, true
	c.status = 0
	if _, err := c.records.Delete(ctx, cur.ID, q); err != nil {
		if c.status == http.StatusNotFound || hasCode(err, 81044) {
			return nil // already gone: the goal is reached
		}
		return c.classify(err, "deleting %s %s in zone %s", cur.Type, cur.Name, z.Name)
	}
	return nil
}

// hasCode reports whether err is an API error carrying one of codes.
func hasCode(err error, codes ...int64) bool {
	var ae *dns.Error
	if !errors.As(err, &ae) {
		return false
	}
	for _, e := range ae.Errors {
		for _, code := range codes {
			if e.Code == code {
				return true
			}
		}
	}
	return false
}

// Cloudflare's codes for a token it does not accept or that lacks the
// permission: 9106/9107 missing or malformed headers, 9109 invalid token,
// 10000 authentication error, 9103/6003 invalid headers.
var authCodes = []int64{6003, 9103, 9106, 9107, 9109, 10000}

// retryAfterOf passes the last response's Retry-After on to the engine
// with err, so that the step's next attempt waits at least that long.
func (c *client) retryAfterOf(err error) error {
	if d, ok := plugin.ParseRetryAfter(c.retryAfter, time.Now()); ok {
		return plugin.RetryAfter(err, d)
	}
	return err
}

// classify turns an SDK error into a plugin error: authentication problems
// fatal and said plainly, throttling and server errors (after the SDK's own
// retries) retryable, the rest fatal with Cloudflare's messages. Messages
// never include the token.
func (c *client) classify(err error, format string, args ...any) error {
	what := fmt.Sprintf(format, args...)
	if errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) {
		return err
	}
	status := c.status
	var ae *dns.Error
	detail := ""
	if errors.As(err, &ae) {
		status = ae.StatusCode
		var msgs []string
		for _, e := range ae.Errors {
			msgs = append(msgs, fmt.Sprintf("code %d: %s", e.Code, e.Message))
		}
		detail = strings.Join(msgs, "; ")
	}
	if detail == "" && status != 0 {
		detail = fmt.Sprintf("HTTP %d %s", status, http.StatusText(status))
	}
	detail = c.redact(detail)
	switch {
	case status == http.StatusUnauthorized || status == http.StatusForbidden || hasCode(err, authCodes...):
		return plugin.FatalCode("Unauthorized", "%s: Cloudflare rejected the API token (%s): check api_token / CLOUDFLARE_API_TOKEN and that the token may edit DNS in this zone", what, detail)
	case status == http.StatusTooManyRequests:
		return c.retryAfterOf(plugin.RetryableCode("RateLimited", "%s: Cloudflare is rate limiting (%s), still after the SDK's retries", what, detail))
	case status >= 500 || status == http.StatusRequestTimeout || status == http.StatusConflict:
		return c.retryAfterOf(plugin.RetryableCode("ServerError", "%s: Cloudflare answered %s, still after the SDK's retries", what, detail))
	case status >= 300 && status < 400:
		return plugin.FatalCode("Redirected", "%s: the API redirected (HTTP %d): check base_url", what, status)
	case status == http.StatusNotFound:
		return plugin.FatalCode("NotFound", "%s: not found (%s)", what, detail)
	case status >= 400:
		return plugin.FatalCode("Rejected", "%s: Cloudflare rejected the request (%s)", what, detail)
	case ae == nil && status == 0:
		// No response at all: a network error the SDK kept getting.
		return plugin.RetryableCode("Unreachable", "%s: cannot reach the Cloudflare API: %s", what, c.redact(networkError(err)))
	}
	return plugin.FatalCode("UnexpectedResponse", "%s: unexpected answer from Cloudflare: %s", what, c.redact(err.Error()))
}

func networkError(err error) string {
	var ue *url.Error
	if errors.As(err, &ue) {
		err = ue.Err
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return "timed out: " + err.Error()
	}
	return err.Error()
}

func (c *client) redact(s string) string {
	if len(c.token) >= 4 {
		s = strings.ReplaceAll(s, c.token, "[redacted]")
	}
	return s
}
