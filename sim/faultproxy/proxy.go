// Package faultproxy is a reverse proxy for the AWS emulator that injects faults:
// latency, AWS-shaped throttling and server errors at a rate, failing every call of
// one service or operation, and black-holing a whole region (the region is read from
// each request's SigV4 credential scope). It keeps a log of the requests it saw, so
// that a test can assert that a mutating call reached the emulator exactly once.
//
// Faults are rules, switchable at runtime through the Go API or the HTTP control
// endpoint under /_fault/ on the proxy's own address. Random choices come from a
// seeded generator, so a fault sequence is reproducible for a given request order.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"net"
	"net/http"
	"net/http/httptrace"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Blackhole modes.
const (
	// Hang holds the connection open without answering until the client gives up
	// (or Rule.Hold elapses, or the proxy closes): a region that does not answer.
	Hang = "hang"
	// Close closes the connection at once without an answer: a region that refuses.
	Close = "close"
)

// Rule is one fault. Empty Region, Service and Operation match anything; Operation
// is the API name (UpdateService, SwitchoverGlobalCluster, ChangeResourceRecordSets).
type Rule struct {
	ID        string `json:"id,omitempty"`
	Region    string `json:"region,omitempty"`
	Service   string `json:"service,omitempty"`
	Operation string `json:"operation,omitempty"`

	// Latency (plus a uniform random share of Jitter) is added before forwarding.
	Latency Duration `json:"latency,omitempty"`
	Jitter  Duration `json:"jitter,omitempty"`

	// ErrorRate (0..1) is the probability of answering with an Error instead of
	// forwarding. 1 fails every matching call.
	ErrorRate float64   `json:"error_rate,omitempty"`
	Error     ErrorKind `json:"error,omitempty"` // default Throttle
	// AfterForward forwards the request first and replaces the emulator's answer with
	// the error (or the black hole): the call took effect but the client cannot know.
	AfterForward bool `json:"after_forward,omitempty"`

	// Blackhole ("hang" or "close") drops every matching request.
	Blackhole string `json:"blackhole,omitempty"`
	// Hold bounds how long a "hang" holds a connection (0: until the client gives up).
	Hold Duration `json:"hold,omitempty"`

	// BodyContains restricts the rule to rest-xml requests (Route 53,
	// CloudFront) whose body contains it, e.g. "<Type>A</Type>" to fail only
	// the change of one record of a batch of concurrent changes.
	BodyContains string `json:"body_contains,omitempty"`

	// Limit makes the rule apply to that many requests (faults for an error rule,
	// matches otherwise) and then stop; 0 is no limit.
	Limit int `json:"limit,omitempty"`
	// Used counts the requests the rule applied to.
	Used int `json:"used,omitempty"`
}

func (r *Rule) matches(c Call) bool {
	return (r.Region == "" || r.Region == c.Region) &&
		(r.Service == "" || strings.EqualFold(r.Service, c.Service)) &&
		(r.Operation == "" || r.Operation == c.Operation) &&
		(r.BodyContains == "" || bytes.Contains(c.Body, []byte(r.BodyContains))) &&
		(r.Limit == 0 || r.Used < r.Limit)
}

func (r *Rule) validate() error {
	if r.ErrorRate < 0 || r.ErrorRate > 1 {
		return fmt.Errorf("error_rate %v is not in [0, 1]", r.ErrorRate)
	}
	switch r.Error {
	case "", Throttle, ServerError, Unavailable:
	default:
		return fmt.Errorf("error %q is not one of throttle, 5xx, 503", r.Error)
	}
	switch r.Blackhole {
	case "", Hang, Close:
	default:
		return fmt.Errorf("blackhole %q is not one of hang, close", r.Blackhole)
	}
	if r.Latency < 0 || r.Jitter < 0 || r.Hold < 0 || r.Limit < 0 {
		return errors.New("latency, jitter, hold and limit must not be negative")
	}
	if r.Latency == 0 && r.Jitter == 0 && r.ErrorRate == 0 && r.Blackhole == "" {
		return errors.New("a rule needs latency, jitter, error_rate or blackhole")
	}
	return nil
}

// Entry is one request in the log.
type Entry struct {
	Time   time.Time `json:"time"`
	Region string    `json:"region"`
	// SignedRegion is the region the request was signed for, when it is not
	// Region (a global service's call from a client in another region).
	SignedRegion string        `json:"signed_region,omitempty"`
	Service      string        `json:"service"`
	Operation    string        `json:"operation"`
	Method       string        `json:"method"`
	Path         string        `json:"path"`
	Status       int           `json:"status"` // 0: no answer (black hole, client gave up)
	Forwarded    bool          `json:"forwarded"`
	Faulted      bool          `json:"faulted"`
	Fault        string        `json:"fault,omitempty"` // throttle, 5xx, 503, hang, close, latency
	Rule         string        `json:"rule,omitempty"`
	Duration     time.Duration `json:"duration"`
}

// Proxy is the fault-injecting reverse proxy; it is an http.Handler.
type Proxy struct {
	target *url.URL
	rp     *httputil.ReverseProxy

	mu     sync.Mutex
	rules  []*Rule
	nextID int
	rng    *rand.Rand
	seed   uint64
	log    []Entry

	recording bool
	exchanges []Exchange

	closing   chan struct{}
	closeOnce sync.Once
	srv       *http.Server
	ln        net.Listener
	// URL is the proxy's address when started with Start.
	URL string
}

// New returns a proxy to target (the emulator's URL) as an http.Handler; Start also
// listens. seed seeds the random choices (error rates, jitter).
func New(target string, seed uint64) (*Proxy, error) {
	u, err := url.Parse(target)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("faultproxy: target %q is not an absolute URL", target)
	}
	p := &Proxy{target: u, closing: make(chan struct{})}
	p.reseed(seed)
	p.rp = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			pr.SetURL(u)
			// Keep the client's Host: the emulator reads some services from it.
			pr.Out.Host = pr.In.Host
		},
		Transport: reachTransport{http.DefaultTransport},
		ErrorHandler: func(w http.ResponseWriter, r *http.Request, err error) {
			if errors.Is(err, context.Canceled) {
				return
			}
			w.WriteHeader(http.StatusBadGateway)
			fmt.Fprintf(w, "faultproxy: emulator: %v", err)
		},
	}
	return p, nil
}

// Start listens on addr (default 127.0.0.1:0, a free port) and serves the proxy.
func Start(target, addr string, seed uint64) (*Proxy, error) {
	p, err := New(target, seed)
	if err != nil {
		return nil, err
	}
	if addr == "" {
		addr = "127.0.0.1:0"
	}
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		return nil, err
	}
	if ip := net.ParseIP(host); host != "localhost" && (ip == nil || !ip.IsLoopback()) {
		return nil, fmt.Errorf("faultproxy: listen address %s is not a loopback address", addr)
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	p.ln = ln
	p.URL = "http://" + ln.Addr().String()
	p.srv = &http.Server{Handler: p, ReadHeaderTimeout: 30 * time.Second}
	go func() { _ = p.srv.Serve(ln) }()
	return p, nil
}

// Close stops the proxy, releasing connections held by black holes.
func (p *Proxy) Close() error {
	p.closeOnce.Do(func() { close(p.closing) })
	if p.srv != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := p.srv.Shutdown(ctx); err != nil {
			return p.srv.Close()
		}
	}
	return nil
}

func (p *Proxy) reseed(seed uint64) {
	p.seed = seed
	p.rng = rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
}

// Seed restarts the random sequence from seed.
func (p *Proxy) Seed(seed uint64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.reseed(seed)
}

// AddRule adds a fault and returns its id.
func (p *Proxy) AddRule(r Rule) (string, error) {
	if err := r.validate(); err != nil {
		return "", fmt.Errorf("faultproxy: %w", err)
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	p.nextID++
	if r.ID == "" {
		r.ID = fmt.Sprintf("r%d", p.nextID)
	}
	for _, old := range p.rules {
		if old.ID == r.ID {
			return "", fmt.Errorf("faultproxy: rule %q exists", r.ID)
		}
	}
	r.Used = 0
	p.rules = append(p.rules, &r)
	return r.ID, nil
}

// RemoveRule removes a fault; it reports whether the rule existed.
func (p *Proxy) RemoveRule(id string) bool {
	p.mu.Lock()
	defer p.mu.Unlock()
	for i, r := range p.rules {
		if r.ID == id {
			p.rules = append(p.rules[:i], p.rules[i+1:]...)
			return true
		}
	}
	return false
}

// Rules returns a copy of the current faults.
func (p *Proxy) Rules() []Rule {
	p.mu.Lock()
	defer p.mu.Unlock()
	out := make([]Rule, len(p.rules))
	for i, r := range p.rules {
		out[i] = *r
	}
	return out
}

// Clear removes every fault (the log stays).
func (p *Proxy) Clear() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.rules = nil
}

// BlackholeRegion drops every request to region (mode Hang or Close).
func (p *Proxy) BlackholeRegion(region, mode string) (string, error) {
	return p.AddRule(Rule{Region: region, Blackhole: mode})
}

// SetLatency adds latency (plus up to jitter) to every request.
func (p *Proxy) SetLatency(latency, jitter time.Duration) (string, error) {
	return p.AddRule(Rule{Latency: Duration(latency), Jitter: Duration(jitter)})
}

// SetErrorRate answers a share rate of every request with kind.
func (p *Proxy) SetErrorRate(rate float64, kind ErrorKind) (string, error) {
	return p.AddRule(Rule{ErrorRate: rate, Error: kind})
}

// FailOperation fails every call of service (and of operation, if not empty) with kind.
func (p *Proxy) FailOperation(service, operation string, kind ErrorKind) (string, error) {
	return p.AddRule(Rule{Service: service, Operation: operation, ErrorRate: 1, Error: kind})
}

// Log returns a copy of the request log, oldest first.
func (p *Proxy) Log() []Entry {
	p.mu.Lock()
	defer p.mu.Unlock()
	return append([]Entry(nil), p.log...)
}

// ResetLog empties the request log.
func (p *Proxy) ResetLog() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = nil
}

// Filter selects log entries; empty fields match anything.
type Filter struct {
	Region, Service, Operation string
}

func (f Filter) match(e Entry) bool {
	return (f.Region == "" || f.Region == e.Region) &&
		(f.Service == "" || strings.EqualFold(f.Service, e.Service)) &&
		(f.Operation == "" || f.Operation == e.Operation)
}

// Counts are the requests a filter matched.
type Counts struct {
	Total     int `json:"total"`     // every request the proxy saw
	Forwarded int `json:"forwarded"` // requests that reached the emulator
	Faulted   int `json:"faulted"`   // requests a rule answered, dropped or delayed
}

// CountWhere counts the requests that match f.
func (p *Proxy) CountWhere(f Filter) Counts {
	p.mu.Lock()
	defer p.mu.Unlock()
	var c Counts
	for _, e := range p.log {
		if !f.match(e) {
			continue
		}
		c.Total++
		if e.Forwarded {
			c.Forwarded++
		}
		if e.Faulted {
			c.Faulted++
		}
	}
	return c
}

// Count is the number of calls of service's operation (any region) that reached
// the emulator: the number of times the operation took effect.
func (p *Proxy) Count(service, operation string) int {
	return p.CountWhere(Filter{Service: service, Operation: operation}).Forwarded
}

// Attempts is the number of calls of service's operation the proxy saw, faulted or not.
func (p *Proxy) Attempts(service, operation string) int {
	return p.CountWhere(Filter{Service: service, Operation: operation}).Total
}

// decision is what the rules say about one request.
type decision struct {
	latency   time.Duration
	errKind   ErrorKind
	after     bool
	blackhole string
	hold      time.Duration
	rule      string
	latRule   string
}

func (p *Proxy) decide(c Call) decision {
	p.mu.Lock()
	defer p.mu.Unlock()
	var d decision
	for _, r := range p.rules {
		if !r.matches(c) {
			continue
		}
		if r.Blackhole != "" {
			if d.blackhole == "" && d.errKind == "" {
				d.blackhole, d.hold, d.rule, d.after = r.Blackhole, time.Duration(r.Hold), r.ID, r.AfterForward
				r.Used++
			}
			continue
		}
		if r.Latency > 0 || r.Jitter > 0 {
			d.latency += time.Duration(r.Latency)
			if r.Jitter > 0 {
				d.latency += time.Duration(p.rng.Int64N(int64(r.Jitter) + 1))
			}
			if d.latRule == "" {
				d.latRule = r.ID
			}
			if r.ErrorRate == 0 {
				r.Used++
			}
		}
		if r.ErrorRate > 0 {
			// Draw for every matching error rule, so that the random sequence depends
			// on the requests only, not on which rule fired.
			hit := p.rng.Float64() < r.ErrorRate
			if hit && d.errKind == "" && d.blackhole == "" {
				d.errKind = r.Error
				if d.errKind == "" {
					d.errKind = Throttle
				}
				d.after, d.rule = r.AfterForward, r.ID
				r.Used++
			}
		}
	}
	return d
}

func (p *Proxy) record(e Entry) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.log = append(p.log, e)
}

func (p *Proxy) uint64() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.rng.Uint64()
}

// ServeHTTP proxies one request, applying the rules.
func (p *Proxy) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if strings.HasPrefix(r.URL.Path, controlPrefix) {
		p.serveControl(w, r)
		return
	}
	if strings.HasPrefix(r.URL.Path, "/_sim/") || strings.HasPrefix(r.URL.Path, "/moto-api") {
		// The emulator's own control API is not AWS: never faulted or logged.
		p.rp.ServeHTTP(w, r)
		return
	}
	start := time.Now()
	c := parseCall(r)
	d := p.decide(c)
	e := Entry{Time: start, Region: c.Region, SignedRegion: c.SignedRegion, Service: c.Service, Operation: c.Operation, Method: r.Method, Path: r.URL.Path}
	// Forwarded is whether the request was written to the emulator in full
	// (reachTransport), whatever happened to the answer: a client that died
	// while the emulator answered makes the reverse proxy abort the handler,
	// and the call took effect all the same.
	reached := new(atomic.Bool)
	r = r.WithContext(context.WithValue(r.Context(), reachedKey{}, reached))
	var x *Exchange
	if p.isRecording() {
		xx := startExchange(r, c, start)
		x = &xx
	}
	defer func() {
		e.Forwarded = reached.Load()
		e.Duration = time.Since(start)
		p.record(e)
		if x != nil {
			p.addExchange(*x)
		}
	}()

	if d.latency > 0 {
		e.Faulted, e.Fault, e.Rule = true, "latency", d.latRule
		t := time.NewTimer(d.latency)
		select {
		case <-t.C:
		case <-r.Context().Done():
			t.Stop()
			return
		case <-p.closing:
			t.Stop()
			panic(http.ErrAbortHandler)
		}
	}
	if d.errKind == "" && d.blackhole == "" {
		sw := &statusWriter{ResponseWriter: w}
		if x == nil {
			p.rp.ServeHTTP(sw, r)
			e.Status = sw.status()
			return
		}
		tw := &teeWriter{statusWriter: sw}
		p.rp.ServeHTTP(tw, r) // panics (ErrAbortHandler) if the client went away
		e.Status = sw.status()
		x.Answered = reached.Load() && r.Context().Err() == nil
		x.Status, x.ResponseHeaders, x.ResponseBody = sw.status(), recordedHeaders(w.Header(), false), tw.body.Bytes()
		x.Truncated = x.Truncated || tw.truncated
		return
	}
	e.Faulted, e.Rule = true, d.rule
	if d.after {
		// Let the call take effect, then lose its answer.
		p.rp.ServeHTTP(discardWriter{}, r)
	}
	if d.blackhole != "" {
		e.Fault = d.blackhole
		p.blackhole(r, d) // the deferred record runs as it unwinds
		return
	}
	e.Fault = string(d.errKind)
	sw := &statusWriter{ResponseWriter: w}
	writeError(sw, d.errKind, c, p.uint64)
	e.Status = sw.status()
}

// blackhole holds or closes the connection; it never writes an answer.
func (p *Proxy) blackhole(r *http.Request, d decision) {
	if d.blackhole == Hang {
		var hold <-chan time.Time
		if d.hold > 0 {
			t := time.NewTimer(d.hold)
			defer t.Stop()
			hold = t.C
		}
		select {
		case <-r.Context().Done(): // the client gave up
			return
		case <-hold:
		case <-p.closing:
		}
	}
	// Close the connection without an answer.
	panic(http.ErrAbortHandler)
}

type statusWriter struct {
	http.ResponseWriter
	code int
}

func (s *statusWriter) WriteHeader(code int) {
	if s.code == 0 {
		s.code = code
	}
	s.ResponseWriter.WriteHeader(code)
}

func (s *statusWriter) Write(b []byte) (int, error) {
	if s.code == 0 {
		s.code = http.StatusOK
	}
	return s.ResponseWriter.Write(b)
}

func (s *statusWriter) Flush() {
	if f, ok := s.ResponseWriter.(http.Flusher); ok {
		f.Flush()
	}
}

func (s *statusWriter) status() int { return s.code }

type discardWriter struct{}

func (discardWriter) Header() http.Header         { return http.Header{} }
func (discardWriter) Write(b []byte) (int, error) { return len(b), nil }
func (discardWriter) WriteHeader(int)             {}

var _ io.Writer = discardWriter{}

type reachedKey struct{}

// reachTransport marks, on the inbound request's context, that the
// outbound request was written to the emulator in full.
type reachTransport struct{ base http.RoundTripper }

func (t reachTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if mark, ok := req.Context().Value(reachedKey{}).(*atomic.Bool); ok {
		req = req.WithContext(httptrace.WithClientTrace(req.Context(), &httptrace.ClientTrace{
			WroteRequest: func(i httptrace.WroteRequestInfo) {
				if i.Err == nil {
					mark.Store(true)
				}
			},
		}))
	}
	return t.base.RoundTrip(req)
}
