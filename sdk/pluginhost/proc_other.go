//go:build !unix

package pluginhost

import (
	"os"
	"os/exec"

	"github.com/runbookhq/runbook/sdk/internal/procfs"
)

func isolate(*exec.Cmd) {}

// killGroup kills only the process itself outside Unix: there are no
// process groups to signal.
func killGroup(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil
	}
	_ = p.Kill()
	return nil
}

// processGone cannot tell outside Unix; the host then relies on go-plugin
// noticing the exit.
func processGone(int) bool { return false }

func groupAlive(int) bool { return false }

func descendants(int) []procfs.Stat { return nil }
func killAll([]procfs.Stat)         {}
func anyAlive([]procfs.Stat) bool   { return false }
