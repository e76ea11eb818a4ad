package journal

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/user"
	"path/filepath"
	"time"

	"github.com/runbookhq/runbook/sdk/internal/procfs"
	"github.com/runbookhq/runbook/sdk/safefile"
)

// Holder says who holds a lock.
type Holder struct {
	RunID   string    `json:"run_id"`
	PID     int       `json:"pid"`
	Host    string    `json:"host"`
	User    string    `json:"user"`
	Started time.Time `json:"started"`
	// Command is what the holder is doing, e.g. "run failover.yaml".
	Command string `json:"command,omitempty"`
	// Token identifies one acquisition, so that Release never removes a
	// lock someone else took after an explicit unlock.
	Token string `json:"token"`
	// BootID is the kernel's boot id when the lock was taken, MachineID the
	// machine's id, and ProcStart the holder process's start time in clock
	// ticks since boot (Linux): together they let another process on the
	// same host prove the holder dead, even once its pid has been given to
	// another process (a restarted container).
	BootID    string `json:"boot_id,omitempty"`
	MachineID string `json:"machine_id,omitempty"`
	ProcStart uint64 `json:"proc_start,omitempty"`
}

// CurrentHolder describes this process holding the lock for runID.
func CurrentHolder(runID, command string) Holder {
	h := Holder{RunID: runID, PID: os.Getpid(), Started: time.Now().UTC(), Command: command}
	h.Host, _ = os.Hostname()
	if u, err := user.Current(); err == nil {
		h.User = u.Username
	} else {
		h.User = os.Getenv("USER")
	}
	h.BootID, h.MachineID = procfs.BootID(), procfs.MachineID()
	if st, ok := procfs.ReadStat(h.PID); ok {
		h.ProcStart = st.Start
	}
	return h
}

func (h Holder) String() string {
	s := fmt.Sprintf("run %s (pid %d on %s", h.RunID, h.PID, h.Host)
	if h.User != "" {
		s += ", user " + h.User
	}
	if !h.Started.IsZero() {
		s += ", since " + h.Started.UTC().Format(time.RFC3339)
	}
	s += ")"
	if h.Command != "" {
		s += ": " + h.Command
	}
	return s
}

// Liveness of a lock holder's process.
type Liveness int

const (
	// AliveUnknown: the holder is on another host, or was on this host
	// under another boot that cannot be told apart from another machine of
	// the same name; its process cannot be checked from here.
	AliveUnknown Liveness = iota
	AliveYes
	// AliveNo: the holder is on this host and its process is gone.
	AliveNo
)

// Alive checks whether the holder's process still runs, when it is on this
// host.
func (h Holder) Alive() Liveness {
	l, _, _ := h.liveness()
	return l
}

// ProvablyDead reports whether the holder is certainly not running: it was
// on this host (same host name) under this very boot (same boot id), and its
// pid is gone or now belongs to a process that started at another time; or
// this machine (same machine id) has booted since. Why says how this was
// established. A holder on another host, of a lock written without boot id
// or start time, or that cannot be checked here, is never provably dead.
func (h Holder) ProvablyDead() (dead bool, why string) {
	l, proven, why := h.liveness()
	return l == AliveNo && proven, why
}

func (h Holder) liveness() (l Liveness, proven bool, why string) {
	host, err := os.Hostname()
	if err != nil || host != h.Host {
		return AliveUnknown, false, "it is on another host, whose processes cannot be checked from here"
	}
	boot := procfs.BootID()
	if h.BootID != "" && boot != "" && h.BootID != boot {
		if h.MachineID != "" && h.MachineID == procfs.MachineID() {
			return AliveNo, true, "this machine has restarted since the lock was taken (another boot id)"
		}
		return AliveUnknown, false, "it was taken under another boot id: this machine restarted since, or another machine has the same host name"
	}
	sameBoot := h.BootID != "" && h.BootID == boot
	if !processAlive(h.PID) {
		return AliveNo, sameBoot, fmt.Sprintf("process %d no longer exists", h.PID)
	}
	if sameBoot && h.ProcStart != 0 {
		if st, ok := procfs.ReadStat(h.PID); ok && st.Start != h.ProcStart {
			return AliveNo, true, fmt.Sprintf("pid %d now belongs to another process, started later (the holder is gone; a restarted container reuses pids)", h.PID)
		}
	}
	return AliveYes, false, fmt.Sprintf("process %d is still running", h.PID)
}

// Lock is a held lock.
type Lock interface {
	Holder() Holder
	// Release gives the lock up. It fails if the lock is no longer ours
	// (it was removed by an explicit unlock and possibly taken by another
	// run); it is a no-op after the first successful call.
	Release() error
}

// ErrLocked is matched (errors.Is) by *LockedError.
var ErrLocked = errors.New("locked")

// DefaultUnlockCommand is the command messages suggest to remove a lock
// when the store was not told the exact one (see FileStore.UnlockCommand).
const DefaultUnlockCommand = "runbook unlock"

// LockedError says the lock is held, by whom, and whether the holder looks
// stale. Lock never takes a lock over; a caller may take over the lock of a
// holder that is provably dead (see FileStore.TakeOver), and otherwise the
// operator removes it with the unlock command after checking no run is in
// progress.
type LockedError struct {
	Location string
	Holder   Holder
	// Stale: the holder is on this host and its process no longer exists.
	Stale bool
	// UnlockCommand is the command that removes the lock, as the user
	// would type it (DefaultUnlockCommand if empty); " --force" is added
	// where the holder may still be running.
	UnlockCommand string
}

func (e *LockedError) Error() string {
	msg := fmt.Sprintf("%s is locked by %s", e.Location, e.Holder)
	unlock := e.UnlockCommand
	if unlock == "" {
		unlock = DefaultUnlockCommand
	}
	l, _, why := e.Holder.liveness()
	if e.Stale {
		msg += "; " + why + ": if no run is in progress, remove the lock with `" + unlock + "`"
	} else if l == AliveUnknown {
		msg += "; " + why + ": if it is not running, remove the lock with `" + unlock + " --force`"
	}
	return msg
}

func (e *LockedError) Is(target error) bool { return target == ErrLocked }

// LockLostError says the holder of a lock no longer holds it: it was
// removed (`runbook unlock --force`) or replaced while the run held it.
// Journal writers of the store refuse every record from then on, so the
// run stops before its next action.
type LockLostError struct {
	Location string
	Holder   Holder
	Reason   string
}

func (e *LockLostError) Error() string {
	return fmt.Sprintf("run %s lost the lock of %s: %s", e.Holder.RunID, e.Location, e.Reason)
}

func (s *FileStore) lockPath() string { return filepath.Join(s.dir, "lock") }

// maxLockBytes caps what is read of a lock file (a holder record is a few
// hundred bytes).
const maxLockBytes = 64 << 10

// Lock takes the state directory's lock. The holder record is written to a
// temporary file and hard-linked into place, so the lock appears atomically
// with its content (a reader never sees an empty lock) and only one of two
// concurrent callers succeeds.
func (s *FileStore) Lock(ctx context.Context, h Holder) (Lock, error) {
	tmp, h, err := s.writeHolder(h)
	if err != nil {
		return nil, err
	}
	defer os.Remove(tmp)
	if err := os.Link(tmp, s.lockPath()); err != nil {
		if errors.Is(err, fs.ErrExist) {
			cur, rerr := s.LockHolder(ctx)
			if rerr != nil {
				return nil, fmt.Errorf("%s is locked, and its lock file cannot be read: %w", s.dir, rerr)
			}
			if cur == nil { // released between our link and our read
				return nil, fmt.Errorf("%s: lock contention, try again", s.dir)
			}
			return nil, &LockedError{Location: s.dir, Holder: *cur, Stale: cur.Alive() == AliveNo, UnlockCommand: s.UnlockCommand}
		}
		return nil, fmt.Errorf("taking lock: %w", err)
	}
	return s.held(h)
}

// writeHolder writes h (with a token and a start time) to a new temporary
// file in the state directory, made durable, and returns its path.
func (s *FileStore) writeHolder(h Holder) (string, Holder, error) {
	if err := s.ensureDirs(); err != nil {
		return "", h, err
	}
	if h.Token == "" {
		h.Token = randomToken()
	}
	if h.Started.IsZero() {
		h.Started = time.Now().UTC()
	}
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return "", h, err
	}
	tmp, err := os.CreateTemp(s.dir, ".lock-*")
	if err != nil {
		return "", h, diskFull(s.dir, fmt.Errorf("creating lock: %w", err))
	}
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp.Name())
		return "", h, diskFull(s.dir, fmt.Errorf("writing lock: %w", err))
	}
	return tmp.Name(), h, nil
}

// held records that this store holds the lock just linked into place, so
// that its journal writers can check at each barrier that it still does.
func (s *FileStore) held(h Holder) (Lock, error) {
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	l := &fileLock{store: s, holder: h}
	s.mu.Lock()
	s.lock = l
	s.mu.Unlock()
	return l, nil
}

// TakeOver replaces the lock of dead, a holder that is provably dead (see
// Holder.ProvablyDead), with h's, and returns it with why dead is known to
// be dead. It takes nothing if the lock is free or held by anyone but dead
// by then (another process may have taken it over first), or if dead is not
// provably dead. Contenders for a take-over, unlocks and releases are
// serialised by an advisory lock on a file of the state directory.
func (s *FileStore) TakeOver(ctx context.Context, dead, h Holder) (Lock, string, error) {
	tmp, h, err := s.writeHolder(h)
	if err != nil {
		return nil, "", err
	}
	defer os.Remove(tmp)
	unlockMu, err := s.mutex()
	if err != nil {
		return nil, "", err
	}
	defer unlockMu()
	cur, err := s.LockHolder(ctx)
	if err != nil {
		return nil, "", fmt.Errorf("%s is locked, and its lock file cannot be read: %w", s.dir, err)
	}
	if cur == nil || cur.Token != dead.Token {
		return nil, "", fmt.Errorf("%s: the lock changed while it was being taken over; try again", s.dir)
	}
	ok, why := cur.ProvablyDead()
	if !ok {
		return nil, "", &LockedError{Location: s.dir, Holder: *cur, Stale: cur.Alive() == AliveNo, UnlockCommand: s.UnlockCommand}
	}
	if err := os.Remove(s.lockPath()); err != nil {
		return nil, "", fmt.Errorf("taking over the lock: %w", err)
	}
	if err := os.Link(tmp, s.lockPath()); err != nil {
		// Only Lock can have linked its own in between: it holds it now.
		return nil, "", fmt.Errorf("taking over the lock: %w", err)
	}
	l, err := s.held(h)
	return l, why, err
}

// LockHolder reads the lock file.
func (s *FileStore) LockHolder(ctx context.Context) (*Holder, error) {
	if err := s.checkDirs(); err != nil {
		return nil, err
	}
	data, err := safefile.ReadFile(s.lockPath(), maxLockBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	var h Holder
	if err := json.Unmarshal(data, &h); err != nil {
		return nil, fmt.Errorf("lock file %s is not a lock holder record: %w", s.lockPath(), err)
	}
	return &h, nil
}

// Unlock removes the lock. Without force it refuses when the holder's
// process is alive on this host, or is on another host.
func (s *FileStore) Unlock(ctx context.Context, force bool) (*Holder, error) {
	unlockMu, err := s.mutex()
	if err != nil {
		return nil, err
	}
	defer unlockMu()
	h, err := s.LockHolder(ctx)
	if err != nil && !force {
		return nil, fmt.Errorf("%w (use force to remove it anyway)", err)
	}
	if h == nil && err == nil {
		return nil, nil
	}
	if h != nil && !force {
		switch l, _, why := h.liveness(); l {
		case AliveYes:
			return nil, fmt.Errorf("%s is locked by %s, which is still running (%s); stop it first, or force the unlock", s.dir, h, why)
		case AliveUnknown:
			return nil, fmt.Errorf("%s is locked by %s; %s; force the unlock if it is not running", s.dir, h, why)
		}
	}
	if err := os.Remove(s.lockPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("removing lock: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	return h, nil
}

// fence returns a *LockLostError when this store took the lock and the lock
// file no longer holds its token (removed, or replaced by another holder's).
// Journal writers call it before each barrier record.
func (s *FileStore) fence() error {
	s.mu.Lock()
	l := s.lock
	var seen fs.FileInfo
	if l != nil {
		seen = l.seen
	}
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	// A stat per barrier: the file is read again only when it is not the
	// one last seen to hold our token (same inode, size and modification
	// time).
	fi, err := os.Stat(s.lockPath())
	if err == nil && seen != nil && os.SameFile(fi, seen) && fi.Size() == seen.Size() && fi.ModTime().Equal(seen.ModTime()) {
		return nil
	}
	cur, err := s.LockHolder(context.Background())
	switch {
	case err != nil:
		return fmt.Errorf("checking the lock of %s: %w", s.dir, err)
	case cur == nil:
		return &LockLostError{Location: s.dir, Holder: l.holder, Reason: "the lock was removed (`runbook unlock --force`?) while the run held it"}
	case cur.Token != l.holder.Token:
		return &LockLostError{Location: s.dir, Holder: l.holder, Reason: "the lock was removed and is now held by " + cur.String()}
	}
	if fi != nil {
		s.mu.Lock()
		l.seen = fi
		s.mu.Unlock()
	}
	return nil
}

type fileLock struct {
	store    *FileStore
	holder   Holder
	released bool
	// seen is the lock file as last seen holding this holder's token
	// (store.mu).
	seen fs.FileInfo
}

func (l *fileLock) Holder() Holder { return l.holder }

func (l *fileLock) Release() error {
	if l.released {
		return nil
	}
	s := l.store
	s.mu.Lock()
	if s.lock == l {
		s.lock = nil
	}
	s.mu.Unlock()
	unlockMu, err := s.mutex()
	if err != nil {
		return fmt.Errorf("releasing lock: %w", err)
	}
	defer unlockMu()
	cur, err := s.LockHolder(context.Background())
	if err != nil {
		return fmt.Errorf("releasing lock: %w", err)
	}
	if cur == nil || cur.Token != l.holder.Token {
		l.released = true
		if cur == nil {
			return fmt.Errorf("releasing lock: %s was unlocked while run %s held it", s.dir, l.holder.RunID)
		}
		return fmt.Errorf("releasing lock: %s is now held by %s; leaving it in place", s.dir, cur)
	}
	if err := os.Remove(s.lockPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("releasing lock: %w", err)
	}
	l.released = true
	return syncDir(s.dir)
}

func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
