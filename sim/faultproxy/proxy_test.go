package faultproxy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ecs"
	"github.com/aws/aws-sdk-go-v2/service/iot"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	"github.com/aws/aws-sdk-go-v2/service/route53"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/smithy-go"
	"github.com/google/go-cmp/cmp"
)

// backend is an httptest stand-in for the emulator that counts what reaches it.
type backend struct {
	*httptest.Server
	hits atomic.Int64
}

func newBackend(t *testing.T) *backend {
	b := &backend{}
	b.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		b.hits.Add(1)
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		fmt.Fprint(w, `{}`)
	}))
	t.Cleanup(b.Close)
	return b
}

func startProxy(t *testing.T, target string, seed uint64) *Proxy {
	t.Helper()
	p, err := Start(target, "", seed)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Close() })
	return p
}

const authEU1RDS = "AWS4-HMAC-SHA256 Credential=test/20260101/eu-west-1/rds/aws4_request, SignedHeaders=host;x-amz-date, Signature=abc"

func signed(region, service string) string {
	return "AWS4-HMAC-SHA256 Credential=test/20260101/" + region + "/" + service + "/aws4_request, SignedHeaders=host, Signature=0"
}

func TestParseCall(t *testing.T) {
	tests := map[string]struct {
		method, target, body, ctype string
		headers                     map[string]string
		want                        Call
	}{
		"query form body": {
			method: "POST", target: "/", body: "Action=SwitchoverGlobalCluster&Version=2014-10-31", ctype: "application/x-www-form-urlencoded; charset=utf-8",
			headers: map[string]string{"Authorization": authEU1RDS},
			want:    Call{Region: "eu-west-1", Service: "rds", Operation: "SwitchoverGlobalCluster", Protocol: protoQuery},
		},
		"query string": {
			method: "GET", target: "/?Action=DescribeInstances", headers: map[string]string{"Authorization": signed("eu-west-3", "ec2")},
			want: Call{Region: "eu-west-3", Service: "ec2", Operation: "DescribeInstances", Protocol: protoEC2},
		},
		"json target": {
			method: "POST", target: "/", body: `{}`, ctype: "application/x-amz-json-1.1",
			headers: map[string]string{"Authorization": signed("eu-west-3", "ecs"), "X-Amz-Target": "AmazonEC2ContainerServiceV20141113.UpdateService"},
			want:    Call{Region: "eu-west-3", Service: "ecs", Operation: "UpdateService", Protocol: protoJSON},
		},
		"rpc v2 cbor": {
			method: "POST", target: "/service/GraniteServiceVersion20100801/operation/GetMetricData",
			headers: map[string]string{"Authorization": signed("eu-west-1", "monitoring"), "Smithy-Protocol": "rpc-v2-cbor"},
			want:    Call{Region: "eu-west-1", Service: "monitoring", Operation: "GetMetricData", Protocol: protoCBOR},
		},
		"route53 rest": {
			method: "POST", target: "/2013-04-01/hostedzone/Z123/rrset/", headers: map[string]string{"Authorization": signed("us-east-1", "route53")},
			want: Call{Region: "us-east-1", Service: "route53", Operation: "ChangeResourceRecordSets", Protocol: protoREST},
		},
		"route53 get change": {
			method: "GET", target: "/2013-04-01/change/C123", headers: map[string]string{"Authorization": signed("us-east-1", "route53")},
			want: Call{Region: "us-east-1", Service: "route53", Operation: "GetChange", Protocol: protoREST},
		},
		"cloudfront update": {
			method: "PUT", target: "/2020-05-31/distribution/E1/config", headers: map[string]string{"Authorization": signed("us-east-1", "cloudfront")},
			want: Call{Region: "us-east-1", Service: "cloudfront", Operation: "UpdateDistribution", Protocol: protoREST},
		},
		"s3 control signs as s3": {
			method: "POST", target: "/v20180820/jobs", headers: map[string]string{"Authorization": signed("eu-west-1", "s3")},
			want: Call{Region: "eu-west-1", Service: "s3control", Operation: "CreateJob", Protocol: protoREST},
		},
		"s3 put object": {
			method: "PUT", target: "/states/env/terraform.tfstate?x-id=PutObject", headers: map[string]string{"Authorization": signed("eu-west-1", "s3")},
			want: Call{Region: "eu-west-1", Service: "s3", Operation: "PutObject", Protocol: protoS3},
		},
		"s3 put replication": {
			method: "PUT", target: "/states?replication", headers: map[string]string{"Authorization": signed("eu-west-1", "s3")},
			want: Call{Region: "eu-west-1", Service: "s3", Operation: "PutBucketReplication", Protocol: protoS3},
		},
		"s3 presigned get": {
			method: "GET", target: "/states/key?X-Amz-Credential=" + url.QueryEscape("test/20260101/eu-west-3/s3/aws4_request"),
			want: Call{Region: "eu-west-3", Service: "s3", Operation: "GetObject", Protocol: protoS3},
		},
		"iot rest json": {
			method: "GET", target: "/endpoint?endpointType=iot%3AData-ATS", headers: map[string]string{"Authorization": signed("eu-west-3", "iot")},
			want: Call{Region: "eu-west-3", Service: "iot", Operation: "DescribeEndpoint", Protocol: protoRESTJSON},
		},
		"unknown rest": {
			method: "GET", target: "/2013-04-01/healthcheck", headers: map[string]string{"Authorization": signed("us-east-1", "route53")},
			want: Call{Region: "us-east-1", Service: "route53", Operation: "GET /2013-04-01/healthcheck", Protocol: protoREST},
		},
		// A client with a custom endpoint signs Route 53 for its own region; the
		// call still goes to Route 53's control plane in us-east-1.
		"route53 signed for another region": {
			method: "POST", target: "/2013-04-01/hostedzone/Z123/rrset/", headers: map[string]string{"Authorization": signed("eu-west-1", "route53")},
			want: Call{Region: "us-east-1", SignedRegion: "eu-west-1", Service: "route53", Operation: "ChangeResourceRecordSets", Protocol: protoREST},
		},
		"cloudfront signed for another region": {
			method: "GET", target: "/2020-05-31/distribution/E1", headers: map[string]string{"Authorization": signed("eu-west-3", "cloudfront")},
			want: Call{Region: "us-east-1", SignedRegion: "eu-west-3", Service: "cloudfront", Operation: "GetDistribution", Protocol: protoREST},
		},
		"iam is global": {
			method: "POST", target: "/", body: "Action=GetRole&Version=2010-05-08", ctype: "application/x-www-form-urlencoded",
			headers: map[string]string{"Authorization": signed("eu-west-1", "iam")},
			want:    Call{Region: "us-east-1", SignedRegion: "eu-west-1", Service: "iam", Operation: "GetRole", Protocol: protoQuery},
		},
		"sts keeps its regional scope": {
			method: "POST", target: "/", body: "Action=GetCallerIdentity&Version=2011-06-15", ctype: "application/x-www-form-urlencoded",
			headers: map[string]string{"Authorization": signed("eu-west-1", "sts")},
			want:    Call{Region: "eu-west-1", Service: "sts", Operation: "GetCallerIdentity", Protocol: protoQuery},
		},
		"china partition keeps its scope": {
			method: "GET", target: "/2013-04-01/change/C1", headers: map[string]string{"Authorization": signed("cn-northwest-1", "route53")},
			want: Call{Region: "cn-northwest-1", Service: "route53", Operation: "GetChange", Protocol: protoREST},
		},
		"arc configuration api lives in us-west-2": {
			method: "GET", target: "/cluster/" + url.PathEscape("arn:aws:route53-recovery-control::123456789012:cluster/abc"),
			headers: map[string]string{"Authorization": signed("eu-west-1", "route53-recovery-control-config")},
			want:    Call{Region: "us-west-2", SignedRegion: "eu-west-1", Service: "route53-recovery-control-config", Operation: "DescribeCluster", Protocol: protoREST},
		},
		"arc cluster endpoint keeps its region": {
			method: "POST", target: "/v1", body: `{}`, ctype: "application/x-amz-json-1.0",
			headers: map[string]string{"Authorization": signed("ap-northeast-1", "route53-recovery-cluster"), "X-Amz-Target": "ToggleCustomerAPI.UpdateRoutingControlStates"},
			want:    Call{Region: "ap-northeast-1", Service: "route53-recovery-cluster", Operation: "UpdateRoutingControlStates", Protocol: protoJSON},
		},
		"unsigned": {
			method: "GET", target: "/", want: Call{Operation: "GET /", Protocol: protoREST},
		},
	}
	for name, tc := range tests {
		t.Run(name, func(t *testing.T) {
			t.Parallel()
			r := httptest.NewRequest(tc.method, tc.target, strings.NewReader(tc.body))
			if tc.ctype != "" {
				r.Header.Set("Content-Type", tc.ctype)
			}
			for k, v := range tc.headers {
				r.Header.Set(k, v)
			}
			got := parseCall(r)
			if diff := cmp.Diff(tc.want, got, cmp.AllowUnexported(Call{})); diff != "" {
				t.Errorf("parseCall (-want +got):\n%s", diff)
			}
			// The body is still there for the emulator.
			if b, _ := io.ReadAll(r.Body); string(b) != tc.body {
				t.Errorf("body after parse = %q, want %q", b, tc.body)
			}
		})
	}
}

func sdkConfig(endpoint, region string) aws.Config {
	return aws.Config{
		Region:           region,
		Credentials:      credentials.NewStaticCredentialsProvider("test", "test", ""),
		BaseEndpoint:     aws.String(endpoint),
		RetryMaxAttempts: 1,
	}
}

func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return fmt.Sprintf("not an API error: %v", err)
}

// The injected errors parse in the real SDK clients as the codes AWS uses.
func TestErrorsAreAWSShaped(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b.URL, 1)
	ctx := context.Background()
	for _, svc := range []string{"rds", "ecs", "route53", "s3", "iot", "ec2", "monitoring"} {
		if _, err := p.FailOperation(svc, "", Throttle); err != nil {
			t.Fatal(err)
		}
	}
	cases := map[string]struct {
		call func() error
		want string
	}{
		"query": {func() error {
			_, err := rds.NewFromConfig(sdkConfig(p.URL, "eu-west-1")).DescribeGlobalClusters(ctx, &rds.DescribeGlobalClustersInput{})
			return err
		}, "Throttling"},
		"json": {func() error {
			_, err := ecs.NewFromConfig(sdkConfig(p.URL, "eu-west-3")).UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("server"), DesiredCount: aws.Int32(1)})
			return err
		}, "ThrottlingException"},
		"rest-xml": {func() error {
			_, err := route53.NewFromConfig(sdkConfig(p.URL, "us-east-1")).GetChange(ctx, &route53.GetChangeInput{Id: aws.String("C1")})
			return err
		}, "Throttling"},
		"s3": {func() error {
			_, err := s3.NewFromConfig(sdkConfig(p.URL, "eu-west-1"), func(o *s3.Options) { o.UsePathStyle = true }).
				PutObject(ctx, &s3.PutObjectInput{Bucket: aws.String("states"), Key: aws.String("k"), Body: strings.NewReader("x")})
			return err
		}, "SlowDown"},
		"rest-json": {func() error {
			_, err := iot.NewFromConfig(sdkConfig(p.URL, "eu-west-3")).DescribeEndpoint(ctx, &iot.DescribeEndpointInput{EndpointType: aws.String("iot:Data-ATS")})
			return err
		}, "ThrottlingException"},
		"cbor": {func() error {
			_, err := cloudwatch.NewFromConfig(sdkConfig(p.URL, "eu-west-1")).ListMetrics(ctx, &cloudwatch.ListMetricsInput{})
			return err
		}, "ThrottlingException"},
		"ec2": {func() error {
			_, err := ec2.NewFromConfig(sdkConfig(p.URL, "eu-west-1")).DescribeInstances(ctx, &ec2.DescribeInstancesInput{})
			return err
		}, "RequestLimitExceeded"},
	}
	for name, tc := range cases {
		t.Run(name, func(t *testing.T) {
			if got := apiCode(tc.call()); got != tc.want {
				t.Errorf("error code %q, want %q", got, tc.want)
			}
		})
	}
	if n := b.hits.Load(); n != 0 {
		t.Errorf("%d requests reached the backend, want 0", n)
	}
	if got := p.Attempts("ecs", "UpdateService"); got != 1 {
		t.Errorf("Attempts(ecs, UpdateService) = %d, want 1", got)
	}
	if got := p.Count("ecs", "UpdateService"); got != 0 {
		t.Errorf("Count(ecs, UpdateService) = %d, want 0 (never reached the emulator)", got)
	}
}

// A throttled mutating call that the SDK retries reaches the emulator exactly once;
// a call whose answer is lost after it took effect reaches it twice.
func TestCountsWhatReachedTheEmulator(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b.URL, 7)
	ctx := context.Background()
	cfg := sdkConfig(p.URL, "eu-west-3")
	cfg.RetryMaxAttempts = 3
	client := ecs.NewFromConfig(cfg)

	if _, err := p.AddRule(Rule{Service: "ecs", Operation: "UpdateService", ErrorRate: 1, Error: Throttle, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("server"), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatalf("UpdateService through one throttle: %v", err)
	}
	if got := p.CountWhere(Filter{Service: "ecs", Operation: "UpdateService"}); got != (Counts{Total: 2, Forwarded: 1, Faulted: 1}) {
		t.Errorf("counts = %+v, want 2 attempts, 1 forwarded, 1 faulted", got)
	}

	p.Clear()
	p.ResetLog()
	if _, err := p.AddRule(Rule{Service: "ecs", Operation: "UpdateService", ErrorRate: 1, Error: ServerError, AfterForward: true, Limit: 1}); err != nil {
		t.Fatal(err)
	}
	if _, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("server"), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatalf("UpdateService through a lost answer: %v", err)
	}
	if got := p.Count("ecs", "UpdateService"); got != 2 {
		t.Errorf("Count after a lost answer = %d, want 2: the retry repeated a call that had taken effect", got)
	}
}

func TestBlackholeRegion(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b.URL, 1)
	if _, err := p.BlackholeRegion("eu-west-1", Hang); err != nil {
		t.Fatal(err)
	}
	send := func(region string, timeout time.Duration) (*http.Response, error) {
		ctx, cancel := context.WithTimeout(context.Background(), timeout)
		defer cancel()
		req, _ := http.NewRequestWithContext(ctx, "POST", p.URL+"/", strings.NewReader("Action=DescribeGlobalClusters"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.Header.Set("Authorization", signed(region, "rds"))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return resp, err
	}
	if _, err := send("eu-west-1", 300*time.Millisecond); !errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("black-holed region: err = %v, want the client's deadline", err)
	}
	if resp, err := send("eu-west-3", 10*time.Second); err != nil || resp.StatusCode != 200 {
		t.Errorf("other region: %v %v", resp, err)
	}
	if got := b.hits.Load(); got != 1 {
		t.Errorf("backend hits %d, want 1 (only the other region)", got)
	}

	p.Clear()
	if _, err := p.AddRule(Rule{Region: "eu-west-1", Blackhole: Close}); err != nil {
		t.Fatal(err)
	}
	_, err := send("eu-west-1", 10*time.Second)
	if err == nil || errors.Is(err, context.DeadlineExceeded) {
		t.Errorf("closed region: err = %v, want a dropped connection", err)
	}

	// The log waits for the handlers to finish; poll for the entries (a hang guard, not a speed check).
	deadline := time.Now().Add(10 * time.Second)
	for {
		c := p.CountWhere(Filter{Region: "eu-west-1"})
		if c.Total == 2 {
			if c.Forwarded != 0 || c.Faulted != 2 {
				t.Errorf("eu-west-1 counts %+v, want 2 faulted, none forwarded", c)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("eu-west-1 log entries: %+v", p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
	for _, e := range p.Log() {
		if e.Region == "eu-west-1" && (e.Status != 0 || (e.Fault != Hang && e.Fault != Close)) {
			t.Errorf("black-holed entry %+v: want no status and fault hang or close", e)
		}
	}
}

// us-east-1 going dark takes the global services' control planes with it,
// whatever region their clients sign for; another region going dark does not.
func TestBlackholeUSEast1TakesTheGlobalServices(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b.URL, 1)
	send := func(region, service, path string) error {
		req, _ := http.NewRequest("GET", p.URL+path, nil)
		req.Header.Set("Authorization", signed(region, service))
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		return err
	}
	calls := []struct{ region, service, path string }{
		{"eu-west-1", "route53", "/2013-04-01/change/C1"},
		{"us-east-1", "route53", "/2013-04-01/change/C1"},
		{"eu-west-3", "cloudfront", "/2020-05-31/distribution/E1"},
		{"eu-west-1", "iam", "/?Action=GetRole"},
		{"us-east-1", "sts", "/?Action=GetCallerIdentity"},
	}
	if _, err := p.BlackholeRegion("eu-west-1", Close); err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		err := send(c.region, c.service, c.path)
		if err != nil {
			t.Errorf("eu-west-1 dark: %s signed for %s: %v, want an answer (its control plane is not in eu-west-1)", c.service, c.region, err)
		}
	}
	p.Clear()
	if _, err := p.BlackholeRegion("us-east-1", Close); err != nil {
		t.Fatal(err)
	}
	for _, c := range calls {
		if err := send(c.region, c.service, c.path); err == nil {
			t.Errorf("us-east-1 dark: %s signed for %s answered, want the connection dropped", c.service, c.region)
		}
	}
	if err := send("eu-west-1", "sts", "/?Action=GetCallerIdentity"); err != nil {
		t.Errorf("us-east-1 dark: STS's eu-west-1 endpoint: %v, want an answer", err)
	}
	for _, e := range p.Log() {
		if e.Service == "route53" && e.Region != "us-east-1" {
			t.Errorf("log entry %+v: route53 logged outside us-east-1", e)
		}
	}
}

// A black hole that holds a connection lets go when the proxy closes.
func TestCloseReleasesHeldConnections(t *testing.T) {
	b := newBackend(t)
	p, err := Start(b.URL, "", 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.BlackholeRegion("", Hang); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		req, _ := http.NewRequest("GET", p.URL+"/", nil)
		req.Header.Set("Authorization", signed("eu-west-1", "rds"))
		_, err := http.DefaultClient.Do(req)
		done <- err
	}()
	for p.CountWhere(Filter{}).Total == 0 && len(p.Rules()) > 0 {
		// wait until the request is held (it is logged when it ends, so poll the rule instead)
		if p.Rules()[0].Used > 0 {
			break
		}
		time.Sleep(5 * time.Millisecond)
	}
	if err := p.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		if err == nil {
			t.Error("held request got an answer, want a dropped connection")
		}
	case <-time.After(30 * time.Second): // hang guard
		t.Fatal("held request still held after Close")
	}
}

func TestSeededSequenceIsReproducible(t *testing.T) {
	run := func(seed uint64) []bool {
		b := newBackend(t)
		p, err := New(b.URL, seed)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := p.SetErrorRate(0.5, Throttle); err != nil {
			t.Fatal(err)
		}
		var faulted []bool
		for range 40 {
			r := httptest.NewRequest("POST", "/", strings.NewReader(`{}`))
			r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DescribeServices")
			r.Header.Set("Authorization", signed("eu-west-3", "ecs"))
			w := httptest.NewRecorder()
			p.ServeHTTP(w, r)
			faulted = append(faulted, w.Code != 200)
		}
		return faulted
	}
	a, b, c := run(42), run(42), run(43)
	if diff := cmp.Diff(a, b); diff != "" {
		t.Errorf("same seed, different faults:\n%s", diff)
	}
	if cmp.Equal(a, c) {
		t.Error("seeds 42 and 43 gave the same 40 faults")
	}
	n := 0
	for _, f := range a {
		if f {
			n++
		}
	}
	if n == 0 || n == len(a) {
		t.Errorf("%d of %d faulted at rate 0.5", n, len(a))
	}
}

func TestLatencyAndLimit(t *testing.T) {
	b := newBackend(t)
	p, err := New(b.URL, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := p.AddRule(Rule{Service: "ecs", Latency: Duration(30 * time.Millisecond), Limit: 2}); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		r := httptest.NewRequest("POST", "/", strings.NewReader(`{}`))
		r.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.DescribeServices")
		r.Header.Set("Authorization", signed("eu-west-3", "ecs"))
		w := httptest.NewRecorder()
		p.ServeHTTP(w, r)
		if w.Code != 200 {
			t.Fatalf("status %d", w.Code)
		}
	}
	log := p.Log()
	for i, e := range log {
		delayed := e.Fault == "latency"
		if delayed != (i < 2) {
			t.Errorf("request %d: fault %q; want latency on the first two only", i, e.Fault)
		}
		if delayed && e.Duration < 30*time.Millisecond {
			t.Errorf("request %d took %s, less than the 30ms latency", i, e.Duration)
		}
		if !e.Forwarded || e.Status != 200 {
			t.Errorf("request %d: %+v, want forwarded with 200", i, e)
		}
	}
}

func TestControlAPI(t *testing.T) {
	var simHits atomic.Int64
	backendSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if strings.HasPrefix(r.URL.Path, "/_sim/") {
			simHits.Add(1)
		}
		fmt.Fprint(w, `{}`)
	}))
	defer backendSrv.Close()
	p := startProxy(t, backendSrv.URL, 1)
	c := NewClient(p.URL)
	ctx := context.Background()
	if err := c.Health(ctx); err != nil {
		t.Fatal(err)
	}
	id, err := c.AddRule(ctx, Rule{Region: "eu-west-1", Service: "rds", Operation: "SwitchoverGlobalCluster", ErrorRate: 1, Error: ServerError})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.AddRule(ctx, Rule{ErrorRate: 2}); err == nil {
		t.Error("control API accepted error_rate 2")
	}
	rules, err := c.Rules(ctx)
	if err != nil || len(rules) != 1 || rules[0].ID != id {
		t.Fatalf("rules = %+v, %v", rules, err)
	}
	req, _ := http.NewRequest("POST", p.URL+"/", strings.NewReader("Action=SwitchoverGlobalCluster"))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Authorization", authEU1RDS)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if resp.StatusCode != 500 || !strings.Contains(string(body), "<Code>InternalFailure</Code>") {
		t.Errorf("faulted answer %d %s", resp.StatusCode, body)
	}
	// The emulator's control API passes through, unlogged.
	if resp, err := http.Get(p.URL + "/_sim/health"); err != nil || resp.StatusCode != 200 {
		t.Fatalf("/_sim/ through the proxy: %v %v", resp, err)
	}
	if simHits.Load() != 1 {
		t.Error("/_sim/health did not reach the backend")
	}
	counts, err := c.Count(ctx, Filter{Service: "rds", Operation: "SwitchoverGlobalCluster"})
	if err != nil || counts != (Counts{Total: 1, Faulted: 1}) {
		t.Errorf("counts %+v %v", counts, err)
	}
	log, err := c.Log(ctx, Filter{Region: "eu-west-1"})
	if err != nil || len(log) != 1 || log[0].Fault != "5xx" || log[0].Status != 500 || log[0].Rule != id {
		t.Errorf("log %+v %v", log, err)
	}
	if err := c.RemoveRule(ctx, id); err != nil {
		t.Fatal(err)
	}
	if err := c.RemoveRule(ctx, id); err == nil {
		t.Error("removing a removed rule succeeded")
	}
	if err := c.Seed(ctx, 99); err != nil {
		t.Fatal(err)
	}
	if err := c.ResetLog(ctx); err != nil {
		t.Fatal(err)
	}
	if log, _ := c.Log(ctx, Filter{}); len(log) != 0 {
		t.Errorf("log after reset: %+v", log)
	}
	if _, err := c.AddRule(ctx, Rule{Blackhole: Hang}); err != nil {
		t.Fatal(err)
	}
	if err := c.Clear(ctx); err != nil {
		t.Fatal(err)
	}
	if rules, _ := c.Rules(ctx); len(rules) != 0 {
		t.Errorf("rules after clear: %+v", rules)
	}
}

func TestStartListensOnLoopbackOnly(t *testing.T) {
	if _, err := Start("http://127.0.0.1:1", "0.0.0.0:0", 1); err == nil {
		t.Error("Start listened on 0.0.0.0")
	}
	p := startProxy(t, "http://127.0.0.1:1", 1)
	host, _, _ := net.SplitHostPort(strings.TrimPrefix(p.URL, "http://"))
	if host != "127.0.0.1" {
		t.Errorf("default address %s", p.URL)
	}
}

func TestBodyContainsFailsOnlyMatchingChanges(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b.URL, 1)
	if _, err := p.AddRule(Rule{Service: "route53", Operation: "ChangeResourceRecordSets", BodyContains: "<Type>A</Type>", ErrorRate: 1, Error: ServerError}); err != nil {
		t.Fatal(err)
	}
	send := func(recordType string) int {
		body := `<ChangeResourceRecordSetsRequest><ChangeBatch><Changes><Change><ResourceRecordSet><Type>` + recordType + `</Type></ResourceRecordSet></Change></Changes></ChangeBatch></ChangeResourceRecordSetsRequest>`
		req, _ := http.NewRequest(http.MethodPost, p.URL+"/2013-04-01/hostedzone/Z1/rrset/", strings.NewReader(body))
		req.Header.Set("Authorization", signed("us-east-1", "route53"))
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		// The forwarded body must arrive whole.
		_, _ = io.Copy(io.Discard, resp.Body)
		resp.Body.Close()
		return resp.StatusCode
	}
	if got := send("A"); got != http.StatusInternalServerError {
		t.Errorf("A record change: status %d, want 500", got)
	}
	if got := send("CNAME"); got != http.StatusOK {
		t.Errorf("CNAME record change: status %d, want 200", got)
	}
	if got := p.CountWhere(Filter{Service: "route53"}); got.Forwarded != 1 || got.Faulted != 1 {
		t.Errorf("counts = %+v", got)
	}
}

// A call counts as forwarded when it was written to the emulator in full,
// whatever then happens to its answer: a client that dies while the
// emulator answers (a plugin killed mid-call) still made the call take
// effect. One that never reached the emulator (nothing listening) is not
// counted.
func TestForwardedMeansWrittenToTheEmulator(t *testing.T) {
	answering := make(chan struct{})
	release := make(chan struct{})
	slow := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_, _ = io.Copy(io.Discard, r.Body)
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusOK)
		fmt.Fprint(w, `{"part":`)
		w.(http.Flusher).Flush()
		close(answering)
		<-release // the rest of the answer comes after the client is gone
		fmt.Fprint(w, strings.Repeat(" ", 1<<20)+`1}`)
	}))
	t.Cleanup(slow.Close)
	t.Cleanup(func() { close(release) })
	p := startProxy(t, slow.URL, 1)

	ctx, cancel := context.WithCancel(context.Background())
	req, _ := http.NewRequestWithContext(ctx, http.MethodPost, p.URL+"/", strings.NewReader("Action=UpdateService"))
	req.Header.Set("Authorization", strings.ReplaceAll(authEU1RDS, "/rds/", "/ecs/"))
	req.Header.Set("X-Amz-Target", "AmazonEC2ContainerServiceV20141113.UpdateService")
	done := make(chan error, 1)
	go func() {
		resp, err := http.DefaultClient.Do(req)
		if err == nil {
			_, err = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
		}
		done <- err
	}()
	<-answering
	cancel() // the client dies mid-answer
	<-done
	deadline := time.Now().Add(5 * time.Second) // the proxy logs when its handler unwinds
	for len(p.Log()) == 0 && time.Now().Before(deadline) {
		time.Sleep(10 * time.Millisecond)
	}
	if got := p.CountWhere(Filter{Service: "ecs"}); got.Total != 1 || got.Forwarded != 1 {
		t.Fatalf("a call the emulator received, whose client died mid-answer: %+v, want total 1, forwarded 1", got)
	}

	// Nothing listening at the target: the call did not reach it.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	dead := "http://" + ln.Addr().String()
	ln.Close()
	q := startProxy(t, dead, 1)
	req2, _ := http.NewRequest(http.MethodPost, q.URL+"/", strings.NewReader("x"))
	req2.Header.Set("Authorization", authEU1RDS)
	if resp, err := http.DefaultClient.Do(req2); err == nil {
		resp.Body.Close()
	}
	if got := q.CountWhere(Filter{Service: "rds"}); got.Total != 1 || got.Forwarded != 0 {
		t.Fatalf("a call to a target with nothing listening: %+v, want total 1, forwarded 0", got)
	}
}

func TestRecordKeepsWholeExchangesWithoutCredentials(t *testing.T) {
	b := newBackend(t)
	p := startProxy(t, b.URL, 1)
	ctx := context.Background()
	client := ecs.NewFromConfig(sdkConfig(p.URL, "eu-west-3"))
	if _, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("before"), DesiredCount: aws.Int32(1)}); err != nil {
		t.Fatal(err)
	}
	if n := len(p.Exchanges()); n != 0 {
		t.Fatalf("%d exchanges recorded with recording off", n)
	}
	p.Record(true)
	if _, err := client.UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("server"), DesiredCount: aws.Int32(2)}); err != nil {
		t.Fatal(err)
	}
	if _, err := p.FailOperation("ecs", "UpdateService", ServerError); err != nil {
		t.Fatal(err)
	}
	cfg := sdkConfig(p.URL, "eu-west-3")
	cfg.RetryMaxAttempts = 1
	_, _ = ecs.NewFromConfig(cfg).UpdateService(ctx, &ecs.UpdateServiceInput{Service: aws.String("faulted"), DesiredCount: aws.Int32(0)})
	xs := p.Exchanges()
	if len(xs) != 2 {
		t.Fatalf("%d exchanges, want 2: %+v", len(xs), xs)
	}
	x := xs[0]
	if x.Seq != 1 || x.Region != "eu-west-3" || x.Service != "ecs" || x.Operation != "UpdateService" || x.Protocol != "json" || x.Method != "POST" {
		t.Errorf("exchange = %+v", x)
	}
	if !strings.Contains(string(x.RequestBody), `"service":"server"`) || !strings.Contains(string(x.RequestBody), `"desiredCount":2`) {
		t.Errorf("request body %s", x.RequestBody)
	}
	if x.RequestHeaders["x-amz-target"] != "AmazonEC2ContainerServiceV20141113.UpdateService" || !strings.Contains(x.UserAgent, "aws-sdk-go-v2") {
		t.Errorf("headers %v, user agent %q", x.RequestHeaders, x.UserAgent)
	}
	if _, ok := x.RequestHeaders["authorization"]; ok {
		t.Error("the Authorization header was recorded")
	}
	if !x.Answered || x.Status != 200 || string(x.ResponseBody) != "{}" || x.ResponseHeaders["content-type"] != "application/json" {
		t.Errorf("answer: answered %v, status %d, body %q, headers %v", x.Answered, x.Status, x.ResponseBody, x.ResponseHeaders)
	}
	if f := xs[1]; f.Answered || len(f.ResponseBody) != 0 || !strings.Contains(string(f.RequestBody), "faulted") {
		t.Errorf("a faulted call is recorded as answered by the emulator: %+v", f)
	}
	path := t.TempDir() + "/x.jsonl"
	if err := WriteExchanges(path, xs); err != nil {
		t.Fatal(err)
	}
	back, err := ReadExchanges(path)
	if err != nil || len(back) != 2 || string(back[0].RequestBody) != string(x.RequestBody) {
		t.Errorf("read back %d exchanges (%v)", len(back), err)
	}
	c := NewClient(p.URL)
	if err := c.Record(ctx, false); err != nil {
		t.Fatal(err)
	}
	if got, err := c.Exchanges(ctx); err != nil || len(got) != 2 {
		t.Errorf("control API: %d exchanges (%v)", len(got), err)
	}
}
