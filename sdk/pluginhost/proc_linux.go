package pluginhost

import (
	"errors"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// setParentDeathSignal asks the kernel to kill the plugin if the host dies
// without closing it (kill -9, OOM). It fires when the OS thread that
// started the plugin exits; Go only ends threads whose goroutine locked
// them and exited, which never happens to the goroutines that start
// plugins.
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
	return procGone(pid)
}

// procGone is processGone for any process, from /proc/<pid>/stat.
func procGone(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return true
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	return i >= 0 && i+2 < len(s) && (s[i+2] == 'Z' || s[i+2] == 'X')
}

// groupAlive reports whether any process of the process group pgid is
// still running (zombies do not count: they are dead, waiting to be reaped
// by a parent that may never do it).
func groupAlive(pgid int) bool {
	if errors.Is(syscall.Kill(-pgid, 0), syscall.ESRCH) {
		return false
	}
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return false
	}
	for _, e := range entries {
		if e.Name()[0] < '0' || e.Name()[0] > '9' {
			continue
		}
		b, err := os.ReadFile("/proc/" + e.Name() + "/stat")
		if err != nil {
			continue
		}
		// After the ")" closing the command name: state, ppid, pgrp, ...
		s := string(b)
		i := strings.LastIndexByte(s, ')')
		if i < 0 {
			continue
		}
		f := strings.Fields(s[i+1:])
		if len(f) < 3 || f[0] == "Z" || f[0] == "X" {
			continue
		}
		if g, err := strconv.Atoi(f[2]); err == nil && g == pgid {
			return true
		}
	}
	return false
}
