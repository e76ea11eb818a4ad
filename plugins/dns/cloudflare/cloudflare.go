// Package cloudflare is the cloudflare_record action of runbook-plugin-dns:
// it points a DNS name at a new target in a Cloudflare zone (a CNAME to the
// active region's load balancer, or an A/AAAA address), through the official
// cloudflare-go SDK, and returns the previous record so that a rollback step
// can put it back (or delete a record the step created).
package cloudflare

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"regexp"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// DefaultBaseURL is Cloudflare's v4 API.
const DefaultBaseURL = "https://api.cloudflare.com/client/v4"

// Record is one DNS record as the action reads and writes it; it is also the
// shape of the previous and record outputs, so `restore` takes a previous
// output as it is.
type Record struct {
	Exists  bool   `json:"exists" doc:"False when there was no such record."`
	ZoneID  string `json:"zone_id" doc:"The zone's id."`
	ID      string `json:"id,omitempty" doc:"The record's id (informational)."`
	Name    string `json:"name" doc:"Fully qualified name, lower case, without the trailing dot."`
	Type    string `json:"type" doc:"CNAME, A or AAAA."`
	Content string `json:"content,omitempty" doc:"The target host name (CNAME) or address (A, AAAA)."`
	TTL     int64  `json:"ttl,omitempty" doc:"TTL in seconds; 1 means automatic."`
	Proxied bool   `json:"proxied" doc:"Whether Cloudflare proxies the traffic (orange cloud)."`
}

// Params of cloudflare_record.
type Params struct {
	Zone    string  `json:"zone" doc:"The zone: its name (myorg.com) or its 32-character id. Required unless restore gives the zone id."`
	Name    string  `json:"name" doc:"Fully qualified record name, e.g. spacelift.myorg.com (@ for the zone apex). Required unless restore gives it."`
	Type    string  `json:"type" enum:"CNAME,A,AAAA" doc:"Record type; default CNAME."`
	Content string  `json:"content" doc:"The new target: a host name for CNAME, an address for A/AAAA."`
	TTL     *int64  `json:"ttl" doc:"TTL in seconds (1 = automatic; 60..86400, 30 on Enterprise). Default: keep the record's TTL, 60 for a new record. A proxied record is always sent with TTL 1 (automatic), whatever ttl says."`
	Proxied *bool   `json:"proxied" doc:"Proxy through Cloudflare. Default: keep the record's setting, false for a new record."`
	Delete  bool    `json:"delete" doc:"Delete the record (name, type) instead of writing it."`
	Restore *Record `json:"restore" doc:"Put back a record as an earlier step's previous output describes it: write it if it existed, delete it if it did not."`
	Conn
}

// Conn is how an action reaches the Cloudflare API.
type Conn struct {
	APIToken       string        `json:"api_token" secret:"true" doc:"A Cloudflare API token with DNS edit permission on the zone (DNS read for a check); default: $CLOUDFLARE_API_TOKEN."`
	BaseURL        string        `json:"base_url" doc:"The API's base URL; default: Cloudflare's (https://api.cloudflare.com/client/v4). http only for loopback hosts."`
	MaxRetries     int           `json:"max_retries" default:"4" min:"0" doc:"How often the SDK retries a request on HTTP 408/409/429/5xx or a network error (with backoff, honouring Retry-After) before the step fails retryable."`
	RequestTimeout time.Duration `json:"request_timeout" default:"30s" doc:"Limit for one HTTP request."`
}

// Outputs of cloudflare_record.
type Outputs struct {
	Previous Record        `json:"previous" doc:"The record before the step (exists false if there was none); give it as restore to undo."`
	Record   Record        `json:"record" doc:"The record after the step (exists false after a delete)."`
	Changed  bool          `json:"changed" doc:"Whether the step changed anything."`
	Duration time.Duration `json:"duration"`
}

// Action returns the cloudflare_record action.
func Action() plugin.Action {
	a := &actor{}
	return plugin.NewAction("cloudflare_record", a.apply).
		Doc("Writes a Cloudflare DNS record (CNAME, A or AAAA: content, TTL, proxied) in a zone given by name or id, or deletes it. " +
			"Updates the record in place (PATCH, keeping its comment and tags), replacing a record of a conflicting type at the name; " +
			"creates it if there is none. Outputs the previous record (or exists: false), so a rollback is `restore: <previous>`. " +
			"Idempotent: a record already as requested is left alone.").
		Idempotent().
		Validate(validate).
		Plan(a.plan)
}

// actor carries the action's methods; it has no state.
type actor struct{}

var zoneIDPattern = regexp.MustCompile(`^[0-9a-f]{32}$`)

func validate(req plugin.ValidateRequest[Params]) []plugin.Diagnostic {
	p := req.Params
	var diags []plugin.Diagnostic
	modes := 0
	for _, set := range []bool{p.Content != "" || req.Unknown("/content"), p.Delete, p.Restore != nil || req.Unknown("/restore")} {
		if set {
			modes++
		}
	}
	if modes != 1 {
		diags = append(diags, plugin.Errorf("", "give exactly one of content, delete: true, or restore"))
	}
	if p.Restore == nil && !req.Unknown("/restore") {
		if p.Name == "" && !req.Unknown("/name") {
			diags = append(diags, plugin.Errorf("/name", "name is required"))
		}
		if p.Zone == "" && !req.Unknown("/zone") {
			diags = append(diags, plugin.Errorf("/zone", "zone is required"))
		}
	}
	if p.Delete && p.Type == "" && !req.Unknown("/type") {
		diags = append(diags, plugin.Errorf("/type", "delete needs the record's type"))
	}
	if p.Content != "" && !req.Unknown("/content") && !req.Unknown("/type") {
		if err := checkContent(typeOr(p.Type), p.Content); err != nil {
			diags = append(diags, plugin.Errorf("/content", "%v", err))
		}
	}
	if p.TTL != nil && !req.Unknown("/ttl") {
		if err := checkTTL(*p.TTL); err != nil {
			diags = append(diags, plugin.Errorf("/ttl", "%v", err))
		}
	}
	if p.BaseURL != "" && !req.Unknown("/base_url") {
		if err := checkBaseURL(p.BaseURL); err != nil {
			diags = append(diags, plugin.Errorf("/base_url", "%v", err))
		}
	}
	return diags
}

func typeOr(t string) string {
	if t == "" {
		return "CNAME"
	}
	return t
}

func checkTTL(ttl int64) error {
	if ttl != 1 && (ttl < 30 || ttl > 86400) {
		return fmt.Errorf("ttl %d is out of range: 1 (automatic) or 30..86400 seconds", ttl)
	}
	return nil
}

func checkContent(typ, content string) error {
	switch typ {
	case "A":
		if ip := net.ParseIP(content); ip == nil || ip.To4() == nil {
			return fmt.Errorf("%q is not an IPv4 address (an A record's content)", content)
		}
	case "AAAA":
		if ip := net.ParseIP(content); ip == nil || ip.To4() != nil {
			return fmt.Errorf("%q is not an IPv6 address (an AAAA record's content)", content)
		}
	case "CNAME":
		h := strings.TrimSuffix(content, ".")
		if h == "" || net.ParseIP(h) != nil || strings.ContainsAny(h, " /:@") {
			return fmt.Errorf("%q is not a host name (a CNAME's content; for an address use type A)", content)
		}
	}
	return nil
}

func checkBaseURL(raw string) error {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return fmt.Errorf("base_url must be an absolute URL")
	}
	switch u.Scheme {
	case "https":
		return nil
	case "http":
		h := u.Hostname()
		if ip := net.ParseIP(h); strings.EqualFold(h, "localhost") || (ip != nil && ip.IsLoopback()) {
			return nil
		}
		return fmt.Errorf("base_url must use https (http is allowed only for loopback hosts)")
	}
	return fmt.Errorf("base_url must be an https URL")
}

// normalizeName is the comparable form of a DNS name: lower case, no
// trailing dot.
func normalizeName(n string) string {
	return strings.TrimSuffix(strings.ToLower(strings.TrimSpace(n)), ".")
}

// intent is what the step asks for, before the current record is known:
// TTL and proxied may be "keep what is there".
type intent struct {
	exists  bool
	name    string // may be "@"
	typ     string
	content string
	ttl     *int64
	proxied *bool
}

func (p Params) intent() (intent, error) {
	switch {
	case p.Restore != nil:
		r := *p.Restore
		if r.Name == "" || r.Type == "" {
			return intent{}, plugin.FatalCode("InvalidParams", "restore needs at least name and type (give an earlier step's previous output)")
		}
		if r.Exists && r.Content == "" {
			return intent{}, plugin.FatalCode("InvalidParams", "restore of %s %s has no content", r.Type, r.Name)
		}
		ttl, proxied := r.TTL, r.Proxied
		if ttl == 0 {
			ttl = 1
		}
		return intent{exists: r.Exists, name: r.Name, typ: r.Type, content: r.Content, ttl: &ttl, proxied: &proxied}, nil
	case p.Delete:
		return intent{name: p.Name, typ: p.Type}, nil
	default:
		return intent{exists: true, name: p.Name, typ: typeOr(p.Type), content: p.Content, ttl: p.TTL, proxied: p.Proxied}, nil
	}
}

// resolve turns the intent into the record wanted, given the current one.
func (in intent) resolve(zoneID, name string, cur Record) (Record, error) {
	if !in.exists {
		return Record{ZoneID: zoneID, Name: name, Type: in.typ}, nil
	}
	if err := checkContent(in.typ, in.content); err != nil {
		return Record{}, plugin.FatalCode("InvalidParams", "%v", err)
	}
	want := Record{Exists: true, ZoneID: zoneID, Name: name, Type: in.typ, Content: in.content, TTL: 60}
	if cur.Exists {
		want.ID, want.TTL, want.Proxied = cur.ID, cur.TTL, cur.Proxied
	}
	if in.proxied != nil {
		want.Proxied = *in.proxied
	}
	if in.ttl != nil {
		if err := checkTTL(*in.ttl); err != nil {
			return Record{}, plugin.FatalCode("InvalidParams", "%v", err)
		}
		want.TTL = *in.ttl
	}
	if want.Proxied {
		// Cloudflare answers for proxied records itself and their TTL is
		// automatic: the API reference's ttl field says "Setting to 1 means
		// 'automatic'", and Cloudflare's docs (DNS > Proxy status) say a
		// proxied record's TTL is Auto and cannot be edited. So 1 is sent,
		// whatever ttl the step gives (apply reports that it was not used).
		want.TTL = 1
	}
	return want, nil
}

// same reports whether two records answer the same.
func same(a, b Record) bool {
	if a.Exists != b.Exists {
		return false
	}
	if !a.Exists {
		return true
	}
	return a.Type == b.Type && a.TTL == b.TTL && a.Proxied == b.Proxied &&
		strings.EqualFold(strings.TrimSuffix(a.Content, "."), strings.TrimSuffix(b.Content, "."))
}

func describe(r Record) string {
	if !r.Exists {
		return "(none)"
	}
	ttl := fmt.Sprintf("ttl %d", r.TTL)
	if r.TTL == 1 {
		ttl = "ttl auto"
	}
	proxied := ""
	if r.Proxied {
		proxied = ", proxied"
	}
	return fmt.Sprintf("%s %s (%s%s)", r.Type, r.Content, ttl, proxied)
}

// token returns the API token: the parameter, else the environment.
func (p Conn) token() (string, error) {
	if p.APIToken != "" {
		return p.APIToken, nil
	}
	if t := os.Getenv("CLOUDFLARE_API_TOKEN"); t != "" {
		return t, nil
	}
	return "", plugin.FatalCode("MissingCredentials", "no Cloudflare API token: set api_token (or CLOUDFLARE_API_TOKEN in the plugin's environment)")
}

// state is what read finds: the zone, the record wanted and the record it
// replaces.
type state struct {
	zone      zone
	want, cur Record
}

func (a *actor) read(ctx context.Context, api *client, p Params) (state, error) {
	in, err := p.intent()
	if err != nil {
		return state{}, err
	}
	zref := p.Zone
	if zref == "" && p.Restore != nil {
		zref = p.Restore.ZoneID
	}
	if zref == "" {
		return state{}, plugin.FatalCode("InvalidParams", "zone is required")
	}
	z, name, err := api.nameInZone(ctx, zref, in.name)
	if err != nil {
		return state{}, err
	}
	cur, err := api.current(ctx, z, name, in.typ)
	if err != nil {
		return state{}, err
	}
	want, err := in.resolve(z.ID, name, cur)
	if err != nil {
		return state{}, err
	}
	if !want.Exists && cur.Exists && cur.Type != want.Type {
		// Deleting a record that is not there (one of a conflicting type is).
		cur = Record{ZoneID: z.ID, Name: name, Type: want.Type}
	}
	return state{zone: z, want: want, cur: cur}, nil
}

func (a *actor) client(p Conn, onRetry func(method, path string, status int)) (*client, error) {
	tok, err := p.token()
	if err != nil {
		return nil, err
	}
	base := p.BaseURL
	if base == "" {
		base = DefaultBaseURL
	}
	if err := checkBaseURL(base); err != nil {
		return nil, plugin.FatalCode("InvalidParams", "%v", err)
	}
	return newClient(base, tok, p.MaxRetries, p.RequestTimeout, onRetry), nil
}

func (a *actor) apply(ctx context.Context, req plugin.Request[Params]) (Outputs, error) {
	start := time.Now()
	p := req.Params
	api, err := a.client(p.Conn, retryProgress(req.Progress))
	if err != nil {
		return Outputs{}, err
	}
	st, err := a.read(ctx, api, p)
	if err != nil {
		return Outputs{}, err
	}
	if st.want.Exists && st.want.Proxied && p.TTL != nil && *p.TTL != 1 {
		req.Progress(fmt.Sprintf("the record is proxied: its TTL is automatic (1), ttl %d is not used", *p.TTL), "name", st.want.Name)
	}
	// Reported (and so journaled) before anything changes, so the old record
	// survives an interruption between the change and the step's outputs.
	req.Progress("current record: "+describe(st.cur), "zone", st.zone.Name, "name", st.want.Name)
	out := Outputs{Previous: st.cur}
	if same(st.cur, st.want) {
		req.Progress("record already as requested: nothing to do", "record", describe(st.want))
		out.Record, out.Duration = st.cur, time.Since(start)
		if !out.Record.Exists {
			out.Record = st.want
		}
		return out, nil
	}
	var rec Record
	switch {
	case !st.want.Exists:
		err = api.deleteRecord(ctx, st.zone, st.cur)
		rec = st.want
	case st.cur.Exists:
		rec, err = api.editRecord(ctx, st.zone, st.cur, st.want)
	default:
		rec, err = api.createRecord(ctx, st.zone, st.want, fmt.Sprintf("created by runbook run %s step %s", req.RunID, req.StepID))
	}
	if err != nil {
		return Outputs{}, err
	}
	req.Log.Info("cloudflare record changed", "zone", st.zone.Name, "name", st.want.Name, "before", describe(st.cur), "after", describe(rec))
	req.Progress("record changed: "+describe(st.cur)+" -> "+describe(rec), "zone", st.zone.Name, "name", st.want.Name)
	out.Record, out.Changed, out.Duration = rec, true, time.Since(start)
	return out, nil
}

// retryProgress reports the SDK's retries as progress.
func retryProgress(progress func(string, ...any)) func(method, path string, status int) {
	return func(method, path string, status int) {
		progress(fmt.Sprintf("Cloudflare answered %s; the SDK retries", statusText(status)), "request", method+" "+path)
	}
}

func statusText(status int) string {
	if status == 0 {
		return "with a network error"
	}
	return fmt.Sprintf("HTTP %d", status)
}

func (a *actor) plan(ctx context.Context, req plugin.PlanRequest[Params]) (plugin.Plan, error) {
	p := req.Params
	resource := fmt.Sprintf("cloudflare record %s %s", typeOr(p.Type), p.Name)
	for _, path := range []string{"/zone", "/name", "/type", "/restore", "/api_token", "/base_url", "/delete"} {
		if req.Unknown(path) {
			return plugin.Plan{Summary: "write a Cloudflare record known only at run time", Changes: []plugin.Change{{Resource: resource, AfterUnknown: true, Kind: plugin.ChangeUpdate}}}, nil
		}
	}
	if req.Unknown("/content") {
		p.Content = "unknown.invalid" // a placeholder that passes the content check; After is reported unknown
		if p.Type == "A" {
			p.Content = "192.0.2.1"
		} else if p.Type == "AAAA" {
			p.Content = "2001:db8::1"
		}
	}
	api, err := a.client(p.Conn, nil)
	if err != nil {
		return plugin.Plan{}, err
	}
	st, err := a.read(ctx, api, p)
	if err != nil {
		return plugin.Plan{}, err
	}
	ch := plugin.Change{
		Resource: fmt.Sprintf("cloudflare record %s %s (zone %s)", st.want.Type, st.want.Name, st.zone.Name),
		Before:   recordValue(st.cur), After: recordValue(st.want),
	}
	unknown := req.Unknown("/content") || req.Unknown("/ttl") || req.Unknown("/proxied")
	if unknown {
		ch.After, ch.AfterUnknown = nil, true
	}
	switch {
	case unknown:
		ch.Kind = plugin.ChangeUpdate
		if !st.cur.Exists {
			ch.Kind = plugin.ChangeCreate
		}
	case same(st.cur, st.want):
		ch.Kind = plugin.ChangeNoop
	case !st.cur.Exists:
		ch.Kind = plugin.ChangeCreate
	case !st.want.Exists:
		ch.Kind = plugin.ChangeDelete
	case st.cur.Type != st.want.Type:
		ch.Kind = plugin.ChangeReplace
	default:
		ch.Kind = plugin.ChangeUpdate
	}
	summary := fmt.Sprintf("%s: %s -> %s", st.want.Name, describe(st.cur), describe(st.want))
	if unknown {
		summary = fmt.Sprintf("%s: %s -> (known at run time)", st.want.Name, describe(st.cur))
	}
	return plugin.Plan{Summary: summary, Changes: []plugin.Change{ch}}, nil
}

// recordValue is a record's plan form: nil when it does not exist.
func recordValue(r Record) any {
	if !r.Exists {
		return nil
	}
	r.ID = ""
	return r
}
