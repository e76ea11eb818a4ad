package pluginhost

import (
	"errors"
	"os"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/runbookhq/runbook/sdk/internal/procfs"
)

// setParentDeathSignal asks the kernel to kill the plugin if the host dies
// without closing it (kill -9, OOM). It fires when the OS thread that
// started the plugin exits; Go only ends threads whose goroutine locked
// them and exited, which never happens to the goroutines that start
// plugins. It reaches the plugin only: its children are stopped by the
// guard (see ContainProcesses).
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }

// processGone reports whether pid has exited, including as a zombie not yet
// reaped (go-plugin reaps a plugin only once its stderr is closed, which a
// surviving child can delay). It runs before every call, so it asks the
// kernel with one waitid (WNOWAIT: the child is left for go-plugin to
// reap) rather than reading /proc; a pid that is not a child of ours is
// looked up in /proc.
func processGone(pid int) bool {
	var info unix.Siginfo
	err := unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	for errors.Is(err, unix.EINTR) {
		err = unix.Waitid(unix.P_PID, pid, &info, unix.WEXITED|unix.WNOHANG|unix.WNOWAIT, nil)
	}
	if err == nil {
		// Linux fills the siginfo only for a child that has exited.
		return info.Signo == int32(unix.SIGCHLD)
	}
	st, ok := procfs.ReadStat(pid)
	return !ok || st.Dead()
}

// groupAlive reports whether any process of the process group pgid is
// still running (zombies do not count: they are dead, waiting to be reaped
// by a parent that may never do it).
func groupAlive(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	for _, st := range procfs.All() {
		if st.PGID == pgid && !st.Dead() {
			return true
		}
	}
	return false
}

// descendants lists the processes below pid (children, grandchildren...),
// whatever process group or session they moved to: read before the plugin
// is killed, while their parent links still lead to it.
func descendants(pid int) []procfs.Stat {
	if pid <= 0 {
		return nil
	}
	return procfs.Descendants(procfs.All(), pid)
}

// killAll sends SIGKILL to each process of procs that is still the same
// process (same start time), and to the process group each leads or
// joined, except this process's own group and session.
func killAll(procs []procfs.Stat) {
	self, _ := procfs.ReadStat(os.Getpid())
	for _, p := range procs {
		if cur, ok := procfs.ReadStat(p.PID); ok && cur.Start == p.Start {
			_ = syscall.Kill(p.PID, syscall.SIGKILL)
		}
		if p.PGID > 1 && p.PGID != self.PGID && p.PGID != self.SID {
			_ = syscall.Kill(-p.PGID, syscall.SIGKILL)
		}
	}
}

// anyAlive reports whether a process of procs still runs.
func anyAlive(procs []procfs.Stat) bool {
	for _, p := range procs {
		if cur, ok := procfs.ReadStat(p.PID); ok && cur.Start == p.Start && !cur.Dead() {
			return true
		}
	}
	return false
}
