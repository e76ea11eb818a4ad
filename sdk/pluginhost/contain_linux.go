package pluginhost

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/runbookhq/runbook/sdk/internal/procfs"
)

// guardScan is how often the guard reads the host's descendants: the bound
// on how recently a process may have left its plugin's process group and
// still escape when the host is killed with SIGKILL.
const guardScan = 250 * time.Millisecond

var containment struct {
	sync.Mutex
	enabled bool
	// guard is the guard process once started; pipe the write end of its
	// standard input, open for as long as this process lives.
	guard *exec.Cmd
	pipe  *os.File
	// exited is closed once the guard has exited and been reaped.
	exited chan struct{}
}

func enableContainment() {
	containment.Lock()
	defer containment.Unlock()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		return // an old kernel: plugins still die with the host
	}
	containment.enabled = true
}

func containmentEnabled() bool {
	containment.Lock()
	defer containment.Unlock()
	return containment.enabled
}

// ensureGuard starts the guard (once) when containment is enabled. Called
// with startGate read-locked.
func ensureGuard() {
	containment.Lock()
	defer containment.Unlock()
	if !containment.enabled || containment.guard != nil {
		return
	}
	r, w, err := os.Pipe()
	if err != nil {
		return
	}
	cmd := exec.Command("/proc/self/exe", guardArg)
	cmd.Stdin = r
	cmd.Env = hostEnv()
	// A group of its own: a Ctrl-C on the terminal, or a kill of the
	// host's process group, does not reach it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		r.Close()
		w.Close()
		return
	}
	r.Close()
	registerChild(cmd.Process.Pid)
	exited := make(chan struct{})
	containment.guard, containment.pipe, containment.exited = cmd, w, exited
	go func() { // reaped whenever it ends
		_ = cmd.Wait()
		close(exited)
	}()
}

// stopGuard closes the guard's pipe, as this process's exit would, and
// waits (a few seconds at most) for the guard to check that nothing is left
// and exit.
func stopGuard() {
	containment.Lock()
	pipe, exited := containment.pipe, containment.exited
	containment.pipe = nil
	containment.Unlock()
	if pipe == nil {
		return
	}
	pipe.Close()
	select {
	case <-exited:
	case <-time.After(killGrace):
	}
}

// runGuard is the guard's main: it records the host's descendants until
// its standard input closes (the host is gone), then kills them.
func runGuard() {
	signal.Ignore(syscall.SIGINT, syscall.SIGHUP, syscall.SIGQUIT, syscall.SIGPIPE, syscall.SIGTERM)
	host := os.Getppid()
	self := os.Getpid()
	hostStat, ok := procfs.ReadStat(host)
	if !ok || host <= 1 {
		return
	}
	gone := make(chan struct{})
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		close(gone)
	}()
	seen := map[int]procfs.Stat{}
	scan := func() {
		for _, d := range procfs.Descendants(procfs.All(), host) {
			if d.PID != self {
				seen[d.PID] = d
			}
		}
	}
	tick := time.NewTicker(guardScan)
	defer tick.Stop()
	for {
		select {
		case <-tick.C:
			scan()
			for pid, st := range seen { // forget the dead
				if cur, ok := procfs.ReadStat(pid); !ok || cur.Start != st.Start || cur.Dead() {
					delete(seen, pid)
				}
			}
		case <-gone:
			killSeen(seen, hostStat, self)
			return
		}
	}
}

// killSeen kills the processes seen below the host, then whatever remains
// in their process groups and sessions (except the host's own), and the
// descendants of all those, until none is left (a few rounds: killed
// processes cannot fork, but one may have been forking).
func killSeen(seen map[int]procfs.Stat, host procfs.Stat, self int) {
	groups, sessions := map[int]bool{}, map[int]bool{}
	for _, st := range seen {
		if st.PGID > 1 && st.PGID != host.PGID {
			groups[st.PGID] = true
		}
		if st.SID > 1 && st.SID != host.SID {
			sessions[st.SID] = true
		}
	}
	for range 10 {
		all := procfs.All()
		victims := map[int]bool{}
		for _, st := range all {
			if st.PID == self || st.PID == host.PID || st.Dead() {
				continue
			}
			if s, ok := seen[st.PID]; (ok && s.Start == st.Start) || groups[st.PGID] || sessions[st.SID] {
				victims[st.PID] = true
			}
		}
		for pid := range victims {
			for _, d := range procfs.Descendants(all, pid) {
				if d.PID != self && !d.Dead() {
					victims[d.PID] = true
				}
			}
		}
		if len(victims) == 0 {
			return
		}
		for pid := range victims {
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// reapOrphans kills and reaps the children of this process that this
// package did not start: descendants of plugins re-parented to it (the
// subreaper) when their parent exited. Only with containment enabled
// (otherwise a child of the embedding program would be taken for one).
func reapOrphans() {
	if !containmentEnabled() {
		return
	}
	startGate.Lock()
	defer startGate.Unlock()
	self := os.Getpid()
	all := procfs.All()
	var orphans []procfs.Stat
	for _, st := range all {
		if st.PPID == self && !isRegisteredChild(st.PID) {
			orphans = append(orphans, st)
			orphans = append(orphans, procfs.Descendants(all, st.PID)...)
		}
	}
	if len(orphans) == 0 {
		return
	}
	killAll(orphans)
	deadline := time.Now().Add(killGrace)
	for _, o := range orphans {
		if o.PPID != self {
			continue
		}
		for {
			var ws unix.WaitStatus
			pid, err := unix.Wait4(o.PID, &ws, unix.WNOHANG, nil)
			if pid == o.PID || (err != nil && !errors.Is(err, unix.EINTR)) || time.Now().After(deadline) {
				break
			}
			time.Sleep(2 * time.Millisecond)
		}
	}
}
