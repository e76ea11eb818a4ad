// Package spaceliftapi is a local stand-in for the slice of Spacelift's
// GraphQL API that the spacelift plugin's worker_pool_cycle action uses, for
// the simulation scenarios:
//
//   - apiKeyUser(id: ID!, secret: String!) { jwt }: exchanges an API key for a
//     JWT (no Authorization header needed); a wrong id or secret gets
//     apiKeyUser null and an "unauthorized" error, as Spacelift answers;
//   - workerPoolCycle(id: ID!): Boolean, which needs "Authorization: Bearer
//     <jwt>" with a JWT this server issued, and a known pool.
//
// Arguments are read from variables ($id, $secret) or inline string literals.
// Every cycle is recorded (pool id, the JWT it carried, when), so a scenario
// can assert that the right pool was cycled with a token obtained from
// apiKeyUser. It listens on 127.0.0.1 only, over plain HTTP (the action allows
// http to loopback hosts).
package spaceliftapi

import (
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"
)

// Cycle is one accepted workerPoolCycle mutation.
type Cycle struct {
	PoolID string
	// JWT is the bearer token the mutation carried (issued by apiKeyUser).
	JWT string
	At  time.Time
}

// Request is one GraphQL request as received.
type Request struct {
	// Operation is the field the request asked for: apiKeyUser, workerPoolCycle, or "" if neither.
	Operation string
	// Authorized says whether it carried a JWT this server issued.
	Authorized bool
	// Error is the GraphQL error answered, if any.
	Error string
}

// Server is a running fake API.
type Server struct {
	keyID, keySecret string
	ln               net.Listener
	srv              *http.Server
	url              string

	mu       sync.Mutex
	pools    map[string]bool
	jwts     map[string]bool
	issued   []string
	cycles   []Cycle
	requests []Request
}

// Start serves the fake API on 127.0.0.1, accepting one API key.
func Start(keyID, keySecret string) (*Server, error) {
	if keyID == "" || keySecret == "" {
		return nil, errors.New("spaceliftapi: an API key id and secret are required")
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	s := &Server{keyID: keyID, keySecret: keySecret, ln: ln, url: "http://" + ln.Addr().String(), pools: map[string]bool{}, jwts: map[string]bool{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/graphql", s.graphql)
	s.srv = &http.Server{Handler: mux, ReadHeaderTimeout: 10 * time.Second}
	go func() { _ = s.srv.Serve(ln) }()
	return s, nil
}

// Endpoint is the GraphQL URL (the action's endpoint parameter).
func (s *Server) Endpoint() string { return s.url + "/graphql" }

// Close stops the server.
func (s *Server) Close() error { return s.srv.Close() }

// AddPool makes a worker pool id known.
func (s *Server) AddPool(id string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.pools[id] = true
}

// Cycles returns the accepted cycles, in order.
func (s *Server) Cycles() []Cycle {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Cycle(nil), s.cycles...)
}

// IssuedJWTs returns the JWTs apiKeyUser handed out, in order.
func (s *Server) IssuedJWTs() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.issued...)
}

// Requests returns every GraphQL request, in order.
func (s *Server) Requests() []Request {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Request(nil), s.requests...)
}

type gqlRequest struct {
	Query         string         `json:"query"`
	OperationName string         `json:"operationName"`
	Variables     map[string]any `json:"variables"`
}

var (
	fieldPattern = regexp.MustCompile(`\b(apiKeyUser|workerPoolCycle)\s*\(([^)]*)\)`)
	argPattern   = regexp.MustCompile(`(\w+)\s*:\s*(\$\w+|"(?:[^"\\]|\\.)*")`)
)

// args reads a field's arguments, resolving $variables.
func args(raw string, vars map[string]any) map[string]string {
	out := map[string]string{}
	for _, m := range argPattern.FindAllStringSubmatch(raw, -1) {
		v := m[2]
		if strings.HasPrefix(v, "$") {
			if s, ok := vars[v[1:]].(string); ok {
				out[m[1]] = s
			}
			continue
		}
		var s string
		if json.Unmarshal([]byte(v), &s) == nil {
			out[m[1]] = s
		}
	}
	return out
}

func answer(w http.ResponseWriter, data map[string]any, errs ...string) {
	w.Header().Set("Content-Type", "application/json")
	body := map[string]any{"data": data}
	if len(errs) > 0 {
		var list []map[string]any
		for _, e := range errs {
			list = append(list, map[string]any{"message": e})
		}
		body["errors"] = list
	}
	_ = json.NewEncoder(w).Encode(body)
}

func newJWT() string {
	part := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	sig := make([]byte, 32)
	_, _ = rand.Read(sig)
	return part(map[string]string{"alg": "HS256", "typ": "JWT"}) + "." +
		part(map[string]any{"iss": "spaceliftapi-fake", "exp": time.Now().Add(time.Hour).Unix()}) + "." +
		base64.RawURLEncoding.EncodeToString(sig)
}

func (s *Server) graphql(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodPost {
		http.Error(w, "method not allowed", http.StatusMethodNotAllowed)
		return
	}
	var req gqlRequest
	if err := json.NewDecoder(io.LimitReader(r.Body, 1<<20)).Decode(&req); err != nil {
		http.Error(w, "invalid JSON", http.StatusBadRequest)
		return
	}
	jwt := strings.TrimPrefix(r.Header.Get("Authorization"), "Bearer ")
	s.mu.Lock()
	defer s.mu.Unlock()
	rec := Request{Authorized: jwt != "" && s.jwts[jwt]}
	defer func() { s.requests = append(s.requests, rec) }()

	m := fieldPattern.FindStringSubmatch(req.Query)
	if m == nil {
		rec.Error = "unsupported query"
		answer(w, nil, `Cannot query field: this fake serves apiKeyUser and workerPoolCycle`)
		return
	}
	rec.Operation = m[1]
	a := args(m[2], req.Variables)
	switch m[1] {
	case "apiKeyUser":
		if a["id"] != s.keyID || a["secret"] != s.keySecret {
			rec.Error = "unauthorized"
			answer(w, map[string]any{"apiKeyUser": nil}, "unauthorized")
			return
		}
		token := newJWT()
		s.jwts[token] = true
		s.issued = append(s.issued, token)
		answer(w, map[string]any{"apiKeyUser": map[string]any{"jwt": token}})
	case "workerPoolCycle":
		if !rec.Authorized {
			rec.Error = "unauthorized"
			answer(w, map[string]any{"workerPoolCycle": nil}, "unauthorized")
			return
		}
		if !s.pools[a["id"]] {
			rec.Error = "not found"
			answer(w, map[string]any{"workerPoolCycle": nil}, fmt.Sprintf("worker pool %q not found", a["id"]))
			return
		}
		s.cycles = append(s.cycles, Cycle{PoolID: a["id"], JWT: jwt, At: time.Now().UTC()})
		answer(w, map[string]any{"workerPoolCycle": true})
	}
}
