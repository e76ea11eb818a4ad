//go:build unix && !linux

package pluginhost

import (
	"errors"
	"syscall"

	"github.com/runbookhq/runbook/sdk/internal/procfs"
)

// setParentDeathSignal has no equivalent outside Linux: there, a host killed
// with SIGKILL leaves its plugins to exit when their connection closes.
func setParentDeathSignal(*syscall.SysProcAttr) {}

// processGone reports whether pid no longer exists (a zombie still counts
// as existing here).
func processGone(pid int) bool {
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}

// groupAlive reports whether the process group pgid still has members.
func groupAlive(pgid int) bool {
	return syscall.Kill(-pgid, 0) == nil
}

// Without /proc, a plugin's descendants are found by its process group only.
func descendants(int) []procfs.Stat { return nil }
func killAll([]procfs.Stat)         {}
func anyAlive([]procfs.Stat) bool   { return false }
