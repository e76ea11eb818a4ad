// Package procfs reads what runbook needs to know about processes from
// Linux's /proc: a process's parent, group, session and start time, the
// boot id and the machine id. Elsewhere every function reports that it
// does not know.
package procfs

import (
	"os"
	"strconv"
	"strings"
)

// Stat is a process as /proc/<pid>/stat shows it.
type Stat struct {
	PID  int
	PPID int
	// PGID and SID are its process group and session.
	PGID int
	SID  int
	// State is the one-letter state: 'R', 'S', 'D', 'Z' (zombie), 'X'...
	State byte
	// Start is when it started, in clock ticks since the machine booted:
	// with the boot id, it tells a process from a later one given the same
	// pid.
	Start uint64
}

// Dead reports whether the process has exited (a zombie, not yet reaped,
// or being torn down).
func (s Stat) Dead() bool { return s.State == 'Z' || s.State == 'X' }

// ReadStat reads /proc/<pid>/stat; ok is false if the process does not
// exist (or /proc is not there).
func ReadStat(pid int) (Stat, bool) {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return Stat{}, false
	}
	return parseStat(pid, string(b))
}

// parseStat parses a stat line. The command name, in parentheses, may hold
// spaces and parentheses itself: the fields start after the last ")".
func parseStat(pid int, s string) (Stat, bool) {
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return Stat{}, false
	}
	f := strings.Fields(s[i+1:])
	// state ppid pgrp session tty_nr tpgid flags minflt cminflt majflt
	// cmajflt utime stime cutime cstime priority nice num_threads
	// itrealvalue starttime
	if len(f) < 20 || len(f[0]) != 1 {
		return Stat{}, false
	}
	st := Stat{PID: pid, State: f[0][0]}
	var err1, err2, err3, err4 error
	st.PPID, err1 = strconv.Atoi(f[1])
	st.PGID, err2 = strconv.Atoi(f[2])
	st.SID, err3 = strconv.Atoi(f[3])
	st.Start, err4 = strconv.ParseUint(f[19], 10, 64)
	if err1 != nil || err2 != nil || err3 != nil || err4 != nil {
		return Stat{}, false
	}
	return st, true
}

// All reads every process's stat.
func All() []Stat {
	entries, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	out := make([]Stat, 0, len(entries))
	for _, e := range entries {
		name := e.Name()
		if name == "" || name[0] < '0' || name[0] > '9' {
			continue
		}
		pid, err := strconv.Atoi(name)
		if err != nil {
			continue
		}
		if st, ok := ReadStat(pid); ok {
			out = append(out, st)
		}
	}
	return out
}

// Descendants returns the processes below root in all (children,
// grandchildren...), following parent links.
func Descendants(all []Stat, root int) []Stat {
	children := map[int][]Stat{}
	for _, st := range all {
		children[st.PPID] = append(children[st.PPID], st)
	}
	var out []Stat
	seen := map[int]bool{root: true}
	queue := []int{root}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		for _, c := range children[p] {
			if seen[c.PID] {
				continue
			}
			seen[c.PID] = true
			out = append(out, c)
			queue = append(queue, c.PID)
		}
	}
	return out
}

// BootID is the kernel's random boot id (a new one at every boot), or ""
// if it cannot be read.
func BootID() string { return readID("/proc/sys/kernel/random/boot_id") }

// MachineID is the machine id systemd and D-Bus keep (/etc/machine-id),
// stable across reboots, or "" if there is none.
func MachineID() string {
	if id := readID("/etc/machine-id"); id != "" {
		return id
	}
	return readID("/var/lib/dbus/machine-id")
}

func readID(path string) string {
	b, err := os.ReadFile(path)
	if err != nil || len(b) > 128 {
		return ""
	}
	return strings.TrimSpace(string(b))
}
