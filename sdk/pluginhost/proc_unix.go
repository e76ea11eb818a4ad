//go:build unix

package pluginhost

import (
	"errors"
	"os/exec"
	"syscall"
)

// isolate puts the plugin in its own process group, so that the host can
// kill the plugin and every child it spawned with one signal, and so that a
// Ctrl-C on the terminal reaches the host (which decides how to stop) rather
// than the plugins directly.
func isolate(cmd *exec.Cmd) {
	if cmd.SysProcAttr == nil {
		cmd.SysProcAttr = &syscall.SysProcAttr{}
	}
	cmd.SysProcAttr.Setpgid = true
	setParentDeathSignal(cmd.SysProcAttr)
}

// killGroup sends SIGKILL to the process group led by pid. A group that no
// longer exists is not an error.
func killGroup(pid int) error {
	if pid <= 0 {
		return nil
	}
	err := syscall.Kill(-pid, syscall.SIGKILL)
	if errors.Is(err, syscall.ESRCH) {
		return nil
	}
	return err
}
