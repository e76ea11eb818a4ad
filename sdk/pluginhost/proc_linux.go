package pluginhost

import "syscall"

// setParentDeathSignal asks the kernel to kill the plugin if the host dies
// without closing it (kill -9, OOM). It fires when the OS thread that
// started the plugin exits; Go only ends threads whose goroutine locked
// them and exited, which never happens to the goroutines that start
// plugins.
func setParentDeathSignal(a *syscall.SysProcAttr) { a.Pdeathsig = syscall.SIGKILL }
