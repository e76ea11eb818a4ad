package main

import (
	"context"
	"errors"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/runbookhq/runbook/sdk/plugin"
)

type cycleParams struct {
	WorkerPoolID string `json:"worker_pool_id" required:"true" doc:"the worker pool's id (as shown in Spacelift, e.g. 01HXYZ...)"`
	apiParams
}

// apiParams say where the Spacelift API is and how to authenticate; every
// action that calls the API embeds them.
type apiParams struct {
	Hostname     string        `json:"hostname" doc:"the Spacelift server hostname; the API is https://<hostname>/graphql"`
	Endpoint     string        `json:"endpoint" doc:"the full GraphQL URL instead of hostname (http only for loopback hosts)"`
	APIKeyID     string        `json:"api_key_id" doc:"the API key's id; default: $SPACELIFT_API_KEY_ID"`
	APIKeySecret string        `json:"api_key_secret" secret:"true" doc:"the API key's secret; default: $SPACELIFT_API_KEY_SECRET"`
	Timeout      time.Duration `json:"request_timeout" default:"30s" doc:"limit for each HTTP request"`
}

type cycleOutputs struct {
	WorkerPoolID string    `json:"worker_pool_id" doc:"the pool that was cycled"`
	Cycled       bool      `json:"cycled" doc:"whether Spacelift accepted the cycle"`
	Time         time.Time `json:"time" doc:"when Spacelift accepted the cycle"`
	Endpoint     string    `json:"endpoint" doc:"the GraphQL URL that was called"`
}

// cycler performs worker_pool_cycle; httpClient is replaceable so tests can
// trust a local TLS server.
type cycler struct {
	httpClient func(timeout time.Duration) *http.Client
}

func cycleAction() plugin.Action { return (&cycler{httpClient: newHTTPClient}).action() }

func (cy *cycler) action() plugin.Action {
	return plugin.NewAction("worker_pool_cycle", cy.cycleWorkerPool).
		Doc("Cycles a Spacelift worker pool (GraphQL workerPoolCycle): every worker drains its current run and restarts, " +
			"so it reconnects to the broker the IoT domain now points at. Authenticates with an API key exchanged for a JWT. " +
			"Idempotent: cycling again restarts the workers once more, which is harmless.").
		Idempotent().
		Plan(planCycle).
		Validate(validateCycle)
}

// graphQLEndpoint turns hostname or endpoint into the URL to call,
// refusing plain http except to loopback hosts.
func graphQLEndpoint(p apiParams) (string, error) {
	if (p.Hostname == "") == (p.Endpoint == "") {
		return "", errors.New("set exactly one of hostname and endpoint")
	}
	if p.Hostname != "" {
		h := strings.TrimSuffix(strings.TrimSpace(p.Hostname), ".")
		u, err := url.Parse("https://" + h + "/graphql")
		if h == "" || strings.ContainsAny(h, "/?#@ ") || err != nil || u.Host != h {
			return "", errors.New("hostname must be a host name such as spacelift.myorg.com, with an optional :port (use endpoint for a full URL)")
		}
		return u.String(), nil
	}
	u, err := url.Parse(p.Endpoint)
	if err != nil || u.Host == "" {
		return "", errors.New("endpoint must be an absolute URL such as https://spacelift.myorg.com/graphql")
	}
	if u.User != nil {
		return "", errors.New("endpoint must not carry credentials: use api_key_id and api_key_secret")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopback(u.Hostname()) {
			return "", errors.New("endpoint must use https (plain http is allowed only for loopback hosts)")
		}
	default:
		return "", errors.New("endpoint must be an https URL")
	}
	return u.String(), nil
}

func isLoopback(host string) bool {
	if strings.EqualFold(host, "localhost") {
		return true
	}
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}

func validateCycle(req plugin.ValidateRequest[cycleParams]) []plugin.Diagnostic {
	p := req.Params
	var diags []plugin.Diagnostic
	if !req.Unknown("/worker_pool_id") && strings.TrimSpace(p.WorkerPoolID) == "" {
		diags = append(diags, plugin.Errorf("/worker_pool_id", "worker_pool_id is empty"))
	}
	return append(diags, validateAPI(p.apiParams, req.Unknown)...)
}

// validateAPI checks hostname/endpoint when both are known.
func validateAPI(p apiParams, unknown func(string) bool) []plugin.Diagnostic {
	if unknown("/hostname") || unknown("/endpoint") {
		return nil
	}
	if _, err := graphQLEndpoint(p); err != nil {
		path := "/endpoint"
		if p.Hostname != "" || p.Endpoint == "" {
			path = "/hostname"
		}
		return []plugin.Diagnostic{plugin.Errorf(path, "%v", err)}
	}
	return nil
}

func planCycle(_ context.Context, req plugin.PlanRequest[cycleParams]) (plugin.Plan, error) {
	p := req.Params
	ch := plugin.Change{Resource: "worker pool " + p.WorkerPoolID, Field: "workers", After: "cycled (drain and restart)", Kind: plugin.ChangeAction}
	summary := "cycle worker pool " + p.WorkerPoolID
	if req.Unknown("/worker_pool_id") {
		ch.Resource, summary = "worker pool (known after apply)", "cycle a worker pool"
	}
	if !req.Unknown("/hostname") && !req.Unknown("/endpoint") {
		if ep, err := graphQLEndpoint(p.apiParams); err == nil {
			summary += " via " + ep
		}
	}
	// Plan does not call the API: during an outage the API is the thing
	// being failed over.
	return plugin.Plan{Summary: summary, Changes: []plugin.Change{ch}}, nil
}

// login builds a client for p's endpoint and exchanges the API key (the
// parameters', else the plugin's environment's) for a JWT.
func (cy *cycler) login(ctx context.Context, p apiParams, progress func(string, ...any)) (*graphQLClient, string, error) {
	endpoint, err := graphQLEndpoint(p)
	if err != nil {
		return nil, "", plugin.FatalCode("InvalidParams", "%v", err)
	}
	keyID, secret := p.APIKeyID, p.APIKeySecret
	if keyID == "" {
		keyID = os.Getenv("SPACELIFT_API_KEY_ID")
	}
	if secret == "" {
		secret = os.Getenv("SPACELIFT_API_KEY_SECRET")
	}
	if keyID == "" || secret == "" {
		return nil, "", plugin.FatalCode("MissingCredentials", "no Spacelift API key: set api_key_id and api_key_secret (or SPACELIFT_API_KEY_ID and SPACELIFT_API_KEY_SECRET in the plugin's environment)")
	}
	c := &graphQLClient{http: cy.httpClient(p.Timeout), endpoint: endpoint, redact: redactor(secret)}
	progress("authenticating with the API key", "endpoint", endpoint)
	jwt, err := c.token(ctx, keyID, secret)
	if err != nil {
		return nil, "", err
	}
	c.redact = redactor(secret, jwt)
	return c, jwt, nil
}

func (cy *cycler) cycleWorkerPool(ctx context.Context, req plugin.Request[cycleParams]) (cycleOutputs, error) {
	p := req.Params
	if strings.TrimSpace(p.WorkerPoolID) == "" {
		return cycleOutputs{}, plugin.FatalCode("InvalidParams", "worker_pool_id is empty")
	}
	c, jwt, err := cy.login(ctx, p.apiParams, req.Progress)
	if err != nil {
		return cycleOutputs{}, err
	}
	endpoint := c.endpoint

	req.Progress("cycling the worker pool", "worker_pool_id", p.WorkerPoolID)
	ok, err := c.cycle(ctx, jwt, p.WorkerPoolID)
	if err != nil {
		return cycleOutputs{}, err
	}
	if !ok {
		return cycleOutputs{}, plugin.FatalCode("NotCycled", "cycling worker pool %s: Spacelift answered workerPoolCycle = false (the pool was not cycled)", p.WorkerPoolID)
	}
	now := time.Now().UTC()
	req.Log.Info("worker pool cycled", "worker_pool_id", p.WorkerPoolID, "endpoint", endpoint)
	req.Progress("worker pool cycled: workers drain and restart", "worker_pool_id", p.WorkerPoolID)
	return cycleOutputs{WorkerPoolID: p.WorkerPoolID, Cycled: true, Time: now, Endpoint: endpoint}, nil
}
