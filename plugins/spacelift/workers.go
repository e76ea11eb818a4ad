package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// The pool's workers, read the way Spacelift's own clients read them:
// workerPool(id: ID!) is null for a pool the key cannot see, and each
// worker has id, busy, createdAt (Unix seconds, an Int), drained and
// metadata (a JSON object in a string, e.g. the EC2 instance id). Sources:
// spacelift-io/ec2-workerpool-autoscaler internal/worker.go and
// internal/worker_pool_details.go (the WorkerLegacy shape, which every
// backend serves, unlike the newer availableAt), and spacectl
// internal/cmd/workerpools/worker.go (list and drain).
const workersQuery = `query RunbookWorkerPoolWorkers($id: ID!) { workerPool(id: $id) { id workers { id busy createdAt drained metadata } } }`

type poolWorker struct {
	ID        string `json:"id"`
	Busy      bool   `json:"busy"`
	CreatedAt int64  `json:"createdAt"`
	Drained   bool   `json:"drained"`
	Metadata  string `json:"metadata"`
}

// workerInfo is a worker as the actions report it.
type workerInfo struct {
	ID        string            `json:"id"`
	CreatedAt time.Time         `json:"created_at"`
	Busy      bool              `json:"busy"`
	Drained   bool              `json:"drained"`
	Metadata  map[string]string `json:"metadata,omitempty"`
}

func (w poolWorker) info() workerInfo {
	var md map[string]string
	_ = json.Unmarshal([]byte(w.Metadata), &md) // free-form: what it is not, is left out
	return workerInfo{ID: w.ID, CreatedAt: time.Unix(w.CreatedAt, 0).UTC(), Busy: w.Busy, Drained: w.Drained, Metadata: md}
}

// workers reads the pool's registered workers.
func (c *graphQLClient) workers(ctx context.Context, jwt, poolID string) ([]poolWorker, error) {
	var data struct {
		WorkerPool *struct {
			Workers []poolWorker `json:"workers"`
		} `json:"workerPool"`
	}
	err := c.do(ctx, "reading the workers of pool "+poolID, jwt, gqlRequest{
		Query: workersQuery, OperationName: "RunbookWorkerPoolWorkers", Variables: map[string]any{"id": poolID},
	}, &data)
	if err != nil {
		return nil, err
	}
	if data.WorkerPool == nil {
		return nil, plugin.FatalCode("NotFound", "worker pool %s not found (or the API key cannot see it)", poolID)
	}
	ws := data.WorkerPool.Workers
	sort.Slice(ws, func(i, j int) bool {
		return ws[i].CreatedAt < ws[j].CreatedAt || ws[i].CreatedAt == ws[j].CreatedAt && ws[i].ID < ws[j].ID
	})
	return ws, nil
}

// --- spacelift.worker_pool_workers: one read, for the pre-flight. -------------------------

type poolWorkersParams struct {
	WorkerPoolID string `json:"worker_pool_id" required:"true" doc:"the worker pool's id (as shown in Spacelift)"`
	apiParams
}

type poolWorkersOutputs struct {
	WorkerPoolID string       `json:"worker_pool_id"`
	Count        int          `json:"count" doc:"workers registered in the pool now"`
	Active       int          `json:"active" doc:"of those, the ones not drained"`
	Workers      []workerInfo `json:"workers" doc:"every registered worker, oldest first: id, created_at, busy, drained, metadata"`
	ReadAt       time.Time    `json:"read_at"`
}

func poolWorkersAction() plugin.Action {
	cy := &cycler{httpClient: newHTTPClient}
	return plugin.NewAction("worker_pool_workers", func(ctx context.Context, req plugin.Request[poolWorkersParams]) (poolWorkersOutputs, error) {
		p := req.Params
		c, jwt, err := cy.login(ctx, p.apiParams, req.Progress)
		if err != nil {
			return poolWorkersOutputs{}, err
		}
		ws, err := c.workers(ctx, jwt, p.WorkerPoolID)
		if err != nil {
			return poolWorkersOutputs{}, err
		}
		out := poolWorkersOutputs{WorkerPoolID: p.WorkerPoolID, Workers: []workerInfo{}, ReadAt: time.Now().UTC()}
		for _, w := range ws {
			out.Workers = append(out.Workers, w.info())
			if !w.Drained {
				out.Active++
			}
		}
		out.Count = len(ws)
		req.Progress(fmt.Sprintf("worker pool %s: %d workers registered, %d not drained", p.WorkerPoolID, out.Count, out.Active))
		return out, nil
	}).
		Doc("Reads a Spacelift worker pool's registered workers (GraphQL workerPool(id) { workers { id busy createdAt drained metadata } }): " +
			"how many there are before a failover, so the run can later wait for as many to reconnect. Read-only.").
		ReadOnly().
		Validate(func(req plugin.ValidateRequest[poolWorkersParams]) []plugin.Diagnostic {
			var diags []plugin.Diagnostic
			if !req.Unknown("/worker_pool_id") && strings.TrimSpace(req.Params.WorkerPoolID) == "" {
				diags = append(diags, plugin.Errorf("/worker_pool_id", "worker_pool_id is empty"))
			}
			return append(diags, validateAPI(req.Params.apiParams, req.Unknown)...)
		})
}

// --- spacelift.workers_reconnected: the proof that a restart worked. ---------------------

type reconnectedParams struct {
	WorkerPoolID    string        `json:"worker_pool_id" required:"true" doc:"the worker pool's id (as shown in Spacelift)"`
	RegisteredAfter string        `json:"registered_after" required:"true" doc:"count only workers registered after this time (RFC 3339): when the IoT broker record moved, e.g. the traffic step's finished_at"`
	MinWorkers      int           `json:"min_workers" required:"true" min:"1" doc:"how many such workers must be registered (and not drained) to call the pool reconnected"`
	WaitTimeout     time.Duration `json:"wait_timeout" default:"15m" doc:"how long to wait for them"`
	PollInterval    time.Duration `json:"poll_interval" default:"5s" doc:"how often to read the pool while waiting"`
	apiParams
}

type reconnectedOutputs struct {
	WorkerPoolID    string       `json:"worker_pool_id"`
	Reconnected     int          `json:"reconnected" doc:"workers registered after registered_after and not drained, at the last read"`
	Expected        int          `json:"expected" doc:"min_workers"`
	Total           int          `json:"total" doc:"workers the pool listed at the last read"`
	Workers         []workerInfo `json:"workers" doc:"the reconnected workers, oldest first"`
	RegisteredAfter time.Time    `json:"registered_after"`
	Evidence        string       `json:"evidence" doc:"what ended the wait, in words"`
	DoneEvidence    string       `json:"done_evidence" doc:"the same, under the name reports show in \"What ended each wait\""`
	Waited          string       `json:"waited" doc:"how long the wait took"`
	Checked         bool         `json:"checked" doc:"true; false only when run by a plan, which reads once and does not wait"`
}

// fresh reports whether w counts as reconnected: not drained, and created
// after since. createdAt has second resolution, so a worker counts only if
// its second is after since's second: one created in the very second the
// record moved might have started before it moved, and is not counted.
func fresh(w poolWorker, since time.Time) bool {
	return !w.Drained && w.CreatedAt > since.Unix()
}

// parseTime reads an RFC 3339 time (fractional seconds allowed), as UTC.
func parseTime(s string) (time.Time, error) {
	t, err := time.Parse(time.RFC3339Nano, strings.TrimSpace(s))
	if err != nil {
		return time.Time{}, fmt.Errorf("%q is not an RFC 3339 time such as 2025-03-04T05:06:07Z", s)
	}
	return t.UTC(), nil
}

func reconnected(ws []poolWorker, since time.Time) []workerInfo {
	out := []workerInfo{}
	for _, w := range ws {
		if fresh(w, since) {
			out = append(out, w.info())
		}
	}
	return out
}

func describeWorkers(ws []workerInfo) string {
	var parts []string
	for _, w := range ws {
		parts = append(parts, w.ID+" (created "+w.CreatedAt.Format(time.RFC3339)+")")
	}
	return strings.Join(parts, ", ")
}

// planRead reports whether the engine runs this read-only action during a
// plan: it gives such a call the idempotency key "<run>/<step>/plan"
// (sdk/engine/plan.go, planRead). A plan reads once and never waits.
func planRead(key string) bool { return strings.HasSuffix(key, "/plan") }

func reconnectedAction() plugin.Action {
	cy := &cycler{httpClient: newHTTPClient}
	return plugin.NewAction("workers_reconnected", func(ctx context.Context, req plugin.Request[reconnectedParams]) (reconnectedOutputs, error) {
		return cy.waitReconnected(ctx, &req)
	}).
		Doc("Waits until a Spacelift worker pool lists at least min_workers workers registered after registered_after (the moment the IoT broker record moved) " +
			"and not drained: the proof that the restarted workers reached the new broker. Reads workerPool(id) { workers { id busy createdAt drained metadata } } " +
			"every poll_interval, up to wait_timeout; on timeout it fails saying how many reconnected. Read-only: a plan reads once and does not wait.").
		ReadOnly().
		Validate(func(req plugin.ValidateRequest[reconnectedParams]) []plugin.Diagnostic {
			p := req.Params
			var diags []plugin.Diagnostic
			if !req.Unknown("/worker_pool_id") && strings.TrimSpace(p.WorkerPoolID) == "" {
				diags = append(diags, plugin.Errorf("/worker_pool_id", "worker_pool_id is empty"))
			}
			if !req.Unknown("/registered_after") {
				if _, err := parseTime(p.RegisteredAfter); err != nil {
					diags = append(diags, plugin.Errorf("/registered_after", "%v", err))
				}
			}
			if !req.Unknown("/wait_timeout") && p.WaitTimeout <= 0 {
				diags = append(diags, plugin.Errorf("/wait_timeout", "wait_timeout must be positive"))
			}
			return append(diags, validateAPI(p.apiParams, req.Unknown)...)
		}).
		Plan(func(ctx context.Context, req plugin.PlanRequest[reconnectedParams]) (plugin.Plan, error) {
			p := req.Params
			after := "the broker record moved (known at run time)"
			if !req.Unknown("/registered_after") {
				after = p.RegisteredAfter
			}
			want := "the expected number of"
			if !req.Unknown("/min_workers") {
				want = fmt.Sprintf("at least %d", p.MinWorkers)
			}
			summary := fmt.Sprintf("wait up to %s for %s workers of pool %s registered after %s", p.WaitTimeout, want, p.WorkerPoolID, after)
			plan := plugin.Plan{Summary: summary, Changes: []plugin.Change{{Resource: "worker pool " + p.WorkerPoolID, Field: "workers reconnected", Kind: plugin.ChangeNoop}}}
			if req.Unknown("/worker_pool_id") || req.Unknown("/hostname") || req.Unknown("/endpoint") || req.Unknown("/api_key_id") || req.Unknown("/api_key_secret") {
				return plan, nil
			}
			// One read, never a wait: what the pool lists now.
			rctx, cancel := context.WithTimeout(ctx, 15*time.Second)
			defer cancel()
			c, jwt, err := cy.login(rctx, p.apiParams, func(string, ...any) {})
			var ws []poolWorker
			if err == nil {
				ws, err = c.workers(rctx, jwt, p.WorkerPoolID)
			}
			if err != nil {
				plan.Diagnostics = append(plan.Diagnostics, plugin.Diagnostic{Severity: plugin.SeverityWarning, Summary: "could not read the pool now: " + err.Error()})
				return plan, nil
			}
			plan.Summary += fmt.Sprintf(" (the pool lists %d workers now)", len(ws))
			return plan, nil
		})
}

func (cy *cycler) waitReconnected(ctx context.Context, req *plugin.Request[reconnectedParams]) (reconnectedOutputs, error) {
	p := req.Params
	start := time.Now()
	since, err := parseTime(p.RegisteredAfter)
	out := reconnectedOutputs{WorkerPoolID: p.WorkerPoolID, Expected: p.MinWorkers, RegisteredAfter: since, Workers: []workerInfo{}, Checked: true}
	if err != nil {
		return out, plugin.FatalCode("InvalidParams", "registered_after: %v", err)
	}
	if strings.TrimSpace(p.WorkerPoolID) == "" {
		return out, plugin.FatalCode("InvalidParams", "worker_pool_id is empty")
	}
	if p.MinWorkers < 1 {
		return out, plugin.FatalCode("InvalidParams", "min_workers must be at least 1")
	}
	c, jwt, err := cy.login(ctx, p.apiParams, req.Progress)
	if err != nil {
		return out, err
	}
	interval := p.PollInterval
	if interval <= 0 {
		interval = 5 * time.Second
	}
	wctx, cancel := context.WithTimeout(ctx, p.WaitTimeout)
	defer cancel()
	var last []poolWorker
	var lastErr error
	reported := -1
	relogged := false
	for {
		ws, err := c.workers(wctx, jwt, p.WorkerPoolID)
		var pe *plugin.Error
		switch {
		case err == nil:
			last, lastErr, relogged = ws, nil, false
			got := reconnected(ws, since)
			out.Reconnected, out.Total, out.Workers = len(got), len(ws), got
			if len(got) != reported {
				reported = len(got)
				req.Progress(fmt.Sprintf("%d of %d workers reconnected (registered after %s; the pool lists %d)", len(got), p.MinWorkers, since.Format(time.RFC3339), len(ws)),
					"worker_pool_id", p.WorkerPoolID)
			}
			if len(got) >= p.MinWorkers {
				out.Waited = time.Since(start).Round(time.Second).String()
				out.Evidence = fmt.Sprintf("%d workers of pool %s registered after %s and not drained (at least %d expected): %s",
					len(got), p.WorkerPoolID, since.Format(time.RFC3339), p.MinWorkers, describeWorkers(got))
				out.DoneEvidence = out.Evidence
				return out, nil
			}
			if planRead(req.IdempotencyKey) {
				out.Checked, out.Waited = false, "0s"
				out.Evidence = fmt.Sprintf("plan: read once, not waited: %d of %d workers registered after %s", len(got), p.MinWorkers, since.Format(time.RFC3339))
				out.DoneEvidence = out.Evidence
				return out, nil
			}
		case errors.As(err, &pe) && pe.Code == "Unauthorized" && !relogged && wctx.Err() == nil:
			// The token may have expired during a long wait: log in again,
			// once; refused again after that, the key may not read the pool.
			c2, jwt2, lerr := cy.login(wctx, p.apiParams, req.Progress)
			if lerr != nil {
				return out, lerr
			}
			c, jwt, lastErr, relogged = c2, jwt2, err, true
			continue
		case errors.As(err, &pe) && pe.Retryable && wctx.Err() == nil:
			// The API may be moving with the failover: keep reading until the wait ends.
			lastErr = err
			req.Progress("reading the pool failed; retrying", "error", err.Error())
		case wctx.Err() != nil:
			// the wait ended during the read
		default:
			return out, err
		}
		select {
		case <-ctx.Done():
			return out, ctx.Err()
		case <-wctx.Done():
			out.Waited = time.Since(start).Round(time.Second).String()
			msg := fmt.Sprintf("%d of %d workers reconnected to worker pool %s within %s (registered after %s and not drained)",
				out.Reconnected, p.MinWorkers, p.WorkerPoolID, p.WaitTimeout, since.Format(time.RFC3339))
			if last != nil {
				msg += fmt.Sprintf("; the pool lists %d workers", len(last))
				if old := len(last) - out.Reconnected; old > 0 {
					msg += fmt.Sprintf(", %d of them registered before that or drained (still on the old broker, or not restarted)", old)
				}
			}
			if lastErr != nil {
				msg += "; last read failed: " + lastErr.Error()
			}
			out.Evidence = msg
			return out, plugin.FatalCode("NotReconnected", "%s", msg)
		case <-time.After(interval):
		}
	}
}
