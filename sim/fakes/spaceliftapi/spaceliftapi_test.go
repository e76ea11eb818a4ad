package spaceliftapi

import (
	"bytes"
	"encoding/json"
	"net/http"
	"strings"
	"testing"
)

func post(t *testing.T, url, jwt, query string, vars map[string]any) map[string]any {
	t.Helper()
	b, _ := json.Marshal(map[string]any{"query": query, "variables": vars})
	req, _ := http.NewRequest(http.MethodPost, url, bytes.NewReader(b))
	req.Header.Set("Content-Type", "application/json")
	if jwt != "" {
		req.Header.Set("Authorization", "Bearer "+jwt)
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer res.Body.Close()
	var out map[string]any
	if err := json.NewDecoder(res.Body).Decode(&out); err != nil {
		t.Fatal(err)
	}
	return out
}

func TestKeyExchangeAndCycle(t *testing.T) {
	s, err := Start("01KEYID", "s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.AddPool("01POOL")
	const token = `mutation T($id: ID!, $secret: String!) { apiKeyUser(id: $id, secret: $secret) { jwt } }`
	const cycle = `mutation C($id: ID!) { workerPoolCycle(id: $id) }`

	if out := post(t, s.Endpoint(), "", token, map[string]any{"id": "01KEYID", "secret": "wrong"}); out["errors"] == nil {
		t.Errorf("wrong secret accepted: %v", out)
	}
	if out := post(t, s.Endpoint(), "", cycle, map[string]any{"id": "01POOL"}); out["errors"] == nil {
		t.Errorf("cycle without a JWT accepted: %v", out)
	}
	if out := post(t, s.Endpoint(), "not-issued", cycle, map[string]any{"id": "01POOL"}); out["errors"] == nil {
		t.Errorf("cycle with a made-up JWT accepted: %v", out)
	}
	out := post(t, s.Endpoint(), "", token, map[string]any{"id": "01KEYID", "secret": "s3cr3t"})
	jwt, _ := out["data"].(map[string]any)["apiKeyUser"].(map[string]any)["jwt"].(string)
	if strings.Count(jwt, ".") != 2 {
		t.Fatalf("jwt %q", jwt)
	}
	if out := post(t, s.Endpoint(), jwt, `mutation { workerPoolCycle(id: "01OTHER") }`, nil); out["errors"] == nil {
		t.Errorf("unknown pool cycled: %v", out)
	}
	out = post(t, s.Endpoint(), jwt, cycle, map[string]any{"id": "01POOL"})
	if out["data"].(map[string]any)["workerPoolCycle"] != true {
		t.Errorf("cycle: %v", out)
	}
	cycles := s.Cycles()
	if len(cycles) != 1 || cycles[0].PoolID != "01POOL" || cycles[0].JWT != jwt {
		t.Errorf("cycles %+v", cycles)
	}
	if got := s.IssuedJWTs(); len(got) != 1 || got[0] != jwt {
		t.Errorf("issued %v", got)
	}
	if n := len(s.Requests()); n != 6 {
		t.Errorf("%d requests recorded, want 6", n)
	}
}
