package procfs

import (
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
)

func TestParseStat(t *testing.T) {
	// A command name with spaces and a ")" of its own.
	line := "4242 (a b) c)) S 1 4242 4242 0 -1 4194560 100 0 0 0 1 2 0 0 20 0 1 0 98765 1000 10 0 0 0 0 0 0 0 0 0 0 0 0 17 0 0 0 0 0 0 0 0 0 0 0 0 0 0 0\n"
	st, ok := parseStat(4242, line)
	if !ok {
		t.Fatal("not parsed")
	}
	want := Stat{PID: 4242, PPID: 1, PGID: 4242, SID: 4242, State: 'S', Start: 98765}
	if st != want {
		t.Fatalf("got %+v, want %+v", st, want)
	}
	if _, ok := parseStat(1, "1 (x) S 0"); ok {
		t.Fatal("a short line parsed")
	}
}

func TestSelfAndChildren(t *testing.T) {
	if runtime.GOOS != "linux" {
		t.Skip("/proc is Linux's")
	}
	self, ok := ReadStat(os.Getpid())
	if !ok || self.PPID != os.Getppid() || self.Start == 0 || self.Dead() {
		t.Fatalf("self: %+v %v", self, ok)
	}
	cmd := exec.Command("sleep", "30")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Wait()
	defer cmd.Process.Kill()
	var found *Stat
	for _, d := range Descendants(All(), os.Getpid()) {
		if d.PID == cmd.Process.Pid {
			found = &d
		}
	}
	if found == nil || found.SID != cmd.Process.Pid || found.PGID != cmd.Process.Pid {
		t.Fatalf("child not found as a descendant in its own session: %+v", found)
	}
	if BootID() == "" {
		t.Error("no boot id")
	}
}
