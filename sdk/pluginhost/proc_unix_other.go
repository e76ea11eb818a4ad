//go:build unix && !linux

package pluginhost

import "syscall"

// setParentDeathSignal has no equivalent outside Linux: there, a host killed
// with SIGKILL leaves its plugins to exit when their connection closes.
func setParentDeathSignal(*syscall.SysProcAttr) {}
