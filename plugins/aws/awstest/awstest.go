// Package awstest starts the AWS emulator for the tests of the AWS-backed
// plugin actions and gives them SDK configurations that point at it.
//
// Each test gets its own emulator process (sim/emulator: the pinned moto
// server with the simulation's extensions) on a free port on 127.0.0.1, so
// tests are isolated and can run in parallel. Tests skip when the .venv is
// absent; CI always has it.
package awstest

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
	"github.com/runbookhq/runbook/sim/emulator"
)

// Env is a running emulator.
type Env struct {
	// URL is the emulator's endpoint, for the actions' endpoint_url.
	URL string
	// Emulator controls the emulator (timing, reset).
	Emulator *emulator.Emulator
}

var credsOnce sync.Once

// hermeticCredentials makes the test process use fake static credentials
// and no shared config, so a test can never reach a real account through a
// developer's profile.
func hermeticCredentials() {
	credsOnce.Do(func() {
		dir, _ := os.MkdirTemp("", "awstest-config")
		for k, v := range map[string]string{
			"AWS_ACCESS_KEY_ID":           "testing",
			"AWS_SECRET_ACCESS_KEY":       "testing",
			"AWS_CONFIG_FILE":             filepath.Join(dir, "config"),
			"AWS_SHARED_CREDENTIALS_FILE": filepath.Join(dir, "credentials"),
			"AWS_EC2_METADATA_DISABLED":   "true",
		} {
			os.Setenv(k, v)
		}
		for _, k := range []string{"AWS_SESSION_TOKEN", "AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_ENDPOINT_URL", "AWS_ROLE_ARN", "AWS_WEB_IDENTITY_TOKEN_FILE"} {
			os.Unsetenv(k)
		}
	})
}

// venvPresent reports whether the module root has the emulator's Python
// environment (.venv).
func venvPresent() bool {
	root, err := emulator.RepoRoot()
	if err != nil {
		return false
	}
	_, err = os.Stat(filepath.Join(root, ".venv", "bin", "python"))
	return err == nil
}

// FastTiming makes every simulated transition short, so that waits are
// exercised (the actions see in-between states) while tests stay quick.
var FastTiming = emulator.Timing{
	emulator.AuroraSwitchover:   0.6,
	emulator.AuroraFailover:     0.6,
	emulator.ECSStabilize:       0.6,
	emulator.Route53InSync:      0.4,
	emulator.ASGInstanceRefresh: 0.8,
	emulator.CloudFrontDeploy:   0.4,
	emulator.S3BatchJob:         0.6,
}

// Start runs a fresh emulator (sim/emulator, with FastTiming) for the test
// and stops it when the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	if !venvPresent() && os.Getenv(emulator.EnvPython) == "" {
		t.Skip("no .venv in the module root: run `make venv` to test against the AWS emulator")
	}
	hermeticCredentials()
	e := emulator.StartForTest(t, emulator.Options{Timing: FastTiming, IgnoreExternal: true})
	return &Env{URL: e.URL, Emulator: e}
}

// Conn is a connection to the emulator in region.
func (e *Env) Conn(region string) awscommon.Conn {
	return awscommon.Conn{Region: region, EndpointURL: e.URL}
}

// Config is an SDK configuration for seeding and checking the emulator's
// state from a test.
func (e *Env) Config(t testing.TB, region string) aws.Config {
	t.Helper()
	cfg, err := e.Conn(region).Config(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}

// Params are the connection parameters of an action call in region.
func (e *Env) Params(region string, more map[string]any) map[string]any {
	p := map[string]any{"region": region, "endpoint_url": e.URL}
	for k, v := range more {
		p[k] = v
	}
	return p
}
