// Package awscommon is what the AWS-backed plugin actions (runbook-plugin-aws
// and the Route 53 action of runbook-plugin-dns) share: the connection
// parameters every action takes, building SDK configurations from them,
// classifying SDK errors as retryable or fatal, ARN helpers and polling.
package awscommon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"

	"github.com/runbookhq/runbook/sdk/plugin"
)

// Conn is where and as whom an action talks to AWS. Clients are built per
// call from it, so one plugin process can serve steps in several regions
// and accounts at once.
type Conn struct {
	Region      string
	Profile     string
	EndpointURL string
}

// Params are the connection parameters of a regional action; embed them in
// the action's parameter struct.
type Params struct {
	Region      string `json:"region" required:"true" doc:"AWS region the action works in (e.g. eu-west-1)."`
	Profile     string `json:"profile" doc:"Shared config profile to use; default: the SDK's default credential chain (environment, SSO, web identity, instance role...)."`
	EndpointURL string `json:"endpoint_url" doc:"Send every request to this endpoint instead of AWS's (an emulator, a proxy). Default: AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> if set, else AWS's own endpoints."`
}

// Conn returns the connection the parameters describe.
func (p Params) Conn() Conn {
	return Conn{Region: p.Region, Profile: p.Profile, EndpointURL: p.EndpointURL}
}

// GlobalParams are the connection parameters of an action on a global
// service (Route 53, CloudFront), whose region only picks the signing
// region and defaults to us-east-1.
type GlobalParams struct {
	Region      string `json:"region" default:"us-east-1" doc:"Region used to sign requests to the global service."`
	Profile     string `json:"profile" doc:"Shared config profile to use; default: the SDK's default credential chain."`
	EndpointURL string `json:"endpoint_url" doc:"Send every request to this endpoint instead of AWS's (an emulator, a proxy). Default: AWS_ENDPOINT_URL / AWS_ENDPOINT_URL_<SERVICE> if set, else AWS's own endpoints."`
}

// Conn returns the connection the parameters describe.
func (p GlobalParams) Conn() Conn {
	r := p.Region
	if r == "" {
		r = "us-east-1"
	}
	return Conn{Region: r, Profile: p.Profile, EndpointURL: p.EndpointURL}
}

// WithRegion returns the same connection in another region.
func (c Conn) WithRegion(region string) Conn { c.Region = region; return c }

// Config loads an SDK configuration: the default credential chain (or the
// profile), the SDK's standard retryer with MaxAttempts (throttling and 5xx
// retried with backoff; see newRetryer), and the endpoint override if any.
func (c Conn) Config(ctx context.Context) (aws.Config, error) {
	if c.Region == "" {
		return aws.Config{}, fmt.Errorf("no AWS region given")
	}
	opts := []func(*config.LoadOptions) error{config.WithRegion(c.Region)}
	if c.Profile != "" {
		opts = append(opts, config.WithSharedConfigProfile(c.Profile))
	}
	if c.EndpointURL != "" {
		opts = append(opts, config.WithBaseEndpoint(c.EndpointURL))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		who := "the default credential chain"
		if c.Profile != "" {
			who = fmt.Sprintf("profile %q", c.Profile)
		}
		return aws.Config{}, fmt.Errorf("loading AWS configuration (%s, region %s): %w", who, c.Region, err)
	}
	timeout, err := ResponseTimeout()
	if err != nil {
		return aws.Config{}, err
	}
	var dial func(ctx context.Context, network, addr string) (net.Conn, error)
	if cfg.BaseEndpoint != nil {
		if u, err := url.Parse(*cfg.BaseEndpoint); err == nil && bareHost(u.Hostname()) {
			dial = prefixDialer(u.Hostname())
		}
	}
	if name := plugin.ActionName(ctx); name != "" {
		// Every request says which action made it: the simulation checks
		// each call against the permissions that action declares.
		cfg.APIOptions = append(cfg.APIOptions, awsmiddleware.AddUserAgentKeyValue(UserAgentKey, name))
	}
	// Errors say which region a request was sent to (Describe).
	cfg.APIOptions = append(cfg.APIOptions, regionNamed(c.Region))
	cfg.Retryer = newRetryer
	cfg.HTTPClient = awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.ResponseHeaderTimeout = timeout
		if dial != nil {
			tr.DialContext = dial
		}
	})
	return cfg, nil
}

// UserAgentKey is the User-Agent key whose value is the action that made a
// request: "runbook-action/aws.ecs_services".
const UserAgentKey = "runbook-action"

// MaxAttempts is how many times the SDK sends one call that is throttled
// or answered with a 5xx: AWS's control planes throttle hardest during the
// regional incidents a failover is run in, and at a 20% error rate three
// attempts leave one call in 125 failed (a ten-bucket check makes 40 calls),
// five one in 3,125.
const MaxAttempts = 5

// newRetryer is the SDK's standard retryer (exponential backoff with
// jitter, at most 20 s between attempts, its client-side retry quota) with
// MaxAttempts, except that a request left without an answer (the response
// timeout, a connection that cannot be made) is not retried by the SDK: a
// region that does not answer would otherwise cost MaxAttempts response
// timeouts per call. That failure is still reported retryable (Classify),
// so the step's own retry policy tries again, once per attempt.
func newRetryer() aws.Retryer {
	return retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = MaxAttempts
		o.Retryables = append([]retry.IsErrorRetryable{noAnswer{}}, o.Retryables...)
	})
}

// noAnswer marks a request that got no answer as not retryable by the SDK.
type noAnswer struct{}

func (noAnswer) IsErrorRetryable(err error) aws.Ternary {
	var ne net.Error
	// (net/http's response timeout also matches context.DeadlineExceeded;
	// the step's own deadline needs no rule: the SDK stops retrying once
	// the call's context is done.)
	if errors.As(err, &ne) && ne.Timeout() {
		return aws.FalseTernary
	}
	var oe *net.OpError
	if errors.As(err, &oe) && oe.Op == "dial" {
		return aws.FalseTernary
	}
	return aws.UnknownTernary
}

// DefaultResponseTimeout bounds the wait for the answer to one HTTP request
// (its headers). A region that does not answer at all (a black hole: the
// connection is accepted, nothing comes back) then fails each request after
// this long and the SDK's retries, then the step's, apply; without it a call
// hangs until the step's timeout, 15 minutes by default, for each attempt.
// AWS's control-plane APIs answer in well under a second.
const DefaultResponseTimeout = 10 * time.Second

// ResponseTimeoutEnv overrides DefaultResponseTimeout (a duration, "30s").
const ResponseTimeoutEnv = "RUNBOOK_AWS_RESPONSE_TIMEOUT"

// ResponseTimeout is the bound on waiting for one request's answer.
func ResponseTimeout() (time.Duration, error) {
	v := os.Getenv(ResponseTimeoutEnv)
	if v == "" {
		return DefaultResponseTimeout, nil
	}
	d, err := time.ParseDuration(v)
	if err != nil || d <= 0 {
		return 0, fmt.Errorf("%s=%q: want a positive duration such as 30s", ResponseTimeoutEnv, v)
	}
	return d, nil
}

// bareHost reports whether subdomains of host cannot resolve: an IP
// address or localhost. Some services put a prefix in front of the
// endpoint's host (S3 Control: the account id), which only works with a
// real DNS name.
func bareHost(host string) bool {
	return net.ParseIP(host) != nil || host == "localhost"
}

// prefixDialer dials host for any name "<prefix>.<host>", and other names
// as usual.
func prefixDialer(host string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, port, err := net.SplitHostPort(addr); err == nil && strings.HasSuffix(h, "."+host) {
			addr = net.JoinHostPort(host, port)
		}
		return d.DialContext(ctx, network, addr)
	}
}

// EndpointOverridden reports whether requests for the service (its SDK id,
// e.g. "S3") go to a custom endpoint rather than AWS's: S3 then needs
// path-style addressing, since an emulator or proxy cannot serve
// bucket-name subdomains.
func EndpointOverridden(cfg aws.Config, serviceID string) bool {
	if cfg.BaseEndpoint != nil && *cfg.BaseEndpoint != "" {
		return true
	}
	env := "AWS_ENDPOINT_URL_" + strings.ToUpper(strings.ReplaceAll(serviceID, " ", "_"))
	return os.Getenv(env) != ""
}
