package spaceliftapi

import (
	"bytes"
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sim/fakes/kubeapi"
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

// token logs in and returns a JWT.
func token(t *testing.T, s *Server) string {
	t.Helper()
	out := post(t, s.Endpoint(), "", `mutation T($id: ID!, $secret: String!) { apiKeyUser(id: $id, secret: $secret) { jwt } }`, map[string]any{"id": "01KEYID", "secret": "s3cr3t"})
	return out["data"].(map[string]any)["apiKeyUser"].(map[string]any)["jwt"].(string)
}

const poolQuery = `query P($id: ID!) { workerPool(id: $id) { id workers { id busy createdAt drained metadata } } }`

// served is the worker list the API answers for pool.
func served(t *testing.T, s *Server, jwt, pool string) []map[string]any {
	t.Helper()
	out := post(t, s.Endpoint(), jwt, poolQuery, map[string]any{"id": pool})
	if out["errors"] != nil {
		t.Fatalf("workerPool: %v", out["errors"])
	}
	var list []map[string]any
	for _, w := range out["data"].(map[string]any)["workerPool"].(map[string]any)["workers"].([]any) {
		list = append(list, w.(map[string]any))
	}
	return list
}

func startFake(t *testing.T) *Server {
	t.Helper()
	s, err := Start("01KEYID", "s3cr3t")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = s.Close() })
	s.AddPool("01POOL")
	return s
}

// broker is a resolver a test moves by hand.
type broker struct {
	mu     sync.Mutex
	target string
	err    error
}

func (b *broker) set(target string) { b.mu.Lock(); b.target = target; b.mu.Unlock() }
func (b *broker) Resolve(_ context.Context, name string) (string, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name != "worker-iot.example.com" {
		return "", fmt.Errorf("unexpected name %q", name)
	}
	return b.target, b.err
}

func TestWorkerPoolQuery(t *testing.T) {
	s := startFake(t)
	if _, err := s.AddWorkers(context.Background(), "01POOL", 2); err != nil {
		t.Fatal(err)
	}
	jwt := token(t, s)
	if out := post(t, s.Endpoint(), "", poolQuery, map[string]any{"id": "01POOL"}); out["errors"] == nil {
		t.Errorf("workerPool without a JWT answered: %v", out)
	}
	list := served(t, s, jwt, "01POOL")
	if len(list) != 2 {
		t.Fatalf("workers %v", list)
	}
	for _, w := range list {
		if _, ok := w["createdAt"].(float64); !ok || w["drained"] != false || w["metadata"] != "{}" || len(w) != 5 {
			t.Errorf("worker %v", w)
		}
	}
	// Only the fields asked for; a field Spacelift's Worker lacks is an error.
	out := post(t, s.Endpoint(), jwt, `{ workerPool(id: "01POOL") { workers { id } } }`, nil)
	if w := out["data"].(map[string]any)["workerPool"].(map[string]any)["workers"].([]any)[0].(map[string]any); len(w) != 1 {
		t.Errorf("selection not honoured: %v", w)
	}
	out = post(t, s.Endpoint(), jwt, `{ workerPool(id: "01POOL") { workers { id region } } }`, nil)
	if errs, _ := out["errors"].([]any); len(errs) != 1 || !strings.Contains(fmt.Sprint(errs[0]), `"region"`) {
		t.Errorf("unknown field: %v", out)
	}
	out = post(t, s.Endpoint(), jwt, poolQuery, map[string]any{"id": "01NOPE"})
	if out["errors"] != nil || out["data"].(map[string]any)["workerPool"] != nil {
		t.Errorf("unknown pool: %v, want workerPool null", out)
	}
}

// Workers connect to the broker the domain resolves to when they start; the
// pool lists those on the broker the domain points at now. A cycle before
// the move leaves them on the old broker; one after it moves them.
func TestWorkersFollowTheBrokerTheyStartedWith(t *testing.T) {
	ctx := context.Background()
	s := startFake(t)
	b := &broker{target: "primary-ats.iot.eu-west-1.amazonaws.com."}
	s.SetBrokerDomain("worker-iot.example.com.", b)
	s.SetCycleDelay(0)
	first, err := s.AddWorkers(ctx, "01POOL", 3)
	if err != nil || len(first) != 3 || first[0].Broker != "primary-ats.iot.eu-west-1.amazonaws.com" {
		t.Fatalf("workers %+v, %v", first, err)
	}
	jwt := token(t, s)
	cycle := func() {
		t.Helper()
		if out := post(t, s.Endpoint(), jwt, `mutation C($id: ID!) { workerPoolCycle(id: $id) }`, map[string]any{"id": "01POOL"}); out["errors"] != nil {
			t.Fatal(out)
		}
	}
	// Restarted before the record moved: new workers, still on the primary broker.
	cycle()
	early := s.Workers("01POOL")
	if len(early) != 3 || early[0].ID == first[0].ID || early[0].Broker != first[0].Broker {
		t.Fatalf("after an early cycle: %+v", early)
	}
	b.set("dr-ats.iot.eu-west-3.amazonaws.com")
	if got := served(t, s, jwt, "01POOL"); len(got) != 0 {
		t.Fatalf("after the move the pool lists %v, want none (all on the old broker)", got)
	}
	cycle()
	late := served(t, s, jwt, "01POOL")
	if len(late) != 3 {
		t.Fatalf("after a cycle past the move: %v", late)
	}
	for _, w := range s.Workers("01POOL") {
		if w.Broker != "dr-ats.iot.eu-west-3.amazonaws.com" || w.ID == early[0].ID {
			t.Errorf("worker %+v", w)
		}
	}
	// A worker that cannot resolve the domain never registers.
	b.mu.Lock()
	b.err = errors.New("SERVFAIL")
	b.mu.Unlock()
	cycle()
	if n := len(s.Workers("01POOL")); n != 0 {
		t.Errorf("%d workers registered without a broker", n)
	}
	if ce := s.ConnectErrors(); len(ce) != 3 || !strings.Contains(ce[0].Err.Error(), "SERVFAIL") {
		t.Errorf("connect errors %+v", ce)
	}
}

// A cycle drains the workers and they come back after the cycle delay.
func TestCycleDelay(t *testing.T) {
	s := startFake(t)
	s.SetCycleDelay(200 * time.Millisecond)
	old, _ := s.AddWorkers(context.Background(), "01POOL", 1)
	post(t, s.Endpoint(), token(t, s), `mutation C($id: ID!) { workerPoolCycle(id: $id) }`, map[string]any{"id": "01POOL"})
	if w := s.Workers("01POOL"); len(w) != 1 || w[0].ID != old[0].ID || !w[0].Drained {
		t.Fatalf("right after the cycle: %+v, want the old worker drained", w)
	}
	deadline := time.Now().Add(5 * time.Second)
	for time.Now().Before(deadline) {
		if w := s.Workers("01POOL"); len(w) == 1 && w[0].ID != old[0].ID && !w[0].Drained {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("the worker did not come back: %+v", s.Workers("01POOL"))
}

// Pods of the Kubernetes fake run workers: a replaced pod's worker starts
// when its container runs, and resolves the broker then.
func TestPodsRunWorkers(t *testing.T) {
	ctx := context.Background()
	s := startFake(t)
	b := &broker{target: "primary"}
	s.SetBrokerDomain("worker-iot.example.com", b)
	kube, err := kubeapi.Start("kube-token")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = kube.Close() })
	kube.AddPods("ns", "spacelift-worker", 2, map[string]string{"app": "worker"})
	kube.AddPods("ns", "other", 1, map[string]string{"app": "other"})
	if err := s.AttachPods(ctx, kube, "01POOL", "ns", "app=worker"); err != nil {
		t.Fatal(err)
	}
	before := s.Workers("01POOL")
	if len(before) != 2 || before[0].Metadata["namespace"] != "ns" {
		t.Fatalf("workers %+v", before)
	}
	b.set("dr")
	// Delete every worker pod through the API, then list until the replacements run.
	pods, _ := kube.Pods("ns", "app=worker")
	kc := kubeClient(t, kube)
	for _, p := range pods {
		kc.do(http.MethodDelete, "/api/v1/namespaces/ns/pods/"+p.Name)
	}
	for range 3 {
		kc.do(http.MethodGet, "/api/v1/namespaces/ns/pods?labelSelector=app%3Dworker")
	}
	after := s.Workers("01POOL")
	if len(after) != 2 {
		t.Fatalf("after the restart: %+v", after)
	}
	for _, w := range after {
		if w.Broker != "dr" || w.ID == before[0].ID || w.ID == before[1].ID {
			t.Errorf("worker %+v", w)
		}
	}
}

type kubeHTTP struct {
	t   *testing.T
	url string
	c   *http.Client
}

func kubeClient(t *testing.T, kube *kubeapi.Server) kubeHTTP {
	return kubeHTTP{t: t, url: kube.URL(), c: &http.Client{Transport: &http.Transport{TLSClientConfig: &tls.Config{InsecureSkipVerify: true}}}} //nolint:gosec // the fake's own loopback certificate
}

func (k kubeHTTP) do(method, path string) {
	k.t.Helper()
	req, _ := http.NewRequest(method, k.url+path, nil)
	req.Header.Set("Authorization", "Bearer kube-token")
	res, err := k.c.Do(req)
	if err != nil {
		k.t.Fatal(err)
	}
	_ = res.Body.Close()
	if res.StatusCode != http.StatusOK {
		k.t.Fatalf("%s %s: HTTP %d", method, path, res.StatusCode)
	}
}
