package cloudflare

import (
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"sort"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"
)

// fakeAPI is a local stand-in for Cloudflare's v4 API: the zones and
// dns_records endpoints the SDK calls, with the {success, errors, messages,
// result, result_info} envelope, Bearer token checks and Cloudflare's own
// validation of record changes (type conflicts at a name, proxied TTLs).
type fakeAPI struct {
	t     *testing.T
	srv   *httptest.Server
	token string

	mu      sync.Mutex
	zones   map[string]string // id -> name
	records map[string]*fakeRecord
	nextID  int
	log     []string // "METHOD path" of every request
	// fail, if set, may answer a request itself (return true).
	fail func(w http.ResponseWriter, r *http.Request, n int) bool
}

type fakeRecord struct {
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

const (
	testToken  = "cf-test-token-0123456789abcdef"
	zoneID     = "023e105f4ecef8ad9ca31a8372d0c353"
	otherZone  = "9a7806061c88ada191ed06f989cc3dac"
	zoneName   = "myorg.com"
	primaryLB  = "primary-alb-123.eu-west-1.elb.amazonaws.com"
	drLB       = "dr-alb-456.eu-west-3.elb.amazonaws.com"
	serverHost = "spacelift.myorg.com"
)

func newFakeAPI(t *testing.T) *fakeAPI {
	f := &fakeAPI{t: t, token: testToken, zones: map[string]string{zoneID: zoneName, otherZone: "other.example"}, records: map[string]*fakeRecord{}}
	f.srv = httptest.NewServer(http.HandlerFunc(f.serve))
	t.Cleanup(f.srv.Close)
	return f
}

func (f *fakeAPI) baseURL() string { return f.srv.URL + "/client/v4" }

func (f *fakeAPI) add(name, typ, content string, ttl float64, proxied bool) *fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.nextID++
	comment := "managed by hand"
	r := &fakeRecord{ID: fmt.Sprintf("%032x", f.nextID), ZoneID: zoneID, ZoneName: zoneName, Name: name, Type: typ, Content: content,
		TTL: ttl, Proxied: proxied, Proxiable: true, Comment: &comment, Tags: []string{"team:platform"},
		CreatedOn: time.Now().UTC(), ModifiedOn: time.Now().UTC(), Meta: map[string]any{}, Settings: map[string]any{}}
	f.records[r.ID] = r
	return r
}

// at returns the records at a name, sorted by type.
func (f *fakeAPI) at(name string) []fakeRecord {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []fakeRecord
	for _, r := range f.records {
		if r.Name == name {
			out = append(out, *r)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Type < out[j].Type })
	return out
}

func (f *fakeAPI) requests() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]string(nil), f.log...)
}

// mutations lists the requests that changed something.
func (f *fakeAPI) mutations() []string {
	var out []string
	for _, r := range f.requests() {
		if !strings.HasPrefix(r, "GET ") {
			out = append(out, r)
		}
	}
	return out
}

type cfMessage struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
}

func envelope(w http.ResponseWriter, status int, result any, info any, errs ...cfMessage) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	body := map[string]any{"success": len(errs) == 0, "errors": errs, "messages": []cfMessage{}, "result": result}
	if errs == nil {
		body["errors"] = []cfMessage{}
	}
	if info != nil {
		body["result_info"] = info
	}
	_ = json.NewEncoder(w).Encode(body)
}

func pageInfo(n int) map[string]any {
	return map[string]any{"page": 1, "per_page": 100, "count": n, "total_count": n, "total_pages": 1}
}

func (f *fakeAPI) serve(w http.ResponseWriter, r *http.Request) {
	f.mu.Lock()
	f.log = append(f.log, r.Method+" "+strings.TrimPrefix(r.URL.Path, "/client/v4"))
	n := len(f.log)
	fail := f.fail
	f.mu.Unlock()
	if fail != nil && fail(w, r, n) {
		return
	}
	switch auth := r.Header.Get("Authorization"); {
	case auth == "":
		envelope(w, http.StatusBadRequest, nil, nil, cfMessage{9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers"})
		return
	case auth != "Bearer "+f.token:
		envelope(w, http.StatusForbidden, nil, nil, cfMessage{9109, "Invalid access token"})
		return
	}
	path := strings.TrimPrefix(r.URL.Path, "/client/v4/")
	parts := strings.Split(strings.Trim(path, "/"), "/")
	f.mu.Lock()
	defer f.mu.Unlock()
	switch {
	case len(parts) == 1 && parts[0] == "zones" && r.Method == http.MethodGet:
		name := r.URL.Query().Get("name")
		var out []map[string]any
		for id, zn := range f.zones {
			if name == "" || zn == name {
				out = append(out, map[string]any{"id": id, "name": zn, "status": "active", "account": map[string]any{"id": "acc", "name": "acc"}})
			}
		}
		envelope(w, 200, out, pageInfo(len(out)))
	case len(parts) == 2 && parts[0] == "zones" && r.Method == http.MethodGet:
		zn, ok := f.zones[parts[1]]
		if !ok {
			envelope(w, http.StatusNotFound, nil, nil, cfMessage{1001, "Invalid zone identifier"})
			return
		}
		envelope(w, 200, map[string]any{"id": parts[1], "name": zn, "status": "active"}, nil)
	case len(parts) >= 3 && parts[0] == "zones" && parts[2] == "dns_records":
		zid := parts[1]
		if _, ok := f.zones[zid]; !ok {
			envelope(w, http.StatusNotFound, nil, nil, cfMessage{7003, "Could not route to /zones/" + zid + "/dns_records, perhaps your object identifier is invalid?"})
			return
		}
		if len(parts) == 3 {
			f.recordsCollection(w, r, zid)
			return
		}
		f.recordItem(w, r, zid, parts[3])
	default:
		envelope(w, http.StatusNotFound, nil, nil, cfMessage{7000, "No route for that URI"})
	}
}

func (f *fakeAPI) recordsCollection(w http.ResponseWriter, r *http.Request, zid string) {
	switch r.Method {
	case http.MethodGet:
		q := r.URL.Query()
		if q.Get("name") != "" {
			f.t.Errorf("the SDK sent name=, not name.exact=: %s", r.URL.RawQuery)
		}
		name, typ := q.Get("name.exact"), q.Get("type")
		out := []*fakeRecord{}
		for _, rec := range f.records {
			if rec.ZoneID == zid && (name == "" || strings.EqualFold(rec.Name, name)) && (typ == "" || rec.Type == typ) {
				out = append(out, rec)
			}
		}
		sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
		envelope(w, 200, out, pageInfo(len(out)))
	case http.MethodPost:
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			envelope(w, 400, nil, nil, cfMessage{9207, "Request body is invalid."})
			return
		}
		rec := &fakeRecord{ZoneID: zid, ZoneName: f.zones[zid], Meta: map[string]any{}, Settings: map[string]any{}, Tags: []string{}}
		if msg := f.applyFields(rec, in, true); msg != nil {
			envelope(w, 400, nil, nil, *msg)
			return
		}
		f.nextID++
		rec.ID = fmt.Sprintf("%032x", f.nextID)
		rec.CreatedOn, rec.ModifiedOn = time.Now().UTC(), time.Now().UTC()
		f.records[rec.ID] = rec
		envelope(w, 200, rec, nil)
	default:
		envelope(w, 405, nil, nil, cfMessage{10405, "Method not allowed"})
	}
}

func (f *fakeAPI) recordItem(w http.ResponseWriter, r *http.Request, zid, id string) {
	rec, ok := f.records[id]
	if !ok || rec.ZoneID != zid {
		envelope(w, 404, nil, nil, cfMessage{81044, "Record does not exist."})
		return
	}
	switch r.Method {
	case http.MethodGet:
		envelope(w, 200, rec, nil)
	case http.MethodPatch, http.MethodPut:
		var in map[string]any
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil {
			envelope(w, 400, nil, nil, cfMessage{9207, "Request body is invalid."})
			return
		}
		next := *rec
		if r.Method == http.MethodPut {
			next.Comment, next.Tags = nil, []string{}
		}
		if msg := f.applyFields(&next, in, r.Method == http.MethodPut); msg != nil {
			envelope(w, 400, nil, nil, *msg)
			return
		}
		next.ModifiedOn = time.Now().UTC()
		*rec = next
		envelope(w, 200, rec, nil)
	case http.MethodDelete:
		delete(f.records, id)
		envelope(w, 200, map[string]any{"id": id}, nil)
	default:
		envelope(w, 405, nil, nil, cfMessage{10405, "Method not allowed"})
	}
}

// applyFields applies a create/patch body to rec the way Cloudflare
// validates it. full means every required field must be present.
func (f *fakeAPI) applyFields(rec *fakeRecord, in map[string]any, full bool) *cfMessage {
	for k := range in {
		switch k {
		case "name", "type", "content", "ttl", "proxied", "comment", "tags", "settings", "private_routing":
		default:
			return &cfMessage{9000, "unknown field " + k}
		}
	}
	if full {
		for _, k := range []string{"name", "type", "content"} {
			if _, ok := in[k]; !ok {
				return &cfMessage{9000, k + " is required"}
			}
		}
	}
	if v, ok := in["name"].(string); ok {
		rec.Name = strings.ToLower(strings.TrimSuffix(v, "."))
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
	switch rec.Type {
	case "A":
		if ip := net.ParseIP(rec.Content); ip == nil || ip.To4() == nil {
			return &cfMessage{9005, "Content for A record must be a valid IPv4 address."}
		}
	case "AAAA":
		if ip := net.ParseIP(rec.Content); ip == nil || ip.To4() != nil {
			return &cfMessage{9006, "Content for AAAA record must be a valid IPv6 address."}
		}
	case "CNAME":
		if rec.Content == "" || net.ParseIP(rec.Content) != nil {
			return &cfMessage{9007, "Content for CNAME record is invalid."}
		}
	default:
		return &cfMessage{9008, "Invalid record type " + strconv.Quote(rec.Type)}
	}
	if rec.Proxied && rec.TTL != 1 {
		return &cfMessage{9009, "TTL must be 1 (automatic) for proxied records."}
	}
	if rec.TTL != 1 && (rec.TTL < 60 || rec.TTL > 86400) {
		return &cfMessage{9021, "Invalid TTL. Must be between 60 and 86400 seconds, or 1 for Automatic."}
	}
	for _, other := range f.records {
		if other.ID != rec.ID && other.ZoneID == rec.ZoneID && other.Name == rec.Name && (other.Type == "CNAME" || rec.Type == "CNAME") {
			return &cfMessage{81053, "An A, AAAA, or CNAME record with that host already exists."}
		}
	}
	return nil
}
