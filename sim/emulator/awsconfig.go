package emulator

import (
	"context"
	"net"
	"net/http"
	"net/url"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// Static test credentials. moto accepts any; LocalStack's default account answers to these.
const (
	AccessKeyID     = "test"
	SecretAccessKey = "test"
)

// Config returns an AWS SDK configuration for one region that sends every client
// to the emulator with static test credentials. The region travels in the SigV4
// credential scope, which is how the emulator (and the fault proxy) tell regions apart.
func (e *Emulator) Config(region string) aws.Config {
	return ConfigFor(e.URL, region)
}

// ConfigFor is Config for any endpoint URL (the fault proxy's, for instance).
func ConfigFor(endpointURL, region string) aws.Config {
	return aws.Config{
		Region:       region,
		Credentials:  credentials.NewStaticCredentialsProvider(AccessKeyID, SecretAccessKey, ""),
		BaseEndpoint: aws.String(endpointURL),
		HTTPClient:   HTTPClient(endpointURL),
		// The emulator is local: fail fast instead of backing off for long.
		RetryMaxAttempts: 3,
	}
}

// HTTPClient is an SDK HTTP client that also reaches the endpoint under the host
// prefixes some services put in front of it. S3 Control's endpoint rules turn
// http://127.0.0.1:4566 into http://123456789012.127.0.0.1:4566 (the account id as a
// host prefix), which no resolver knows; this client dials the endpoint's own
// address for any name that ends in its host. Other names are dialled as usual.
func HTTPClient(endpointURL string) *awshttp.BuildableClient {
	u, err := url.Parse(endpointURL)
	host := ""
	if err == nil {
		host = u.Hostname()
	}
	return awshttp.NewBuildableClient().WithTransportOptions(func(tr *http.Transport) {
		tr.DialContext = PrefixDialer(host)
	})
}

// PrefixDialer returns a DialContext that sends "<anything>.<host>:port" to "<host>:port".
func PrefixDialer(host string) func(ctx context.Context, network, addr string) (net.Conn, error) {
	var d net.Dialer
	return func(ctx context.Context, network, addr string) (net.Conn, error) {
		if h, port, err := net.SplitHostPort(addr); err == nil && host != "" && strings.HasSuffix(h, "."+host) {
			addr = net.JoinHostPort(host, port)
		}
		return d.DialContext(ctx, network, addr)
	}
}
