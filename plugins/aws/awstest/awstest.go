// Package awstest starts the AWS emulator for the tests of the AWS-backed
// plugin actions and gives them SDK configurations that point at it.
//
// Until sim/emulator is available it runs the pinned moto server from the
// repository's .venv directly, one process per test (a fresh, isolated
// account state each time), on a free port on 127.0.0.1. Tests skip when the
// .venv is absent; CI always has it.
package awstest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"

	"github.com/runbookhq/runbook/plugins/aws/awscommon"
)

// Env is a running emulator.
type Env struct {
	// URL is the emulator's endpoint, for the actions' endpoint_url.
	URL string
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

// motoServer finds .venv/bin/moto_server above the working directory (the
// module root holds .venv).
func motoServer() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		p := filepath.Join(dir, ".venv", "bin", "moto_server")
		if _, err := os.Stat(p); err == nil {
			return p, true
		}
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return "", false
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// Start runs a fresh emulator for the test and stops it when the test ends.
func Start(t testing.TB) *Env {
	t.Helper()
	bin, ok := motoServer()
	if !ok {
		t.Skip("no .venv/bin/moto_server in the module root: run `make venv` to test against the AWS emulator")
	}
	hermeticCredentials()
	port, err := freePort()
	if err != nil {
		t.Fatalf("awstest: %v", err)
	}
	var out syncBuffer
	cmd := exec.Command(bin, "-H", "127.0.0.1", "-p", fmt.Sprint(port))
	cmd.Stdout, cmd.Stderr = &out, &out
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		t.Fatalf("awstest: starting moto: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		// The server runs in its own process group: end that group only.
		_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGTERM)
		select {
		case <-exited:
		case <-time.After(5 * time.Second):
			_ = syscall.Kill(-cmd.Process.Pid, syscall.SIGKILL)
			<-exited
		}
		if t.Failed() {
			t.Logf("moto output:\n%s", out.String())
		}
	})
	url := fmt.Sprintf("http://127.0.0.1:%d", port)
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := http.Get(url + "/moto-api/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				break
			}
		}
		select {
		case <-exited:
			t.Fatalf("awstest: moto exited at start:\n%s", out.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("awstest: moto did not answer on %s: %v\n%s", url, err, out.String())
		}
		time.Sleep(50 * time.Millisecond)
	}
	return &Env{URL: url}
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

func freePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}
