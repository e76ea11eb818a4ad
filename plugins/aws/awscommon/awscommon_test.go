package awscommon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/smithy-go"

	"github.com/runbookhq/runbook/sdk/plugin"
)

func TestClassify(t *testing.T) {
	cases := map[string]struct {
		err       error
		retryable bool
		code      string
	}{
		"throttling":     {&smithy.GenericAPIError{Code: "ThrottlingException", Message: "Rate exceeded"}, true, "ThrottlingException"},
		"route53 busy":   {&smithy.GenericAPIError{Code: "PriorRequestNotComplete", Message: "wait"}, true, "PriorRequestNotComplete"},
		"after retries":  {&retry.MaxAttemptsError{Attempt: 3, Err: &smithy.GenericAPIError{Code: "Throttling"}}, true, "Throttling"},
		"not found":      {&smithy.GenericAPIError{Code: "GlobalClusterNotFoundFault", Message: "no such cluster"}, false, "GlobalClusterNotFoundFault"},
		"access denied":  {&smithy.GenericAPIError{Code: "AccessDenied", Message: "no"}, false, "AccessDenied"},
		"connection":     {&net.OpError{Op: "dial", Net: "tcp", Err: errors.New("connection refused")}, true, ""},
		"already marked": {plugin.FatalCode("X", "y"), false, "X"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			err := Classify(tc.err, "doing %s", "things")
			var pe *plugin.Error
			if !errors.As(err, &pe) {
				t.Fatalf("err = %v (%T)", err, err)
			}
			if pe.Retryable != tc.retryable || pe.Code != tc.code {
				t.Fatalf("err = %+v", pe)
			}
			if name != "already marked" && !strings.HasPrefix(pe.Message, "doing things: ") {
				t.Fatalf("message = %q", pe.Message)
			}
		})
	}
	// Context errors keep their identity, so the host sees a timeout or a cancellation.
	err := Classify(fmt.Errorf("op: %w", context.DeadlineExceeded), "waiting")
	if !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("err = %v", err)
	}
	if Classify(nil, "x") != nil {
		t.Fatal("nil error classified")
	}
}

func TestARNHelpers(t *testing.T) {
	r, err := RegionOfARN("arn:aws:rds:eu-west-3:123456789012:cluster:spacelift-dr")
	if err != nil || r != "eu-west-3" {
		t.Fatalf("region = %q, %v", r, err)
	}
	if _, err := RegionOfARN("arn:aws:s3:::bucket"); err == nil {
		t.Fatal("an ARN without a region must be an error")
	}
	if _, err := RegionOfARN("spacelift-dr"); err == nil {
		t.Fatal("a bare name must be an error")
	}
	for in, want := range map[string]string{
		"arn:aws:rds:eu-west-3:1:cluster:spacelift-dr":     "spacelift-dr",
		"arn:aws:ecs:eu-west-3:1:service/spacelift/server": "server",
		"spacelift-server": "spacelift-server",
		"arn:aws:autoscaling:eu-west-1:1:autoScalingGroup:x:y": "y",
	} {
		if got := ResourceName(in); got != want {
			t.Errorf("ResourceName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestConfigEndpointAndRegion(t *testing.T) {
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv("AWS_CONFIG_FILE", t.TempDir()+"/config")
	t.Setenv("AWS_SHARED_CREDENTIALS_FILE", t.TempDir()+"/credentials")
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "")
	ctx := context.Background()

	if _, err := (Conn{}).Config(ctx); err == nil {
		t.Fatal("a connection without a region must be an error")
	}
	cfg, err := Conn{Region: "eu-west-3"}.Config(ctx)
	if err != nil || cfg.Region != "eu-west-3" || cfg.BaseEndpoint != nil || EndpointOverridden(cfg, "S3") {
		t.Fatalf("plain config: %+v, %v", cfg.BaseEndpoint, err)
	}
	cfg, err = Conn{Region: "eu-west-3", EndpointURL: "http://127.0.0.1:4566"}.Config(ctx)
	if err != nil || aws.ToString(cfg.BaseEndpoint) != "http://127.0.0.1:4566" || !EndpointOverridden(cfg, "S3") {
		t.Fatalf("endpoint config: %v, %v", cfg.BaseEndpoint, err)
	}
	// The SDK's own AWS_ENDPOINT_URL support applies without the parameter.
	t.Setenv("AWS_ENDPOINT_URL", "http://localhost:4566")
	cfg, err = Conn{Region: "eu-west-3"}.Config(ctx)
	if err != nil || aws.ToString(cfg.BaseEndpoint) != "http://localhost:4566" || !EndpointOverridden(cfg, "S3") {
		t.Fatalf("AWS_ENDPOINT_URL config: %v, %v", cfg.BaseEndpoint, err)
	}
	t.Setenv("AWS_ENDPOINT_URL", "")
	t.Setenv("AWS_ENDPOINT_URL_S3", "http://127.0.0.1:9000")
	cfg, _ = Conn{Region: "eu-west-3"}.Config(ctx)
	if !EndpointOverridden(cfg, "S3") {
		t.Fatal("AWS_ENDPOINT_URL_S3 must count as an overridden S3 endpoint")
	}
	if _, err := (Conn{Region: "eu-west-3", Profile: "no-such-profile"}).Config(ctx); err == nil || !strings.Contains(err.Error(), `profile "no-such-profile"`) {
		t.Fatalf("unknown profile: %v", err)
	}
	if (GlobalParams{}).Conn().Region != "us-east-1" {
		t.Fatal("global services sign for us-east-1 by default")
	}
}

// S3 Control puts the account id in front of the endpoint's host; behind an
// IP-address endpoint that name must still reach the endpoint.
func TestAccountPrefixedHostReachesIPEndpoint(t *testing.T) {
	var host string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { host = r.Host }))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	cfg, err := Conn{Region: "eu-west-1", EndpointURL: srv.URL}.Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	_, port, _ := net.SplitHostPort(strings.TrimPrefix(srv.URL, "http://"))
	req, _ := http.NewRequest(http.MethodGet, "http://123456789012.127.0.0.1:"+port+"/v20180820/jobs", nil)
	resp, err := cfg.HTTPClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if host != "123456789012.127.0.0.1:"+port {
		t.Fatalf("Host = %q", host)
	}
}

// An endpoint that accepts the connection and never answers (a black-holed
// region) fails each request after the response timeout, without the
// SDK's retries, and the error is retryable (the step retries): the call
// does not hang until the step's deadline.
func TestBlackHoleTimesOut(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		mu.Unlock()
		select {
		case <-r.Context().Done():
		case <-release:
		}
	}))
	defer srv.Close()
	defer close(release)
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	t.Setenv(ResponseTimeoutEnv, "200ms")
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute) // the step's deadline
	defer cancel()
	cfg, err := Conn{Region: "eu-west-1", EndpointURL: srv.URL}.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rds.NewFromConfig(cfg).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{})
	if err == nil || ctx.Err() != nil {
		t.Fatalf("err = %v, ctx = %v: want a timeout before the deadline", err, ctx.Err())
	}
	var pe *plugin.Error
	if c := Classify(err, "describing"); !errors.As(c, &pe) || !pe.Retryable {
		t.Fatalf("classified %v, want retryable", c)
	}
	// Said in words (region, service, operation), the SDK's text as detail.
	if want := "describing: region unreachable: eu-west-1 did not answer RDS DescribeGlobalClusters within the response timeout (detail: operation error RDS: DescribeGlobalClusters"; !strings.HasPrefix(pe.Message, want) {
		t.Fatalf("message %q, want it to start %q", pe.Message, want)
	}
	mu.Lock()
	if requests != 1 {
		t.Fatalf("%d requests, want 1: a request without an answer is retried by the step, not the SDK", requests)
	}
	mu.Unlock()

	// The step's own deadline passes through as such (not retryable: the
	// engine sees the attempt's timeout).
	t.Setenv(ResponseTimeoutEnv, "1m")
	sctx, scancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer scancel()
	cfg, err = Conn{Region: "eu-west-1", EndpointURL: srv.URL}.Config(sctx)
	if err != nil {
		t.Fatal(err)
	}
	_, err = rds.NewFromConfig(cfg).DescribeGlobalClusters(sctx, &rds.DescribeGlobalClustersInput{})
	if c := Classify(err, "describing"); errors.As(c, &pe) || !errors.Is(c, context.DeadlineExceeded) {
		t.Fatalf("the step's deadline classified as %#v", c)
	}

	t.Setenv(ResponseTimeoutEnv, "soon")
	if _, err := (Conn{Region: "eu-west-1"}).Config(ctx); err == nil || !strings.Contains(err.Error(), ResponseTimeoutEnv) {
		t.Fatalf("a bad %s: %v", ResponseTimeoutEnv, err)
	}
}

func TestPoll(t *testing.T) {
	ctx := context.Background()
	n := 0
	err := Poll(ctx, time.Millisecond, "three checks", func(context.Context) (bool, error) { n++; return n == 3, nil })
	if err != nil || n != 3 {
		t.Fatalf("n = %d, err = %v", n, err)
	}
	boom := errors.New("boom")
	if err := Poll(ctx, time.Millisecond, "x", func(context.Context) (bool, error) { return false, boom }); err != boom {
		t.Fatalf("err = %v", err)
	}
	cctx, cancel := context.WithCancel(ctx)
	cancel()
	err = Poll(cctx, time.Hour, "the thing", func(context.Context) (bool, error) { return false, nil })
	if !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "waiting for the thing") {
		t.Fatalf("err = %v", err)
	}
	// Retryable failures are tolerated a few times in a row, then returned.
	n = 0
	transient := &plugin.Error{Code: "Throttling", Message: "throttled", Retryable: true}
	err = Poll(ctx, time.Millisecond, "x", func(context.Context) (bool, error) {
		n++
		if n%MaxTransientPollFailures != 0 && n < 2*MaxTransientPollFailures {
			return false, transient
		}
		return n >= 2*MaxTransientPollFailures, nil
	})
	if err != nil || n != 2*MaxTransientPollFailures {
		t.Fatalf("transient failures between successes: n = %d, err = %v", n, err)
	}
	n = 0
	if err := Poll(ctx, time.Millisecond, "x", func(context.Context) (bool, error) { n++; return false, transient }); err != transient || n != MaxTransientPollFailures {
		t.Fatalf("transient failures in a row: n = %d, err = %v", n, err)
	}
	c := Changes{}
	if !c.Changed("a", "1") || c.Changed("a", "1") || !c.Changed("a", "2") {
		t.Fatal("Changes must report only changes")
	}
}

// Throttling is retried by the SDK up to MaxAttempts times.
func TestThrottlingRetriedUpToMaxAttempts(t *testing.T) {
	var mu sync.Mutex
	requests := 0
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		requests++
		n := requests
		mu.Unlock()
		w.Header().Set("Content-Type", "text/xml")
		if n < MaxAttempts {
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprint(w, `<ErrorResponse><Error><Type>Sender</Type><Code>Throttling</Code><Message>Rate exceeded</Message></Error><RequestId>r</RequestId></ErrorResponse>`)
			return
		}
		fmt.Fprint(w, `<DescribeGlobalClustersResponse><DescribeGlobalClustersResult><GlobalClusters></GlobalClusters></DescribeGlobalClustersResult><ResponseMetadata><RequestId>r</RequestId></ResponseMetadata></DescribeGlobalClustersResponse>`)
	}))
	defer srv.Close()
	t.Setenv("AWS_ACCESS_KEY_ID", "testing")
	t.Setenv("AWS_SECRET_ACCESS_KEY", "testing")
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute) // a hang guard
	defer cancel()
	cfg, err := Conn{Region: "eu-west-1", EndpointURL: srv.URL}.Config(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := rds.NewFromConfig(cfg).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{}); err != nil {
		t.Fatalf("throttled %d times, then answered: %v", MaxAttempts-1, err)
	}
	mu.Lock()
	defer mu.Unlock()
	if requests != MaxAttempts {
		t.Fatalf("%d requests, want %d", requests, MaxAttempts)
	}
}
