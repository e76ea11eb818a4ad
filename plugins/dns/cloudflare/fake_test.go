package cloudflare

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/sim/fakes/cloudflareapi"
)

// fakeAPI is the project's Cloudflare API fake (sim/fakes/cloudflareapi, the
// one the simulation scenarios use too), seeded with the zones these tests
// name, plus the shorthands the tests read it with.
type fakeAPI struct {
	*cloudflareapi.Server
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
	t.Helper()
	s, err := cloudflareapi.Start(testToken)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	for id, name := range map[string]string{zoneID: zoneName, otherZone: "other.example"} {
		if err := s.AddZoneWithID(id, name); err != nil {
			t.Fatal(err)
		}
	}
	f := &fakeAPI{Server: s}
	// The action must look records up by exact name: Cloudflare's name= is
	// not an exact match.
	t.Cleanup(func() {
		for _, r := range s.Requests() {
			if r.Method == http.MethodGet && strings.HasSuffix(r.Path, "/dns_records") && !strings.Contains(r.Query, "name.exact=") {
				t.Errorf("records listed without name.exact=: %s?%s", r.Path, r.Query)
			}
		}
	})
	return f
}

func (f *fakeAPI) baseURL() string { return f.BaseURL() }

// add seeds a record in myorg.com as an operator would have it (comment
// "managed by hand", tag team:platform).
func (f *fakeAPI) add(t *testing.T, name, typ, content string, ttl int, proxied bool) cloudflareapi.Record {
	t.Helper()
	r, err := f.AddRecord(zoneID, name, typ, content, ttl, proxied)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// at returns the records at a name, sorted by type.
func (f *fakeAPI) at(name string) []cloudflareapi.Record { return f.Records(name) }

// requests lists every request as "METHOD path".
func (f *fakeAPI) requests() []string {
	var out []string
	for _, r := range f.Requests() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

// mutations lists the requests that changed something, as "METHOD path".
func (f *fakeAPI) mutations() []string {
	var out []string
	for _, r := range f.Mutations() {
		out = append(out, r.Method+" "+r.Path)
	}
	return out
}

func (f *fakeAPI) String() string { return fmt.Sprint(f.requests()) }
