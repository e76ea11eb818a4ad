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
	// AliveUnknown: the holder is on another host; its process cannot be
	// checked from here.
	AliveUnknown Liveness = iota
	AliveYes
	// AliveNo: the holder is on this host and its process is gone.
	AliveNo
)

// Alive checks whether the holder's process still runs, when it is on this
// host.
func (h Holder) Alive() Liveness {
	host, err := os.Hostname()
	if err != nil || host != h.Host {
		return AliveUnknown
	}
	if processAlive(h.PID) {
		return AliveYes
	}
	return AliveNo
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

// LockedError says the lock is held, by whom, and whether the holder looks
// stale. A stale lock is reported, never taken over: the operator removes
// it with `runbook unlock` after checking no run is in progress.
type LockedError struct {
	Location string
	Holder   Holder
	// Stale: the holder is on this host and its process no longer exists.
	Stale bool
}

func (e *LockedError) Error() string {
	msg := fmt.Sprintf("%s is locked by %s", e.Location, e.Holder)
	if e.Stale {
		msg += "; that process is no longer running: if no run is in progress, remove the lock with `runbook unlock`"
	} else if e.Holder.Alive() == AliveUnknown {
		msg += "; it may still be running on that host: if it is not, remove the lock with `runbook unlock --force`"
	}
	return msg
}

func (e *LockedError) Is(target error) bool { return target == ErrLocked }

func (s *FileStore) lockPath() string { return filepath.Join(s.dir, "lock") }

// Lock takes the state directory's lock. The holder record is written to a
// temporary file and hard-linked into place, so the lock appears atomically
// with its content (a reader never sees an empty lock) and only one of two
// concurrent callers succeeds.
func (s *FileStore) Lock(ctx context.Context, h Holder) (Lock, error) {
	if err := s.ensureDirs(); err != nil {
		return nil, err
	}
	if h.Token == "" {
		h.Token = randomToken()
	}
	if h.Started.IsZero() {
		h.Started = time.Now().UTC()
	}
	data, err := json.MarshalIndent(h, "", "  ")
	if err != nil {
		return nil, err
	}
	tmp, err := os.CreateTemp(s.dir, ".lock-*")
	if err != nil {
		return nil, fmt.Errorf("creating lock: %w", err)
	}
	defer os.Remove(tmp.Name())
	_, err = tmp.Write(append(data, '\n'))
	if err == nil {
		err = tmp.Sync()
	}
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("writing lock: %w", err)
	}
	if err := os.Link(tmp.Name(), s.lockPath()); err != nil {
		if errors.Is(err, fs.ErrExist) {
			cur, rerr := s.LockHolder(ctx)
			if rerr != nil {
				return nil, fmt.Errorf("%s is locked, and its lock file cannot be read: %w", s.dir, rerr)
			}
			if cur == nil { // released between our link and our read
				return nil, fmt.Errorf("%s: lock contention, try again", s.dir)
			}
			return nil, &LockedError{Location: s.dir, Holder: *cur, Stale: cur.Alive() == AliveNo}
		}
		return nil, fmt.Errorf("taking lock: %w", err)
	}
	if err := syncDir(s.dir); err != nil {
		return nil, err
	}
	return &fileLock{store: s, holder: h}, nil
}

// LockHolder reads the lock file.
func (s *FileStore) LockHolder(ctx context.Context) (*Holder, error) {
	data, err := os.ReadFile(s.lockPath())
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
	h, err := s.LockHolder(ctx)
	if err != nil && !force {
		return nil, fmt.Errorf("%w (use force to remove it anyway)", err)
	}
	if h == nil && err == nil {
		return nil, nil
	}
	if h != nil && !force {
		switch h.Alive() {
		case AliveYes:
			return nil, fmt.Errorf("%s is locked by %s, which is still running; stop it first, or force the unlock", s.dir, h)
		case AliveUnknown:
			return nil, fmt.Errorf("%s is locked by %s on another host, whose process cannot be checked from here; force the unlock if it is not running", s.dir, h)
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

type fileLock struct {
	store    *FileStore
	holder   Holder
	released bool
}

func (l *fileLock) Holder() Holder { return l.holder }

func (l *fileLock) Release() error {
	if l.released {
		return nil
	}
	cur, err := l.store.LockHolder(context.Background())
	if err != nil {
		return fmt.Errorf("releasing lock: %w", err)
	}
	if cur == nil || cur.Token != l.holder.Token {
		l.released = true
		if cur == nil {
			return fmt.Errorf("releasing lock: %s was unlocked while run %s held it", l.store.dir, l.holder.RunID)
		}
		return fmt.Errorf("releasing lock: %s is now held by %s; leaving it in place", l.store.dir, cur)
	}
	if err := os.Remove(l.store.lockPath()); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return fmt.Errorf("releasing lock: %w", err)
	}
	l.released = true
	return syncDir(l.store.dir)
}

func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
