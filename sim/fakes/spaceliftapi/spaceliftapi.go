// Package spaceliftapi is a local stand-in for the slice of Spacelift's
// GraphQL API that the spacelift plugin uses, for the simulation scenarios:
//
//   - apiKeyUser(id: ID!, secret: String!) { jwt }: exchanges an API key for a
//     JWT (no Authorization header needed); a wrong id or secret gets
//     apiKeyUser null and an "unauthorized" error, as Spacelift answers;
//   - workerPoolCycle(id: ID!): Boolean, which needs "Authorization: Bearer
//     <jwt>" with a JWT this server issued, and a known pool; every worker of
//     the pool drains and comes back as a new worker (SetCycleDelay);
//   - workerPool(id: ID!) { id name pendingRuns busyWorkers workers { id busy
//     createdAt drained metadata } }: the pool's registered workers (null for
//     an unknown pool), authorized likewise. Only the fields asked for are
//     answered, and a field the fake's schema lacks is a GraphQL error, so a
//     client asking for something Spacelift does not serve fails here too.
//
// Workers are processes that connect to the IoT broker the broker domain
// resolves to when they start (SetBrokerDomain, with a Resolver): the fake's
// own (AddWorkers), the instances of an emulated auto-scaling group
// (AttachASG: the emulator reports instances booting and going away), or the
// pods of the Kubernetes fake (AttachPods). A worker restarted before the
// domain moved stays connected to the old broker, and the pool read after
// the move does not list it (see workers.go).
//
// Arguments are read from variables ($id, $secret) or inline string literals.
// Every cycle is recorded (pool id, the JWT it carried, when), so a scenario
// can assert that the right pool was cycled with a token obtained from
// apiKeyUser. It listens on 127.0.0.1 only, over plain HTTP (the action allows
// http to loopback hosts).
package spaceliftapi

import (
	"context"
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
	// Operation is the field the request asked for: apiKeyUser,
	// workerPoolCycle, workerPool, or "" if none of them.
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

	// The worker model (workers.go).
	brokerDomain  string
	resolver      Resolver
	cycleDelay    time.Duration
	registerDelay time.Duration
	starts        map[string]int     // process -> starts and stops so far (a delayed registration checks it)
	workers       map[string]*Worker // id ->
	byProcess     map[string]string  // process -> worker id
	workerSeq     int
	processSeq    int
	connectErrors []ConnectError
	asgPools      map[string]string // "region/group" -> pool id (AttachASG)
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
	s := &Server{keyID: keyID, keySecret: keySecret, ln: ln, url: "http://" + ln.Addr().String(), pools: map[string]bool{}, jwts: map[string]bool{},
		cycleDelay: 2 * time.Second, workers: map[string]*Worker{}, byProcess: map[string]string{}, asgPools: map[string]string{}, starts: map[string]int{}}
	mux := http.NewServeMux()
	mux.HandleFunc("/graphql", s.graphql)
	mux.HandleFunc("/_emulator/events", s.emulatorEvents)
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
	fieldPattern = regexp.MustCompile(`\b(apiKeyUser|workerPoolCycle|workerPool)\s*\(([^)]*)\)`)
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
	rec := Request{Authorized: jwt != "" && s.jwts[jwt]}
	s.mu.Unlock()
	// The request is recorded before it is answered, so a test that has its
	// answer finds it in Requests.
	respond := func(data map[string]any, errs ...string) {
		s.mu.Lock()
		s.requests = append(s.requests, rec)
		s.mu.Unlock()
		answer(w, data, errs...)
	}

	loc := fieldPattern.FindStringSubmatchIndex(req.Query)
	if loc == nil {
		rec.Error = "unsupported query"
		respond(nil, `Cannot query field: this fake serves apiKeyUser, workerPoolCycle and workerPool`)
		return
	}
	op, rawArgs, after := req.Query[loc[2]:loc[3]], req.Query[loc[4]:loc[5]], req.Query[loc[1]:]
	rec.Operation = op
	a := args(rawArgs, req.Variables)
	switch op {
	case "apiKeyUser":
		if a["id"] != s.keyID || a["secret"] != s.keySecret {
			rec.Error = "unauthorized"
			respond(map[string]any{"apiKeyUser": nil}, "unauthorized")
			return
		}
		token := newJWT()
		s.mu.Lock()
		s.jwts[token] = true
		s.issued = append(s.issued, token)
		s.mu.Unlock()
		respond(map[string]any{"apiKeyUser": map[string]any{"jwt": token}})
	case "workerPoolCycle":
		if !rec.Authorized {
			rec.Error = "unauthorized"
			respond(map[string]any{"workerPoolCycle": nil}, "unauthorized")
			return
		}
		s.mu.Lock()
		if !s.pools[a["id"]] {
			s.mu.Unlock()
			rec.Error = "not found"
			respond(map[string]any{"workerPoolCycle": nil}, fmt.Sprintf("worker pool %q not found", a["id"]))
			return
		}
		s.cycles = append(s.cycles, Cycle{PoolID: a["id"], JWT: jwt, At: time.Now().UTC()})
		restart := s.cycleLocked(a["id"])
		s.mu.Unlock()
		restart()
		respond(map[string]any{"workerPoolCycle": true})
	case "workerPool":
		if !rec.Authorized {
			rec.Error = "unauthorized"
			respond(map[string]any{"workerPool": nil}, "unauthorized")
			return
		}
		data, err := s.workerPool(r.Context(), a["id"], after)
		if err != nil {
			rec.Error = err.Error()
			respond(map[string]any{"workerPool": nil}, err.Error())
			return
		}
		respond(map[string]any{"workerPool": data})
	}
}

// workerPool answers workerPool(id) with the selection that follows it.
func (s *Server) workerPool(ctx context.Context, id, selection string) (any, error) {
	sel, _, err := parseSelection(selection)
	if err != nil {
		return nil, fmt.Errorf("Syntax Error: %v", err)
	}
	if len(sel) == 0 {
		return nil, fmt.Errorf(`Field "workerPool" of type "WorkerPool" must have a selection of subfields.`)
	}
	for _, f := range sel {
		if f.name == "workers" && len(f.sub) == 0 {
			return nil, fmt.Errorf(`Field "workers" of type "[Worker!]!" must have a selection of subfields.`)
		}
	}
	s.mu.Lock()
	known := s.pools[id]
	s.mu.Unlock()
	if !known {
		return nil, nil // Spacelift answers null for a pool it does not know (spacectl checks for it)
	}
	workers, err := s.servedWorkers(ctx, id)
	if err != nil {
		return nil, fmt.Errorf("internal server error: %v", err)
	}
	busy := 0
	for _, w := range workers {
		if w.Busy {
			busy++
		}
	}
	var werr error
	out, err := project("WorkerPool", sel, func(name string) (any, bool) {
		switch name {
		case "id":
			return id, true
		case "name":
			return id, true
		case "pendingRuns":
			return 0, true
		case "busyWorkers":
			return busy, true
		case "workers":
			var wsel []field
			for _, f := range sel {
				if f.name == "workers" {
					wsel = f.sub
				}
			}
			list := []any{}
			for _, w := range workers {
				m, err := project("Worker", wsel, func(n string) (any, bool) { return workerField(w, n) })
				if err != nil {
					werr = err
					return nil, true
				}
				list = append(list, m)
			}
			return list, true
		}
		return nil, false
	})
	if err != nil {
		return nil, err
	}
	if werr != nil {
		return nil, werr
	}
	return out, nil
}
