package cloudflareapi

import (
	"context"
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/cloudflare/cloudflare-go/v6/dns"
	"github.com/cloudflare/cloudflare-go/v6/option"
	"github.com/cloudflare/cloudflare-go/v6/zones"
)

// The fake answers the official SDK the way Cloudflare does: zones by name,
// records by exact name, an in-place PATCH, and its errors.
func TestFakeThroughTheSDK(t *testing.T) {
	s := startFake(t)
	zid := s.AddZone("myorg.com")
	if _, err := s.AddRecord(zid, "app.myorg.com", "CNAME", "old-lb.example.com", 60, false); err != nil {
		t.Fatal(err)
	}
	if _, err := s.AddRecord(zid, "app.myorg.com", "A", "192.0.2.1", 60, false); err == nil {
		t.Error("an A record next to a CNAME was accepted")
	}
	opts := []option.RequestOption{option.WithBaseURL(s.BaseURL()), option.WithAPIToken(token), option.WithMaxRetries(0)}
	ctx := context.Background()

	var zq zones.ZoneListParams
	zq.Name.Value, zq.Name.Present = "myorg.com", true
	page, err := zones.NewZoneService(opts...).List(ctx, zq)
	if err != nil || len(page.Result) != 1 || page.Result[0].ID != zid {
		t.Fatalf("zones by name: %+v, %v", page, err)
	}

	recs := dns.NewRecordService(opts...)
	var lq dns.RecordListParams
	lq.ZoneID.Value, lq.ZoneID.Present = zid, true
	var n dns.RecordListParamsName
	n.Exact.Value, n.Exact.Present = "app.myorg.com", true
	lq.Name.Value, lq.Name.Present = n, true
	list, err := recs.List(ctx, lq)
	if err != nil || len(list.Result) != 1 {
		t.Fatalf("records: %+v, %v", list, err)
	}
	id := list.Result[0].ID

	var b dns.CNAMERecordParam
	b.Name.Value, b.Name.Present = "app.myorg.com", true
	b.Type.Value, b.Type.Present = dns.CNAMERecordTypeCNAME, true
	b.Content.Value, b.Content.Present = "new-lb.example.com", true
	var eq dns.RecordEditParams
	eq.ZoneID.Value, eq.ZoneID.Present = zid, true
	eq.Body = b
	if _, err := recs.Edit(ctx, id, eq); err != nil {
		t.Fatal(err)
	}
	got := s.Records("app.myorg.com")
	if len(got) != 1 || got[0].Content != "new-lb.example.com" || got[0].ID != id || got[0].Comment == nil {
		t.Errorf("after PATCH: %+v (want the same record, new content, comment kept)", got)
	}

	s.RejectWrites("app.myorg.com", 1)
	if _, err := recs.Edit(ctx, id, eq); err == nil || !strings.Contains(err.Error(), "1004") {
		t.Errorf("a rejected write: %v, want code 1004", err)
	}
	if _, err := recs.Edit(ctx, id, eq); err != nil {
		t.Errorf("the write after the rejected one: %v", err)
	}

	bad := dns.NewRecordService(option.WithBaseURL(s.BaseURL()), option.WithAPIToken("wrong"), option.WithMaxRetries(0))
	// (The SDK's error type lives in its root package, which links every
	// Cloudflare service; the status is in the message too.)
	if _, err = bad.List(ctx, lq); err == nil || !strings.Contains(err.Error(), "403") || !strings.Contains(err.Error(), "9109") {
		t.Errorf("wrong token: %v, want HTTP 403, code 9109", err)
	}
	reqs := s.Requests()
	if len(reqs) != 6 || reqs[2].Method != http.MethodPatch || reqs[2].Auth != "valid" || reqs[5].Auth != "invalid" {
		t.Errorf("requests: %+v", reqs)
	}
	if len(s.Mutations()) != 3 {
		t.Errorf("mutations: %+v", s.Mutations())
	}
}

// A proxied record's TTL is automatic: another TTL in the request is
// accepted and stored as 1, as Cloudflare does; out-of-range TTLs are still
// refused.
func TestProxiedTTLIsAutomatic(t *testing.T) {
	s := startFake(t)
	zid := s.AddZone("myorg.com")
	recs := dns.NewRecordService(option.WithBaseURL(s.BaseURL()), option.WithAPIToken(token), option.WithMaxRetries(0))
	var b dns.CNAMERecordParam
	b.Name.Value, b.Name.Present = "app.myorg.com", true
	b.Type.Value, b.Type.Present = dns.CNAMERecordTypeCNAME, true
	b.Content.Value, b.Content.Present = "lb.example.com", true
	b.TTL.Value, b.TTL.Present = 300, true
	b.Proxied.Value, b.Proxied.Present = true, true
	var q dns.RecordNewParams
	q.ZoneID.Value, q.ZoneID.Present = zid, true
	q.Body = b
	r, err := recs.New(context.Background(), q)
	if err != nil {
		t.Fatal(err)
	}
	if r.TTL != 1 || !r.Proxied {
		t.Fatalf("created %+v, want TTL 1 (automatic), proxied", r)
	}
	if got := s.Records("app.myorg.com"); len(got) != 1 || got[0].TTL != 1 {
		t.Fatalf("stored %+v", got)
	}
	b.Name.Value, b.TTL.Value = "other.myorg.com", 5
	q.Body = b
	if _, err := recs.New(context.Background(), q); err == nil || !strings.Contains(err.Error(), "9021") {
		t.Fatalf("TTL 5: %v, want code 9021", err)
	}
}

// The failure hook sees every request with its number and may answer it.
func TestFailureHook(t *testing.T) {
	s := startFake(t)
	var seen []int
	s.SetFailureHook(func(w http.ResponseWriter, r *http.Request, n int) bool {
		seen = append(seen, n)
		if n == 1 {
			WriteError(w, http.StatusTooManyRequests, 971, "Please wait and consider throttling your request speed")
			return true
		}
		return false
	})
	svc := zones.NewZoneService(option.WithBaseURL(s.BaseURL()), option.WithAPIToken(token), option.WithMaxRetries(0))
	if _, err := svc.List(context.Background(), zones.ZoneListParams{}); err == nil || !strings.Contains(err.Error(), "971") {
		t.Fatalf("first request: %v, want the hook's 429", err)
	}
	if _, err := svc.List(context.Background(), zones.ZoneListParams{}); err != nil {
		t.Fatalf("second request: %v", err)
	}
	if fmt.Sprint(seen) != "[1 2]" || len(s.Requests()) != 2 {
		t.Fatalf("hook saw %v; requests %+v", seen, s.Requests())
	}
	s.SetFailureHook(nil)
	if _, err := svc.List(context.Background(), zones.ZoneListParams{}); err != nil || len(seen) != 2 {
		t.Fatalf("after removing the hook: %v, hook calls %v", err, seen)
	}
}

const token = "fake-token-0123456789"

func startFake(t *testing.T) *Server {
	t.Helper()
	s, err := Start(token)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}
