// Package cloudflareapi is the one local stand-in for Cloudflare's v4 API,
// serving both the dns plugin's tests and the simulation scenarios: the zones
// and DNS records endpoints that the plugin's Cloudflare actions call (through
// cloudflare-go), with Cloudflare's {success, errors, messages, result,
// result_info} envelope, Bearer token checks, and Cloudflare's own validation
// of record changes (CNAME conflicts at a name, TTL ranges, content by type,
// proxied records' automatic TTL).
//
// It listens on 127.0.0.1 only. Tests seed zones and records, point the
// action's base_url at BaseURL(), then read the records back with Records and
// every request with Requests (whose Authorization is recorded as a fact, never
// as the token). SetFailureHook lets a test answer any request itself (a 429,
// a 502 with an HTML body, a dropped connection); RejectWrites refuses the
// next writes of one record as Cloudflare refuses an invalid change.
package cloudflareapi

import (
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Record is a DNS record as the API returns it.
type Record struct {
	ID         string    `json:"id"`
	ZoneID     string    `json:"zone_id"`
	ZoneName   string    `json:"zone_name"`
	Name       string    `json:"name"`
	Type       string    `json:"type"`
	Content    string    `json:"content"`
	TTL        float64   `json:"ttl"`
	Proxied    bool      `json:"proxied"`
	Proxiable  bool      `json:"proxiable"`
	Comment    *string   `json:"comment"`
	Tags       []string  `json:"tags"`
	CreatedOn  time.Time `json:"created_on"`
	ModifiedOn time.Time `json:"modified_on"`
	Meta       any       `json:"meta"`
	Settings   any       `json:"settings"`
}

// Request is one request the server received.
type Request struct {
	Method string
	// Path is relative to the API base, e.g. /zones/<id>/dns_records.
	Path string
	// Query is the raw query string.
	Query string
	// Auth says how the request authenticated: "valid", "invalid" or "none".
	Auth string
	// Body is the request body (record changes; never holds the token).
	Body string
}

// Server is a running fake API.
type Server struct {
	token string
	ln    net.Listener
	srv   *http.Server
	url   string

	mu       sync.Mutex
	zones    map[string]string // id -> name
	records  map[string]*Record
	requests []Request
	// reject: record name -> how many more writes to it to refuse.
	reject map[string]int
	// fail, if set, may answer a request itself (see SetFailureHook).
	fail FailureHook
}

// FailureHook is called for every request once it is recorded (n counts the
// requests from 1, this one included) and before the fake authenticates it;
// returning true means the hook has answered the request itself.
type FailureHook func(w http.ResponseWriter, r *http.Request, n int) bool

// SetFailureHook installs (or, with nil, removes) a per-request failure hook.
func (s *Server) SetFailureHook(h FailureHook) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.fail = h
}

// WriteError answers a request with Cloudflare's error envelope, for failure
// hooks: WriteError(w, 429, 971, "Please wait and consider throttling your
// request speed").
func WriteError(w http.ResponseWriter, status, code int, msg string) {
	envelope(w, status, nil, nil, message{code, msg})
}

// Start serves a fake API on 127.0.0.1 that accepts exactly token.
func Start(token string) (*Server, error) {
	if token == "" {
		return nil, errors.New("cloudflareapi: a token is required")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{token: token, ln: ln, url: "http://" + ln.Addr().String(), zones: map[string]string{}, records: map[string]*Record{}, reject: map[string]int{}}
	s.srv = &http.Server{Handler: http.HandlerFunc(s.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// BaseURL is what the action's base_url should be.
func (s *Server) BaseURL() string { return s.url + "/client/v4" }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

func newID() string {
	b := make([]byte, 16)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}

// AddZone adds a zone and returns its 32-character id.
func (s *Server) AddZone(name string) string {
	id := newID()
	_ = s.AddZoneWithID(id, name)
	return id
}

// AddZoneWithID adds a zone with a given 32-character id (tests that name
// the id in their expectations).
func (s *Server) AddZoneWithID(id, name string) error {
	if len(id) != 32 {
		return fmt.Errorf("cloudflareapi: zone id %q is not 32 characters", id)
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.zones[id]; ok {
		return fmt.Errorf("cloudflareapi: zone %s exists", id)
	}
	s.zones[id] = normalize(name)
	return nil
}

// Zone is a zone and its records, as Zones returns them.
type Zone struct {
	ID, Name string
	Records  []Record
}

// Zones returns every zone with its records (sorted by name, then type): what
// a DNS server serving the fake's zones answers from.
func (s *Server) Zones() []Zone {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Zone
	for id, name := range s.zones {
		z := Zone{ID: id, Name: name}
		for _, r := range s.records {
			if r.ZoneID == id {
				z.Records = append(z.Records, *r)
			}
		}
		sort.Slice(z.Records, func(i, j int) bool {
			a, b := z.Records[i], z.Records[j]
			return a.Name < b.Name || (a.Name == b.Name && (a.Type < b.Type || (a.Type == b.Type && a.Content < b.Content)))
		})
		out = append(out, z)
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].Name < out[j].Name || (out[i].Name == out[j].Name && out[i].ID < out[j].ID)
	})
	return out
}

// AddRecord adds a record to a zone (by id) as an operator would have it.
func (s *Server) AddRecord(zoneID, name, typ, content string, ttl int, proxied bool) (Record, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	zn, ok := s.zones[zoneID]
	if !ok {
		return Record{}, fmt.Errorf("cloudflareapi: no zone %s", zoneID)
	}
	comment := "managed by hand"
	now := time.Now().UTC()
	r := &Record{ID: newID(), ZoneID: zoneID, ZoneName: zn, Name: normalize(name), Type: typ, Content: content, TTL: float64(ttl),
		Proxied: proxied, Proxiable: true, Comment: &comment, Tags: []string{"team:platform"}, CreatedOn: now, ModifiedOn: now, Meta: map[string]any{}, Settings: map[string]any{}}
	if msg := s.check(r); msg != nil {
		return Record{}, fmt.Errorf("cloudflareapi: %s", msg.Message)
	}
	s.records[r.ID] = r
	return *r, nil
}

// SetContent changes the content of the record of a type at a name, as an
// operator would by hand (no request is recorded).
func (s *Server) SetContent(name, typ, content string) error {
	return s.edit(name, typ, func(r *Record) { r.Content = content })
}

// SetProxied turns the proxy of the record of a type at a name on or off, as
// an operator would in the dashboard (no request is recorded); a proxied
// record's TTL is automatic (1), as Cloudflare keeps it.
func (s *Server) SetProxied(name, typ string, proxied bool) error {
	return s.edit(name, typ, func(r *Record) {
		r.Proxied = proxied
		if proxied {
			r.TTL = 1
		}
	})
}

func (s *Server) edit(name, typ string, change func(*Record)) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, r := range s.records {
		if r.Name == normalize(name) && r.Type == typ {
			next := *r
			change(&next)
			if msg := s.check(&next); msg != nil {
				return fmt.Errorf("cloudflareapi: %s", msg.Message)
			}
			next.ModifiedOn = time.Now().UTC()
			*r = next
			return nil
		}
	}
	return fmt.Errorf("cloudflareapi: no %s record at %s", typ, name)
}

// RejectWrites makes the next n writes (create, update, delete) of the
// record at name fail as Cloudflare refuses an invalid change: HTTP 400,
// code 1004 "DNS Validation Error" (not retried by the SDK).
func (s *Server) RejectWrites(name string, n int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.reject[normalize(name)] = n
}

// rejected reports whether a write of the record at name is to be refused,
// counting it. The caller holds s.mu.
func (s *Server) rejected(name string) bool {
	if s.reject[name] <= 0 {
		return false
	}
	s.reject[name]--
	return true
}

var validationError = message{1004, "DNS Validation Error"}

// Records returns the records at a name (any zone), sorted by type.
func (s *Server) Records(name string) []Record {
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Record
	for _, r := range s.records {
		if r.Name == normalize(name) {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

// Requests returns every request so far, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

// Mutations returns the requests that changed something (not GET).
func (s *Server) Mutations() []Request {
	var out []Request
	for _, r := range s.Requests() {
		if r.Method != http.MethodGet {
			out = append(out, r)
		}
	}
	return out
}

func normalize(name string) string { return strings.ToLower(strings.TrimSuffix(name, ".")) }

type message struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func envelope(w http.ResponseWriter, status int, result, info any, errs ...message) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	if errs == nil {
		errs = []message{}
	}
	body := map[string]any{"success": len(errs) == 0, "errors": errs, "messages": []message{}, "result": result}
	if info != nil {
		body["result_info"] = info
	}
	_ = json.NewEncoder(w).Encode(body)
}

func pageInfo(n int) map[string]any {
	return map[string]any{"page": 1, "per_page": 100, "count": n, "total_count": n, "total_pages": 1}
}

func (s *Server) serve(w http.ResponseWriter, r *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(r.Body, 1<<20))
	auth := "none"
	switch h := r.Header.Get("Authorization"); {
	case h == "Bearer "+s.token:
		auth = "valid"
	case h != "":
		auth = "invalid"
	}
	path := strings.TrimPrefix(r.URL.Path, "/client/v4")
	s.mu.Lock()
	s.requests = append(s.requests, Request{Method: r.Method, Path: path, Query: r.URL.RawQuery, Auth: auth, Body: string(body)})
	n, fail := len(s.requests), s.fail
	s.mu.Unlock()
	if fail != nil && fail(w, r, n) {
		return
	}
	switch auth {
	case "none":
		envelope(w, http.StatusBadRequest, nil, nil, message{9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"})
		return
	case "invalid":
		envelope(w, http.StatusForbidden, nil, nil, message{9109, "Invalid access token"})
		return
	}
	if !strings.HasPrefix(r.URL.Path, "/client/v4/") {
		envelope(w, http.StatusNotFound, nil, nil, message{7000, "No route for that URI"})
		return
	}
	parts := strings.Split(strings.Trim(path, "/"), "/")
	s.mu.Lock()
	defer s.mu.Unlock()
	switch {
	case len(parts) == 1 && parts[0] == "zones" && r.Method == http.MethodGet:
		name := normalize(r.URL.Query().Get("name"))
		out := []map[string]any{}
		for id, zn := range s.zones {
			if name == "" || zn == name {
				out = append(out, map[string]any{"id": id, "name": zn, "status": "active", "account": map[string]any{"id": "account", "name": "account"}})
			}
		}
		envelope(w, http.StatusOK, out, pageInfo(len(out)))
	case len(parts) == 2 && parts[0] == "zones" && r.Method == http.MethodGet:
		zn, ok := s.zones[parts[1]]
		if !ok {
			envelope(w, http.StatusNotFound, nil, nil, message{1001, "Invalid zone identifier"})
			return
		}
		envelope(w, http.StatusOK, map[string]any{"id": parts[1], "name": zn, "status": "active"}, nil)
	case len(parts) >= 3 && len(parts) <= 4 && parts[0] == "zones" && parts[2] == "dns_records":
		zid := parts[1]
		if _, ok := s.zones[zid]; !ok {
			envelope(w, http.StatusNotFound, nil, nil, message{7003, "Could not route to /zones/" + zid + "/dns_records, perhaps your object identifier is invalid?"})
			return
		}
		if len(parts) == 3 {
			s.collection(w, r, zid, body)
			return
		}
		s.item(w, r, zid, parts[3], body)
	default:
		envelope(w, http.StatusNotFound, nil, nil, message{7000, "No route for that URI"})
	}
}

func (s *Server) collection(w http.ResponseWriter, r *http.Request, zid string, body []byte) {
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		// name= is a contains-style match on Cloudflare; name.exact= is exact.
		name, typ := normalize(q.Get("name.exact")), q.Get("type")
		contains := normalize(q.Get("name"))
		out := []*Record{}
		for _, rec := range s.records {
			if rec.ZoneID != zid || (typ != "" && rec.Type != typ) {
				continue
			}
			if (name != "" && rec.Name != name) || (contains != "" && !strings.Contains(rec.Name, contains)) {
				continue
			}
			out = append(out, rec)
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		envelope(w, http.StatusOK, out, pageInfo(len(out)))
	case http.MethodPost:
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil {
			envelope(w, http.StatusBadRequest, nil, nil, message{9207, "Request body is invalid."})
			return
		}
		rec := &Record{ZoneID: zid, ZoneName: s.zones[zid], Meta: map[string]any{}, Settings: map[string]any{}, Tags: []string{}, Proxiable: true}
		if msg := apply(rec, in, true); msg != nil {
			envelope(w, http.StatusBadRequest, nil, nil, *msg)
			return
		}
		if s.rejected(rec.Name) {
			envelope(w, http.StatusBadRequest, nil, nil, validationError)
			return
		}
		if msg := s.check(rec); msg != nil {
			envelope(w, http.StatusBadRequest, nil, nil, *msg)
			return
		}
		rec.ID = newID()
		rec.CreatedOn, rec.ModifiedOn = time.Now().UTC(), time.Now().UTC()
		s.records[rec.ID] = rec
		envelope(w, http.StatusOK, rec, nil)
	default:
		envelope(w, http.StatusMethodNotAllowed, nil, nil, message{10405, "Method not allowed"})
	}
}

func (s *Server) item(w http.ResponseWriter, r *http.Request, zid, id string, body []byte) {
	rec, ok := s.records[id]
	if !ok || rec.ZoneID != zid {
		envelope(w, http.StatusNotFound, nil, nil, message{81044, "Record does not exist."})
		return
	}
	if r.Method != http.MethodGet && s.rejected(rec.Name) {
		envelope(w, http.StatusBadRequest, nil, nil, validationError)
		return
	}
	switch r.Method {
	case http.MethodGet:
		envelope(w, http.StatusOK, rec, nil)
	case http.MethodPatch, http.MethodPut:
		var in map[string]any
		if err := json.Unmarshal(body, &in); err != nil {
			envelope(w, http.StatusBadRequest, nil, nil, message{9207, "Request body is invalid."})
			return
		}
		next := *rec
		if r.Method == http.MethodPut {
			next.Comment, next.Tags = nil, []string{}
		}
		if msg := apply(&next, in, r.Method == http.MethodPut); msg != nil {
			envelope(w, http.StatusBadRequest, nil, nil, *msg)
			return
		}
		if msg := s.check(&next); msg != nil {
			envelope(w, http.StatusBadRequest, nil, nil, *msg)
			return
		}
		next.ModifiedOn = time.Now().UTC()
		*rec = next
		envelope(w, http.StatusOK, rec, nil)
	case http.MethodDelete:
		delete(s.records, id)
		envelope(w, http.StatusOK, map[string]any{"id": id}, nil)
	default:
		envelope(w, http.StatusMethodNotAllowed, nil, nil, message{10405, "Method not allowed"})
	}
}

// apply applies a create (full) or patch body to rec.
func apply(rec *Record, in map[string]any, full bool) *message {
	for k := range in {
		switch k {
		case "name", "type", "content", "ttl", "proxied", "comment", "tags", "settings", "private_routing":
		default:
			return &message{9000, "unknown field " + strconv.Quote(k)}
		}
	}
	if full {
		for _, k := range []string{"name", "type", "content"} {
			if _, ok := in[k]; !ok {
				return &message{9000, k + " is required"}
			}
		}
	}
	if v, ok := in["name"].(string); ok {
		rec.Name = normalize(v)
	}
	if v, ok := in["type"].(string); ok {
		rec.Type = v
	}
	if v, ok := in["content"].(string); ok {
		rec.Content = v
	}
	if v, ok := in["ttl"].(float64); ok {
		rec.TTL = v
	} else if full {
		rec.TTL = 1
	}
	if v, ok := in["proxied"].(bool); ok {
		rec.Proxied = v
	}
	if v, ok := in["comment"].(string); ok {
		rec.Comment = &v
	}
	return nil
}

// check validates rec as Cloudflare would, against the other records of its
// zone, and gives a proxied record its automatic TTL. The caller holds s.mu.
func (s *Server) check(rec *Record) *message {
	switch rec.Type {
	case "A":
		if ip := net.ParseIP(rec.Content); ip == nil || ip.To4() == nil {
			return &message{9005, "Content for A record must be a valid IPv4 address."}
		}
	case "AAAA":
		if ip := net.ParseIP(rec.Content); ip == nil || ip.To4() != nil {
			return &message{9006, "Content for AAAA record must be a valid IPv6 address."}
		}
	case "CNAME":
		if rec.Content == "" || net.ParseIP(rec.Content) != nil {
			return &message{9007, "Content for CNAME record is invalid."}
		}
	default:
		return &message{9008, "Invalid record type " + strconv.Quote(rec.Type)}
	}
	if rec.TTL != 1 && (rec.TTL < 60 || rec.TTL > 86400) {
		return &message{9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic."}
	}
	if rec.Proxied {
		// A proxied record's TTL is automatic and cannot be edited (Cloudflare
		// docs, DNS > Proxy status: "all proxied records have a TTL of Auto");
		// the API accepts another TTL in the request and stores 1 ("automatic",
		// the API reference's ttl field), as terraform-provider-cloudflare
		// issue 126 shows: ttl 300 with proxied true was applied and read back
		// as 1. So the fake does not refuse it either.
		rec.TTL = 1
	}
	for _, other := range s.records {
		if other.ID != rec.ID && other.ZoneID == rec.ZoneID && other.Name == rec.Name && (other.Type == "CNAME" || rec.Type == "CNAME") {
			return &message{81053, "An A, AAAA, or CNAME record with that host already exists."}
		}
	}
	return nil
}
