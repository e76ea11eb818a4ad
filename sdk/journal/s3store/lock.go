package s3store

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"sync"
	"time"

	"github.com/runbookhq/runbook/sdk/journal"
)

// renewTimeout bounds one renewal (at least; RenewEvery if longer).
const renewTimeout = 10 * time.Second

// lockRecord is the content of lock.json.
type lockRecord struct {
	journal.Holder
	// Lease is how long the lock stays valid after each renewal (a Go
	// duration). Expiry is judged by S3's clock: the object's Last-Modified
	// plus the lease, against the Date of S3's answer.
	Lease string `json:"lease"`
	// Renewed and Expires are the holder's clock, for people reading the
	// object.
	Renewed time.Time `json:"renewed"`
	Expires time.Time `json:"expires"`
}

// lockState is lock.json as read.
type lockState struct {
	holder  journal.Holder
	lease   time.Duration
	renewed time.Time
	etag    string
	// expires is when the lease ends by S3's clock (Last-Modified + lease,
	// plus a second for the headers' one-second resolution); zero when the
	// record has no valid lease (then it never expires by itself).
	expires time.Time
	expired bool
	// parseErr is set when the object is not a lock record.
	parseErr error
}

// readLock reads lock.json; nil, nil when the lock is free.
func (s *Store) readLock(ctx context.Context) (*lockState, error) {
	o, err := s.get(ctx, s.lockKey(), maxLockBytes)
	if err != nil || o == nil {
		return nil, err
	}
	st := &lockState{etag: o.etag}
	var rec lockRecord
	if err := json.Unmarshal(o.body, &rec); err != nil {
		st.parseErr = fmt.Errorf("%s is not a lock record: %w", s.url(s.lockKey()), err)
		return st, nil
	}
	st.holder, st.renewed = rec.Holder, rec.Renewed
	if d, err := time.ParseDuration(rec.Lease); err == nil && d > 0 && !o.lastModified.IsZero() {
		st.lease = d
		st.expires = o.lastModified.Add(d + time.Second)
		now := o.serverNow
		if now.IsZero() {
			now = time.Now()
		}
		st.expired = !now.Before(st.expires)
	}
	return st, nil
}

// LockHolder returns the holder of the lock, or nil if it is free.
func (s *Store) LockHolder(ctx context.Context) (*journal.Holder, error) {
	st, err := s.readLock(ctx)
	if err != nil || st == nil {
		return nil, err
	}
	if st.parseErr != nil {
		return nil, st.parseErr
	}
	return &st.holder, nil
}

// LockedError is returned by Lock when the lock is held. It wraps a
// *journal.LockedError (errors.As finds either); Stale means the lease
// expired without being renewed.
type LockedError struct {
	journal.LockedError
	// Expires is when the lease ends (or ended), by S3's clock; zero if
	// the lock has no valid lease.
	Expires time.Time
}

func (e *LockedError) Error() string {
	msg := fmt.Sprintf("%s is locked by %s", e.Location, e.Holder)
	unlock := e.UnlockCommand
	if unlock == "" {
		unlock = journal.DefaultUnlockCommand
	}
	switch {
	case e.Stale:
		msg += fmt.Sprintf("; its lease expired at %s without being renewed, so that run most likely stopped without releasing it: if no run is in progress, remove the lock with `%s`", e.Expires.UTC().Format(time.RFC3339), unlock)
	case !e.Expires.IsZero():
		msg += fmt.Sprintf("; its holder renews the lease while it runs (current until %s): wait for that run to end", e.Expires.UTC().Format(time.RFC3339))
	default:
		msg += fmt.Sprintf("; the lock has no lease: if no run is in progress, remove it with `%s --force`", unlock)
	}
	return msg
}

func (e *LockedError) Unwrap() error { return &e.LockedError }

// LostError says a held lock was lost: removed (runbook unlock), replaced by
// another holder, or its lease ran out before it could be renewed. Journal
// writers of the store refuse to write from then on.
type LostError struct {
	Location string
	Holder   journal.Holder
	Reason   string
}

func (e *LostError) Error() string {
	return fmt.Sprintf("run %s lost the lock of %s: %s", e.Holder.RunID, e.Location, e.Reason)
}

// Lock takes the lock for h: lock.json is created with If-None-Match: *, so
// of any number of concurrent callers exactly one succeeds. The others get
// a *LockedError naming the holder. The returned lock renews its lease in
// the background until Release.
func (s *Store) Lock(ctx context.Context, h journal.Holder) (journal.Lock, error) {
	s.mu.Lock()
	if s.held != nil {
		s.mu.Unlock()
		return nil, fmt.Errorf("%s: this store already holds the lock for run %s", s.Location(), s.held.holder.RunID)
	}
	s.mu.Unlock()
	if h.Token == "" {
		h.Token = randomToken()
	}
	if h.Started.IsZero() {
		h.Started = time.Now().UTC()
	}
	l := &lease{s: s, holder: h, stop: make(chan struct{}), done: make(chan struct{})}
	for range 3 {
		start := time.Now()
		etag, err := s.putIfAbsent(ctx, s.lockKey(), l.encode(start))
		if err == nil {
			l.etag, l.deadline = etag, start.Add(s.opts.Lease)
			s.mu.Lock()
			if s.held != nil { // a concurrent Lock on this same store won
				s.mu.Unlock()
				_ = l.remove(context.WithoutCancel(ctx))
				return nil, fmt.Errorf("%s: this store already holds the lock for run %s", s.Location(), s.held.holder.RunID)
			}
			s.held = l
			s.mu.Unlock()
			go l.renewLoop()
			return l, nil
		}
		if !isPreconditionFailed(err) {
			return nil, fmt.Errorf("taking the lock %s: %w", s.url(s.lockKey()), err)
		}
		st, rerr := s.readLock(ctx)
		if rerr != nil {
			return nil, fmt.Errorf("%s is locked, and its lock cannot be read: %w", s.Location(), rerr)
		}
		if st == nil {
			continue // released between our write and our read
		}
		if st.parseErr != nil {
			return nil, fmt.Errorf("%s is locked, and %w; if no run is in progress, remove it with `%s --force`", s.Location(), st.parseErr, s.opts.UnlockCommand)
		}
		return nil, &LockedError{
			LockedError: journal.LockedError{Location: s.Location(), Holder: st.holder, Stale: st.expired, UnlockCommand: s.opts.UnlockCommand},
			Expires:     st.expires,
		}
	}
	return nil, fmt.Errorf("%s: the lock is being taken and released by others; try again", s.Location())
}

// Unlock removes the lock whoever holds it, for `runbook unlock`. Without
// force it refuses a lock whose lease is current (its holder may be
// running, on any machine) or that cannot be read. The delete is
// conditional on the ETag just read, so a lock renewed or retaken in the
// meantime is judged again rather than removed blindly.
func (s *Store) Unlock(ctx context.Context, force bool) (*journal.Holder, error) {
	for range 3 {
		st, err := s.readLock(ctx)
		if err != nil {
			return nil, err
		}
		if st == nil {
			return nil, nil
		}
		if st.parseErr != nil && !force {
			return nil, fmt.Errorf("%w (use force to remove it anyway)", st.parseErr)
		}
		if st.parseErr == nil && !st.expired && !force {
			until := "it has no lease, so it never expires by itself"
			if !st.expires.IsZero() {
				until = "its lease is current until " + st.expires.UTC().Format(time.RFC3339) + " and is renewed while the run is alive"
			}
			return nil, fmt.Errorf("%s is locked by %s; %s: that run may still be in progress, on any machine. Wait for it, or force the unlock if you are sure it is not running", s.Location(), st.holder, until)
		}
		err = s.deleteIfMatch(ctx, s.lockKey(), st.etag)
		if err == nil {
			if st.parseErr != nil {
				return &journal.Holder{RunID: "unknown", Command: "the lock object was not a lock record"}, nil
			}
			return &st.holder, nil
		}
		if isNoSuchKey(err) {
			return nil, nil
		}
		if !isPreconditionFailed(err) {
			return nil, fmt.Errorf("removing the lock %s: %w", s.url(s.lockKey()), err)
		}
	}
	return nil, fmt.Errorf("%s: the lock kept changing while being removed; try again", s.Location())
}

// fence returns an error when this store held a lock that it lost, or whose
// lease ran out before it could be renewed.
func (s *Store) fence() error {
	s.mu.Lock()
	l := s.held
	s.mu.Unlock()
	if l == nil {
		return nil
	}
	return l.valid()
}

// lease is a held lock.
type lease struct {
	s      *Store
	holder journal.Holder

	mu       sync.Mutex
	etag     string
	deadline time.Time // local (monotonic) end of the lease
	lost     error
	lastErr  error

	stop, done chan struct{}
	once       sync.Once
}

func (l *lease) Holder() journal.Holder { return l.holder }

func (l *lease) encode(now time.Time) []byte {
	rec := lockRecord{Holder: l.holder, Lease: l.s.opts.Lease.String(), Renewed: now.UTC(), Expires: now.Add(l.s.opts.Lease).UTC()}
	b, _ := json.MarshalIndent(rec, "", "  ")
	return append(b, '\n')
}

// valid reports whether the lease still protects this holder.
func (l *lease) valid() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	if l.lost != nil {
		return l.lost
	}
	if !time.Now().Before(l.deadline) {
		reason := "its lease ran out before it could be renewed"
		if l.lastErr != nil {
			reason += " (" + l.lastErr.Error() + ")"
		}
		l.lost = &LostError{Location: l.s.Location(), Holder: l.holder, Reason: reason}
		return l.lost
	}
	return nil
}

// Lost returns why the lock was lost, or nil while it is held.
func (l *lease) Lost() error { return l.valid() }

func (l *lease) renewLoop() {
	defer close(l.done)
	t := time.NewTicker(l.s.opts.RenewEvery)
	defer t.Stop()
	for {
		select {
		case <-l.stop:
			return
		case <-t.C:
			if !l.renew() {
				return
			}
		}
	}
}

// renew rewrites lock.json if it is still the object this holder wrote.
// It returns false once the lock is lost.
func (l *lease) renew() bool {
	if l.valid() != nil {
		return false
	}
	ctx, cancel := context.WithTimeout(context.Background(), max(l.s.opts.RenewEvery, renewTimeout))
	defer cancel()
	l.mu.Lock()
	etag := l.etag
	l.mu.Unlock()
	start := time.Now()
	newETag, err := l.s.putIfMatch(ctx, l.s.lockKey(), etag, l.encode(start))
	var lost *LostError
	adopted := ""
	switch {
	case err == nil:
	case isNoSuchKey(err):
		lost = &LostError{Location: l.s.Location(), Holder: l.holder, Reason: "the lock was removed (`runbook unlock`?) while the run held it"}
	case isPreconditionFailed(err):
		st, rerr := l.s.readLock(ctx)
		switch {
		case rerr != nil:
			err = fmt.Errorf("the lock changed, and reading it failed: %w", rerr)
		case st != nil && st.parseErr == nil && st.holder.Token == l.holder.Token:
			// Our own earlier renewal landed although its answer was
			// lost: the object is still ours, under a newer ETag.
			adopted = st.etag
		case st != nil && st.parseErr == nil:
			lost = &LostError{Location: l.s.Location(), Holder: l.holder, Reason: "the lock was removed and is now held by " + st.holder.String()}
		case st == nil:
			lost = &LostError{Location: l.s.Location(), Holder: l.holder, Reason: "the lock was removed (`runbook unlock`?) while the run held it"}
		default:
			lost = &LostError{Location: l.s.Location(), Holder: l.holder, Reason: "the lock was replaced: " + st.parseErr.Error()}
		}
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	switch {
	case err == nil:
		l.etag, l.deadline, l.lastErr = newETag, start.Add(l.s.opts.Lease), nil
		return true
	case adopted != "":
		// The lease runs from that earlier write, whose time is unknown:
		// keep the deadline, and renew again at the next tick.
		l.etag = adopted
		return true
	case lost != nil:
		l.lost = lost
	default:
		// A transient failure: retried at the next tick while the lease
		// lasts.
		l.lastErr = err
		l.warn("renewing the lock of %s failed (will retry while the lease lasts, until %s): %v", l.s.Location(), l.deadline.Format(time.RFC3339), err)
		return true
	}
	l.warn("%v; no further journal records will be written, so the run stops", l.lost)
	return false
}

func (l *lease) warn(format string, args ...any) {
	if l.s.opts.Warnf != nil {
		l.s.opts.Warnf(format, args...)
	}
}

// Release stops renewing and removes the lock if it is still this
// holder's. It fails if the lock was lost (removed, or held by another run
// now, which is left in place).
func (l *lease) Release() error {
	var err error
	l.once.Do(func() {
		close(l.stop)
		<-l.done
		l.s.mu.Lock()
		if l.s.held == l {
			l.s.held = nil
		}
		l.s.mu.Unlock()
		ctx, cancel := context.WithTimeout(context.Background(), opTimeout)
		defer cancel()
		err = l.remove(ctx)
		l.mu.Lock()
		lost := l.lost
		l.mu.Unlock()
		if lost != nil {
			// The run must hear that it went on without the lock for a
			// while, even if the object was still its own to remove.
			err = lost
		}
	})
	return err
}

// remove deletes lock.json if it still holds this holder's token.
func (l *lease) remove(ctx context.Context) error {
	st, err := l.s.readLock(ctx)
	if err != nil {
		return fmt.Errorf("releasing the lock: %w", err)
	}
	if st == nil {
		return fmt.Errorf("releasing the lock: %s was unlocked while run %s held it", l.s.Location(), l.holder.RunID)
	}
	if st.parseErr != nil || st.holder.Token != l.holder.Token {
		return fmt.Errorf("releasing the lock: %s is now held by %s; leaving it in place", l.s.Location(), st.holder)
	}
	if err := l.s.deleteIfMatch(ctx, l.s.lockKey(), st.etag); err != nil && !isNoSuchKey(err) {
		if isPreconditionFailed(err) {
			return fmt.Errorf("releasing the lock: %s changed while being released (another process renewed or replaced it); it was left in place", l.s.Location())
		}
		return fmt.Errorf("releasing the lock %s: %w", l.s.url(l.s.lockKey()), err)
	}
	return nil
}

func randomToken() string {
	b := make([]byte, 12)
	_, _ = rand.Read(b)
	return hex.EncodeToString(b)
}
