package pluginhost

import "time"

// killGroupAndWait kills the process group led by pid and waits, up to
// timeout, until none of its processes runs: SIGKILL is delivered
// asynchronously, and "nothing outlives the host" must hold when Close
// returns.
func killGroupAndWait(pid int, timeout time.Duration) {
	if pid <= 0 {
		return
	}
	_ = killGroup(pid)
	deadline := time.Now().Add(timeout)
	for groupAlive(pid) && time.Now().Before(deadline) {
		time.Sleep(2 * time.Millisecond)
	}
}
