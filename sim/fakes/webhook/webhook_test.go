package webhook

import (
	"net/http"
	"strings"
	"testing"
)

func TestOnlyTheSecretPathReceives(t *testing.T) {
	r, err := Start("/services/T000/B000")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = r.Close() })
	if !strings.HasPrefix(r.SecretPath(), "/services/T000/B000/") || !strings.HasSuffix(r.URL(), r.SecretPath()) {
		t.Fatalf("url %s, path %s", r.URL(), r.SecretPath())
	}
	res, err := http.Post(strings.TrimSuffix(r.URL(), r.SecretPath())+"/services/T000/B000/guess", "application/json", strings.NewReader(`{}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	if res.StatusCode != http.StatusNotFound {
		t.Errorf("wrong path: HTTP %d", res.StatusCode)
	}
	res, err = http.Post(r.URL(), "application/json", strings.NewReader(`{"text":"hi"}`))
	if err != nil {
		t.Fatal(err)
	}
	res.Body.Close()
	d := r.Deliveries()
	if res.StatusCode != http.StatusOK || len(d) != 1 || string(d[0].Body) != `{"text":"hi"}` || r.Misses() != 1 {
		t.Errorf("HTTP %d, deliveries %+v, misses %d", res.StatusCode, d, r.Misses())
	}
}
