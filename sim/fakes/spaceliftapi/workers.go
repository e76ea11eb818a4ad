package spaceliftapi

import (
	"context"
	"encoding/json"
	"fmt"
	"maps"
	"sort"
	"strings"
	"time"
)

// Resolver answers what a DNS name resolves to now: the target of its
// CNAME (or alias), as a worker's resolver would hand it to the worker at
// the moment it starts. The simulation's DNS server, a read of the
// emulator's Route 53 record (Route53Resolver) or a test's function can
// stand behind it.
type Resolver interface {
	Resolve(ctx context.Context, name string) (string, error)
}

// ResolverFunc adapts a function to Resolver.
type ResolverFunc func(ctx context.Context, name string) (string, error)

// Resolve calls f.
func (f ResolverFunc) Resolve(ctx context.Context, name string) (string, error) { return f(ctx, name) }

// Worker is one worker process registered in a pool.
//
// A worker connects to the IoT broker its broker domain resolves to when
// the process starts, and stays with it until it restarts (Spacelift's DR
// procedure restarts workers after the domain moves for that reason). A
// restarted process registers as a new worker: a new id and a new createdAt.
type Worker struct {
	ID     string
	PoolID string
	// Process names what runs the worker, stable across its restarts:
	// "asg:<region>/<group>/<instance-id>", "pod:<namespace>/<name>", or
	// "process:<pool>/<n>" for one the fake runs itself (AddWorkers).
	Process   string
	CreatedAt time.Time
	// Broker is what the broker domain resolved to when the worker started
	// ("" when no broker domain is set).
	Broker   string
	Busy     bool
	Drained  bool
	Metadata map[string]string
}

// ConnectError is a worker start whose broker look-up failed: the process
// ran but never registered.
type ConnectError struct {
	PoolID, Process string
	At              time.Time
	Err             error
}

func normName(s string) string { return strings.ToLower(strings.TrimSuffix(strings.TrimSpace(s), ".")) }

// SetBrokerDomain makes workers resolve domain (the IoT broker domain)
// with r when they start, and the pool list only the workers connected to
// the broker domain resolves to when it is read: the API is answered by
// the region whose broker the domain points at, and a worker still
// connected to the other region's broker is not among its workers. Without
// a broker domain every worker is listed.
func (s *Server) SetBrokerDomain(domain string, r Resolver) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.brokerDomain, s.resolver = normName(domain), r
}

// SetCycleDelay is how long a cycled worker takes to drain, exit and come
// back as a new worker (default 2s; 0 restarts it within the mutation).
func (s *Server) SetCycleDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.cycleDelay = d
}

// SetRegisterDelay is how long a worker process takes from its start (when
// it looks the broker up) to its registration in the pool (default 0: at
// once). A real worker boots its launcher first, seconds before it
// registers; a delay over a second also keeps a worker restarted after the
// broker record moved from registering within the very second it moved,
// which createdAt (whole seconds) cannot tell apart from before.
func (s *Server) SetRegisterDelay(d time.Duration) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.registerDelay = d
}

// resolveBroker looks the broker domain up now. Called without s.mu held:
// the resolver may call the emulator, whose hooks call this server back.
func (s *Server) resolveBroker(ctx context.Context) (string, bool, error) {
	s.mu.Lock()
	domain, r := s.brokerDomain, s.resolver
	s.mu.Unlock()
	if domain == "" || r == nil {
		return "", false, nil
	}
	target, err := r.Resolve(ctx, domain)
	if err != nil {
		return "", true, fmt.Errorf("resolving %s: %w", domain, err)
	}
	return normName(target), true, nil
}

// StartWorker starts (or restarts) the worker process named process in
// pool poolID: it resolves the broker domain now and registers a new
// worker connected to that broker, replacing the one the process ran
// before. A failed look-up registers nothing and is kept (ConnectErrors).
// With a register delay (SetRegisterDelay) the worker registers that much
// later, unless the process has been stopped or started again meanwhile;
// the Worker returned is the one that will register.
func (s *Server) StartWorker(ctx context.Context, poolID, process string, metadata map[string]string) (Worker, error) {
	broker, _, err := s.resolveBroker(ctx)
	now := time.Now().UTC()
	s.mu.Lock()
	defer s.mu.Unlock()
	if old, ok := s.byProcess[process]; ok {
		delete(s.workers, old)
		delete(s.byProcess, process)
	}
	s.starts[process]++
	if err != nil {
		s.connectErrors = append(s.connectErrors, ConnectError{PoolID: poolID, Process: process, At: now, Err: err})
		return Worker{}, err
	}
	s.workerSeq++
	w := &Worker{ID: fmt.Sprintf("01SIMW%020d", s.workerSeq), PoolID: poolID, Process: process, CreatedAt: now, Broker: broker, Metadata: maps.Clone(metadata)}
	if s.registerDelay <= 0 {
		s.registerLocked(w)
		return *w, nil
	}
	start := s.starts[process]
	w.CreatedAt = now.Add(s.registerDelay)
	time.AfterFunc(s.registerDelay, func() {
		s.mu.Lock()
		defer s.mu.Unlock()
		if s.starts[process] == start { // not stopped or restarted since
			w.CreatedAt = time.Now().UTC()
			s.registerLocked(w)
		}
	})
	return *w, nil
}

func (s *Server) registerLocked(w *Worker) {
	s.workers[w.ID] = w
	s.byProcess[w.Process] = w.ID
}

// StopWorker ends the worker process named process (its machine or pod is
// gone). It reports whether one was running.
func (s *Server) StopWorker(process string) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.starts[process]++ // a registration still pending is dropped
	id, ok := s.byProcess[process]
	if ok {
		delete(s.workers, id)
		delete(s.byProcess, process)
	}
	return ok
}

// AddWorkers starts n worker processes of the fake's own in the pool (the
// workers a Cycle restarts when nothing else runs them).
func (s *Server) AddWorkers(ctx context.Context, poolID string, n int) ([]Worker, error) {
	var out []Worker
	for i := 0; i < n; i++ {
		s.mu.Lock()
		s.processSeq++
		process := fmt.Sprintf("process:%s/%d", poolID, s.processSeq)
		s.mu.Unlock()
		w, err := s.StartWorker(ctx, poolID, process, nil)
		if err != nil {
			return out, err
		}
		out = append(out, w)
	}
	return out, nil
}

// Workers returns every registered worker of the pool, whatever broker it
// is connected to, oldest first.
func (s *Server) Workers(poolID string) []Worker {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.poolWorkersLocked(poolID)
}

func (s *Server) poolWorkersLocked(poolID string) []Worker {
	var out []Worker
	for _, w := range s.workers {
		if w.PoolID == poolID {
			c := *w
			c.Metadata = maps.Clone(w.Metadata)
			out = append(out, c)
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}

// ConnectErrors returns the worker starts whose broker look-up failed.
func (s *Server) ConnectErrors() []ConnectError {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]ConnectError(nil), s.connectErrors...)
}

// cycleLocked drains every worker of the pool; each comes back as a new
// worker after the cycle delay (at once when it is 0, before the mutation
// answers). Caller holds s.mu; restarts run after it is released.
func (s *Server) cycleLocked(poolID string) (restart func()) {
	var procs []Worker
	for _, w := range s.workers {
		if w.PoolID == poolID {
			w.Drained = true
			procs = append(procs, *w)
		}
	}
	sort.Slice(procs, func(i, j int) bool { return procs[i].Process < procs[j].Process })
	delay := s.cycleDelay
	return func() {
		run := func() {
			for _, w := range procs {
				_, _ = s.StartWorker(context.Background(), poolID, w.Process, w.Metadata)
			}
		}
		if delay <= 0 {
			run()
			return
		}
		time.AfterFunc(delay, run)
	}
}

// servedWorkers is the pool's worker list as the API answers it: the
// workers connected to the broker the domain resolves to now.
func (s *Server) servedWorkers(ctx context.Context, poolID string) ([]Worker, error) {
	broker, filter, err := s.resolveBroker(ctx)
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var out []Worker
	for _, w := range s.poolWorkersLocked(poolID) {
		if !filter || w.Broker == broker {
			out = append(out, w)
		}
	}
	return out, nil
}

// workerField answers one field of the Worker type, with the names and
// types Spacelift's own clients read: id, busy, createdAt (Unix seconds),
// drained, metadata (a JSON object as a string) -- the fields of
// workerPool(id) { workers { ... } } in spacelift-io/ec2-workerpool-autoscaler
// (internal/worker.go, WorkerLegacy) and spacectl (internal/cmd/workerpools/worker.go).
func workerField(w Worker, name string) (any, bool) {
	switch name {
	case "id":
		return w.ID, true
	case "busy":
		return w.Busy, true
	case "createdAt":
		return w.CreatedAt.Unix(), true
	case "drained":
		return w.Drained, true
	case "metadata":
		md := w.Metadata
		if md == nil {
			md = map[string]string{}
		}
		b, _ := json.Marshal(md)
		return string(b), true
	}
	return nil, false
}
