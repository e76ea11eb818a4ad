// Package awstest starts the AWS emulator for the tests of the AWS-backed
// plugin actions and gives them SDK configurations that point at it.
//
// The emulator is sim/emulator: the pinned moto server with the
// simulation's extensions, on a free port on 127.0.0.1. A package's tests
// share one emulator (Shared, with Main as the package's TestMain) and keep
// out of each other's way with unique resource names (Name); a test that
// needs the whole emulator to itself (its timing, a reset) uses Start.
// Tests skip when the .venv is absent; CI always has it.
package awstest

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

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
	emulator.AuroraResync:       0.6,
	emulator.ECSStabilize:       0.6,
	emulator.Route53InSync:      0.4,
	emulator.ASGInstanceRefresh: 0.8,
	emulator.ASGInstanceWarmup:  0.3,
	emulator.CloudFrontDeploy:   0.4,
	emulator.S3BatchJob:         0.6,
	emulator.S3Replication:      0.5,
	emulator.ELBTargetHealthy:   0.5,
	emulator.ELBDeregistration:  0.3,

	emulator.ARCDeploy: 0.3,
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

var shared struct {
	sync.Mutex
	env *Env
	err error
	log syncBuffer
}

// Main runs a test package whose tests use Shared, and stops the shared
// emulator at the end. Call it from TestMain.
func Main(m *testing.M) {
	code := m.Run()
	shared.Lock()
	if shared.env != nil {
		_ = shared.env.Emulator.Stop()
		if code != 0 {
			fmt.Fprintf(os.Stderr, "shared emulator output (tail):\n%s\n", tail(shared.log.String(), 16<<10))
		}
	}
	shared.Unlock()
	os.Exit(code)
}

// Shared returns the package's emulator, starting it on first use (with
// FastTiming). The package's TestMain must be Main, which stops it.
func Shared(t testing.TB) *Env {
	t.Helper()
	if !venvPresent() && os.Getenv(emulator.EnvPython) == "" {
		t.Skip("no .venv in the module root: run `make venv` to test against the AWS emulator")
	}
	hermeticCredentials()
	shared.Lock()
	defer shared.Unlock()
	if shared.env == nil && shared.err == nil {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		e, err := emulator.Start(ctx, emulator.Options{Timing: FastTiming, IgnoreExternal: true, Log: &shared.log})
		if err != nil {
			shared.err = fmt.Errorf("starting the shared emulator: %w\n%s", err, shared.log.String())
		} else {
			shared.env = &Env{URL: e.URL, Emulator: e}
		}
	}
	if shared.err != nil {
		t.Fatal(shared.err)
	}
	return shared.env
}

// Name returns a name for a resource of the test, unique among the tests
// sharing an emulator and valid as an S3 bucket, RDS, ECS or auto-scaling
// group name: prefix, a dash and 8 hex digits.
func Name(t testing.TB, prefix string) string {
	h := sha256.Sum256([]byte(t.Name() + "\x00" + prefix))
	return prefix + "-" + hex.EncodeToString(h[:4])
}

func tail(s string, n int) string {
	if len(s) > n {
		return "...\n" + s[len(s)-n:]
	}
	return s
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

type syncBuffer struct {
	mu sync.Mutex
	b  []byte
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.b = append(s.b, p...)
	return len(p), nil
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return string(s.b)
}
