package cli

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestGraphCommand(t *testing.T) {
	dir := t.TempDir()
	rb := filepath.Join(dir, "rb.yaml")
	src := `version: 1
name: graph-demo
steps:
  - id: hello
    uses: core.log
    with: { message: hi }
  - id: both
    parallel:
      - { id: wait, uses: core.sleep, with: { duration: 1s } }
      - { id: ok, uses: core.approve, with: { message: "go?" } }
`
	if err := os.WriteFile(rb, []byte(src), 0o644); err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	io, _, out, errOut := TestStreams()
	if code := Run(ctx, io, []string{"graph", rb}); code != 0 {
		t.Fatalf("exit %d\n%s", code, errOut)
	}
	if m := out.String(); !strings.Contains(m, "flowchart TD") || !strings.Contains(m, "subgraph g_both") || !strings.Contains(m, "s_wait") {
		t.Errorf("mermaid:\n%s", m)
	}
	io, _, out, errOut = TestStreams()
	if code := Run(ctx, io, []string{"graph", rb, "--format", "dot"}); code != 0 || !strings.Contains(out.String(), "digraph") {
		t.Errorf("dot: exit %d\n%s%s", code, out, errOut)
	}
	dot := filepath.Join(dir, "rb.dot")
	io, _, _, errOut = TestStreams()
	if code := Run(ctx, io, []string{"graph", rb, "-o", dot}); code != 0 {
		t.Fatalf("-o: exit %d\n%s", code, errOut)
	}
	if b, err := os.ReadFile(dot); err != nil || !strings.Contains(string(b), "digraph") {
		t.Errorf("-o rb.dot should write DOT: %v\n%s", err, b)
	}
	io, _, _, _ = TestStreams()
	if code := Run(ctx, io, []string{"graph", rb, "--format", "svg"}); code != ExitUsage {
		t.Errorf("--format svg: exit %d", code)
	}
	bad := filepath.Join(dir, "bad.yaml")
	if err := os.WriteFile(bad, []byte("version: 1\nsteps: [{id: a, uses: core.nope}]\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	io, _, _, errOut = TestStreams()
	if code := Run(ctx, io, []string{"graph", bad}); code != ExitUsage || !strings.Contains(errOut.String(), "bad.yaml:") {
		t.Errorf("invalid runbook: exit %d\n%s", code, errOut)
	}
}
