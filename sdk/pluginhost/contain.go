package pluginhost

import (
	"os"
	"sync"
)

// guardArg, as the first argument, makes the program the guard (see
// ContainProcesses).
const guardArg = "__runbook-process-guard"

// ContainProcesses makes sure that no process started by a plugin outlives
// this program, whatever happens to it. Call it first thing in main, and
// call the function it returns just before the program exits (it stops the
// guard and waits for it, so that no process of the program is left once it
// has exited): when the program was started as the guard, it runs the guard
// and exits.
// Otherwise (on Linux):
//
//   - the program becomes a child subreaper: a plugin's descendant orphaned
//     by its parent (a daemon that forked twice) is re-parented to it
//     instead of to init, so the host still finds it, and kills it when the
//     plugins are closed;
//   - with the first plugin it starts, it starts a guard: the same
//     executable in a process group of its own, which watches the program's
//     descendants (every 250 ms) and, once the program is gone (its pipe
//     closes, whatever ended it, kill -9 included), kills every one it saw
//     and anything left in their process groups and sessions.
//
// Plugins themselves die with the program at once (a parent-death signal)
// whether or not this is called; their children need the guard. The bound:
// a descendant that left its plugin's process group less than 250 ms before
// the program was killed with SIGKILL can escape. It is meant for programs
// whose only children are the plugins and `describe`s this package starts
// (the runbook command line): other children of such a program would be
// taken for orphans when plugins are closed.
func ContainProcesses() (exiting func()) {
	if len(os.Args) > 1 && os.Args[1] == guardArg {
		runGuard()
		os.Exit(0)
	}
	enableContainment()
	return stopGuard
}

// children are the processes this package started (plugins, describes,
// the guard), so that an orphan adopted by the subreaper is told from them.
// Starting a process and registering it happen under startGate's read
// lock; reaping orphans holds its write lock, so it never sees a child
// that is not registered yet.
var (
	startGate  sync.RWMutex
	childrenMu sync.Mutex
	childPIDs  = map[int]bool{}
)

func registerChild(pid int) {
	childrenMu.Lock()
	defer childrenMu.Unlock()
	childPIDs[pid] = true
}

func unregisterChild(pid int) {
	childrenMu.Lock()
	defer childrenMu.Unlock()
	delete(childPIDs, pid)
}

func isRegisteredChild(pid int) bool {
	childrenMu.Lock()
	defer childrenMu.Unlock()
	return childPIDs[pid]
}
