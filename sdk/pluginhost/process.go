package pluginhost

import (
	"time"

	"github.com/runbookhq/runbook/sdk/internal/procfs"
)

// killTreeAndWait kills the process group led by pid and every descendant
// of pid listed in tree (read with descendants(pid) while pid still ran:
// children that moved to a group or session of their own included), and
// waits, up to timeout, until none of them runs: SIGKILL is delivered
// asynchronously, and "nothing outlives the host" must hold when Close
// returns.
func killTreeAndWait(pid int, tree []procfs.Stat, timeout time.Duration) {
	if pid <= 0 {
		return
	}
	_ = killGroup(pid)
	killAll(tree)
	deadline := time.Now().Add(timeout)
	for (groupAlive(pid) || anyAlive(tree)) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}
