package pluginhost

import (
	"os/exec"
	"testing"
	"time"
)

// processGone tells a running child, an exited child not yet reaped (a
// zombie) and a reaped one apart, without reaping it.
func TestProcessGoneChild(t *testing.T) {
	cmd := exec.Command("sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	pid := cmd.Process.Pid
	if processGone(pid) {
		t.Fatal("a running child is reported gone")
	}
	if err := cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	// Not reaped yet: poll until the kernel reports the zombie.
	for !processGone(pid) {
		time.Sleep(time.Millisecond)
	}
	// WNOWAIT left it to be reaped by its owner.
	if err := cmd.Wait(); err == nil || cmd.ProcessState == nil || cmd.ProcessState.Exited() {
		t.Fatalf("wait after processGone: %v %v", err, cmd.ProcessState)
	}
	if !processGone(pid) {
		t.Fatal("a reaped child is not reported gone")
	}
}
