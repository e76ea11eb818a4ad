// Package webhook is a local receiver for the notices the notify plugin
// sends (a Slack incoming webhook, a generic JSON webhook), for the
// simulation scenarios. It accepts POSTs only at the secret path it was
// started with, as Slack does (the URL is the credential), answers 404
// elsewhere, and records every delivery.
package webhook

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/http"
	"strings"
	"sync"
	"time"
)

// Delivery is one POST received at the secret path.
type Delivery struct {
	Header http.Header
	Body   []byte
	At     time.Time
}

// Receiver is a running webhook receiver.
type Receiver struct {
	srv  *http.Server
	url  string
	path string

	mu         sync.Mutex
	deliveries []Delivery
	misses     int
}

// Start serves a receiver on 127.0.0.1 whose URL ends in a random secret
// path under prefix (e.g. "/services/T000/B000" for a Slack-like URL).
func Start(prefix string) (*Receiver, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	r := &Receiver{path: strings.TrimSuffix(prefix, "/") + "/" + hex.EncodeToString(b)}
	r.url = "http://" + ln.Addr().String() + r.path
	r.srv = &http.Server{Handler: http.HandlerFunc(r.serve), ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = r.srv.Serve(ln) }()
	return r, nil
}

// URL is the full webhook URL: a secret.
func (r *Receiver) URL() string { return r.url }

// SecretPath is the URL's path, the part that authenticates.
func (r *Receiver) SecretPath() string { return r.path }

// Close stops the receiver.
func (r *Receiver) Close() error { return r.srv.Close() }

// Deliveries returns the POSTs received at the secret path, in order.
func (r *Receiver) Deliveries() []Delivery {
	r.mu.Lock()
	defer r.mu.Unlock()
	return append([]Delivery(nil), r.deliveries...)
}

// Misses counts requests to any other path or with another method.
func (r *Receiver) Misses() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.misses
}

func (r *Receiver) serve(w http.ResponseWriter, req *http.Request) {
	body, _ := io.ReadAll(io.LimitReader(req.Body, 1<<20))
	r.mu.Lock()
	defer r.mu.Unlock()
	if req.Method != http.MethodPost || req.URL.Path != r.path {
		r.misses++
		http.Error(w, "no_service", http.StatusNotFound)
		return
	}
	r.deliveries = append(r.deliveries, Delivery{Header: req.Header.Clone(), Body: body, At: time.Now().UTC()})
	_, _ = io.WriteString(w, "ok")
}
