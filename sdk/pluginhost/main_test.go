package pluginhost

import (
	"bytes"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"

	"github.com/runbookhq/runbook/sdk/runbook"
)

// Plugin binaries built once per `go test` run by TestMain.
var bin struct {
	dir string
	// plugin is internal/testplugin; other is the same with another
	// version string (so another checksum); v2 speaks protocol version 2;
	// hello is examples/plugins/hello.
	plugin, other, v2, hello string
}

func TestMain(m *testing.M) {
	os.Exit(runTests(m))
}

func runTests(m *testing.M) int {
	dir, err := os.MkdirTemp("", "pluginhost-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	// The on-disk cache of these tests is their own, not the user's.
	if err := os.Setenv(DiskCacheEnv, filepath.Join(dir, "cache")); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	bin.dir = dir
	bin.plugin = filepath.Join(dir, "runbook-plugin-test")
	bin.other = filepath.Join(dir, "runbook-plugin-test-other")
	bin.v2 = filepath.Join(dir, "runbook-plugin-test-v2")
	bin.hello = filepath.Join(dir, "runbook-plugin-hello")
	const pkg = "github.com/runbookhq/runbook/sdk/pluginhost/internal/testplugin"
	builds := []struct {
		out, pkg, ldflags string
	}{
		{bin.plugin, pkg, ""},
		{bin.other, pkg, "-X main.version=0.2.0"},
		{bin.v2, pkg, "-X main.protocolVersion=2"},
		{bin.hello, "github.com/runbookhq/runbook/examples/plugins/hello", ""},
	}
	var wg sync.WaitGroup
	errs := make([]error, len(builds))
	for i, b := range builds {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command("go", "build", "-o", b.out, "-ldflags", b.ldflags, b.pkg)
			var out bytes.Buffer
			cmd.Stdout, cmd.Stderr = &out, &out
			if err := cmd.Run(); err != nil {
				errs[i] = fmt.Errorf("go build %s: %v\n%s", b.out, err, out.String())
			}
		}()
	}
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	return m.Run()
}

// copyBinary copies src into dir/name (executable) and returns its path.
func copyBinary(t testing.TB, src, dir, name string) string {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, b, 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func writeScript(t testing.TB, dir, name, body string) string {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func ref(name, command string) *runbook.PluginRef {
	return &runbook.PluginRef{Name: name, Command: command}
}

// processAlive reports whether pid is a live process (a zombie, dead but
// not yet reaped by its new parent, counts as gone).
func processAlive(pid int) bool {
	if err := syscall.Kill(pid, 0); err != nil {
		return false
	}
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	// The state follows the command name, which is in parentheses.
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i < 0 || i+2 >= len(s) || s[i+2] != 'Z'
}
