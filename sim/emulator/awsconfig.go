package emulator

import (
	"github.com/aws/aws-sdk-go-v2/aws"
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
		// The emulator is local: fail fast instead of backing off for long.
		RetryMaxAttempts: 3,
	}
}
