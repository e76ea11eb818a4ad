package journal

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"al.essio.dev/pkg/shellescape"

	"github.com/runbookhq/runbook/sdk/safefile"
)

// DefaultDirName is the state directory created next to a runbook when no
// --state is given.
const DefaultDirName = ".runbook"

// DefaultDir is the default state directory of the runbook at path.
func DefaultDir(runbookPath string) string {
	return filepath.Join(filepath.Dir(runbookPath), DefaultDirName)
}

// FileStore keeps journals and the lock in a local state directory:
//
//	<dir>/lock               the lock (JSON holder), present while a run holds it
//	<dir>/runs/<run-id>.jsonl one journal per run
//
// The directory is created on first use with mode 0700: journals hold run
// inputs (secrets redacted) and outputs.
//
// The directory is refused when users other than its owner can write it,
// or when it belongs to another user (as ssh refuses such a key file):
// whoever can write it can forge a lock or a journal that resume acts on.
type FileStore struct {
	dir string
	// NoSync never fsyncs (see Barrier for when records are synced). For
	// benchmarks only: a crash can then lose records the engine has already
	// acted on.
	NoSync bool
	// UnlockCommand is the command a *LockedError suggests to remove the
	// lock, as the user would type it (DefaultUnlockCommand if empty).
	UnlockCommand string

	mu sync.Mutex
	// lock is the lock this store took and has not released: its journal
	// writers check before each barrier that the lock file is still it.
	lock *fileLock
}

var _ Store = (*FileStore)(nil)

// NewFileStore returns the store for a state directory. Nothing is created
// until a journal or the lock is written.
func NewFileStore(dir string) *FileStore {
	return &FileStore{dir: dir}
}

// Dir is the state directory.
func (s *FileStore) Dir() string { return s.dir }

// Location is the state directory.
func (s *FileStore) Location() string { return s.dir }

func (s *FileStore) runsDir() string { return filepath.Join(s.dir, "runs") }

// Path is the journal file of a run.
func (s *FileStore) Path(runID string) string {
	return filepath.Join(s.runsDir(), runID+".jsonl")
}

func (s *FileStore) ensureDirs() error {
	if err := os.MkdirAll(s.runsDir(), 0o700); err != nil {
		return diskFull(s.dir, fmt.Errorf("creating state directory: %w", err))
	}
	return s.checkDirs()
}

// UnsafeDirError refuses a state directory that others may write.
type UnsafeDirError struct {
	Dir    string
	Reason string
	// Fix is the command that makes it safe.
	Fix string
}

func (e *UnsafeDirError) Error() string {
	return fmt.Sprintf("state directory %s %s: whoever can write it can forge the lock or a journal that resume would act on; refusing to use it. Fix it with: %s", e.Dir, e.Reason, e.Fix)
}

// checkDirs refuses a state directory (or its runs/) that is not a
// directory, that users other than its owner can write, or that another
// user owns. Missing directories are fine: they are created 0700.
func (s *FileStore) checkDirs() error {
	for _, d := range []string{s.dir, s.runsDir()} {
		fi, err := os.Stat(d)
		if errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("state directory: %w", err)
		}
		if !fi.IsDir() {
			return fmt.Errorf("state directory %s is not a directory", d)
		}
		if perm := fi.Mode().Perm(); perm&0o022 != 0 {
			return &UnsafeDirError{Dir: d, Reason: fmt.Sprintf("is writable by other users (mode %04o)", perm), Fix: "chmod go-w " + shellescape.Quote(d)}
		}
		if uid := foreignOwner(fi); uid >= 0 {
			return &UnsafeDirError{Dir: d, Reason: fmt.Sprintf("belongs to another user (uid %d)", uid), Fix: "chown \"$(id -u)\" " + shellescape.Quote(d) + " (as that user or root), or use a state directory of your own"}
		}
	}
	return nil
}

// Journal size caps. A journal is a few hundred kilobytes for a long run;
// the caps keep a runaway or hostile journal from exhausting memory. A
// writer refuses a record that would take its journal past
// MaxJournalWriteBytes, so that what it wrote stays readable (under
// MaxJournalBytes) with room for the records of resumes.
const (
	MaxJournalBytes      = 128 << 20
	MaxJournalWriteBytes = 64 << 20
)

// Create starts a new journal file; it fails with ErrExists if the run id
// is taken.
func (s *FileStore) Create(ctx context.Context, runID string) (Writer, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	if err := s.ensureDirs(); err != nil {
		return nil, err
	}
	path := s.Path(runID)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|os.O_APPEND, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("%w: %s", ErrExists, path)
	}
	if err != nil {
		return nil, diskFull(s.dir, fmt.Errorf("creating journal: %w", err))
	}
	// The new directory entry must survive a crash too.
	if !s.NoSync {
		if err := syncDir(s.runsDir()); err != nil {
			f.Close()
			return nil, err
		}
	}
	return s.newWriter(f, path, runID, 0, 0, "", false)
}

// Reopen opens a run's journal for appending. An incomplete final line (see
// Parse) is truncated away first, so that the next record starts on a line
// of its own; a whole final record that lost its newline gets it back.
func (s *FileStore) Reopen(ctx context.Context, runID string) (Writer, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	if err := s.checkDirs(); err != nil {
		return nil, err
	}
	path := s.Path(runID)
	f, err := safefile.Open(path, os.O_RDWR)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (no journal at %s)", ErrNotFound, runID, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening journal: %w", err)
	}
	data, err := safefile.ReadAll(f, path, MaxJournalBytes)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	// Refuse to append to a journal Open would refuse to read.
	j, err := Parse(runID, data)
	if err != nil {
		f.Close()
		return nil, err
	}
	size := int64(len(data))
	body, tail := splitTail(data)
	if len(tail) > 0 {
		if _, err := decodeLine(tail); err == nil {
			_, err = f.WriteAt([]byte{'\n'}, size)
			size++
		} else {
			err = f.Truncate(int64(len(body)))
			size = int64(len(body))
		}
		if err == nil && !s.NoSync {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, diskFull(s.dir, fmt.Errorf("repairing the journal's final line: %w", err))
		}
	}
	if _, err := f.Seek(0, 2); err != nil {
		f.Close()
		return nil, err
	}
	return s.newWriter(f, path, runID, size, j.LastSeq(), j.LastSum(), j.Unchecked)
}

// Open reads a run's journal.
func (s *FileStore) Open(ctx context.Context, runID string) (*Journal, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	if err := s.checkDirs(); err != nil {
		return nil, err
	}
	data, err := safefile.ReadFile(s.Path(runID), MaxJournalBytes)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (no journal in %s)", ErrNotFound, runID, s.runsDir())
	}
	if err != nil {
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	return Parse(runID, data)
}

// List summarises every run in the state directory, oldest first (run ids
// sort by time). A journal that cannot be read is listed with Err set. A
// journal without a terminal record is "incomplete" unless the lock is held
// by that run on a live process.
func (s *FileStore) List(ctx context.Context) ([]RunSummary, error) {
	if err := s.checkDirs(); err != nil {
		return nil, err
	}
	entries, err := os.ReadDir(s.runsDir())
	if errors.Is(err, fs.ErrNotExist) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("listing runs: %w", err)
	}
	holder, _ := s.LockHolder(ctx)
	var out []RunSummary
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".jsonl")
		if !ok || e.IsDir() || ValidRunID(id) != nil {
			continue
		}
		j, err := s.Open(ctx, id)
		if err != nil {
			out = append(out, RunSummary{RunID: id, Status: "unreadable", Err: err.Error()})
			continue
		}
		sum := j.Summarize()
		if sum.Status == StatusRunning && !(holder != nil && holder.RunID == id && holder.Alive() != AliveNo) {
			sum.Status = StatusIncomplete
		}
		out = append(out, sum)
	}
	sort.SliceStable(out, func(i, k int) bool {
		if !out[i].Started.Equal(out[k].Started) {
			return out[i].Started.Before(out[k].Started)
		}
		return out[i].RunID < out[k].RunID
	})
	return out, nil
}

// fileWriter appends records to one journal file.
type fileWriter struct {
	mu     sync.Mutex
	f      *os.File
	path   string
	store  *FileStore
	noSync bool
	err    error
	// size is the length of the file as written by whole records, and
	// lastSeq the number of the last of them.
	size    int64
	lastSeq int64
	// lastSum is the checksum of the last record written (see Seal);
	// legacy: the journal predates checksums and is continued without.
	lastSum string
	legacy  bool
	// reserve is a file of reserveBytes kept beside the journal: when the
	// disk fills up, removing it makes room for the record that says so.
	reserve string
	// final: the disk filled up; one run_interrupted record may still be
	// written, in the room the reserve left.
	final bool
	// dirty: records written since the last fsync; flush syncs them
	// FlushDelay after the first of them unless a barrier record did first.
	dirty bool
	flush *time.Timer
}

// reserveBytes is the room kept for the record that says the disk is full.
const reserveBytes = 64 << 10

// newWriter returns the writer of the open journal f, of size bytes, with
// its reserve (see fileWriter.reserve) in place.
func (s *FileStore) newWriter(f *os.File, path, runID string, size, lastSeq int64, lastSum string, legacy bool) (Writer, error) {
	w := &fileWriter{f: f, path: path, store: s, noSync: s.NoSync, size: size, lastSeq: lastSeq, lastSum: lastSum, legacy: legacy}
	if !s.NoSync {
		w.reserve = filepath.Join(s.runsDir(), "."+runID+".reserve")
		err := checkFree(s.runsDir(), 2*reserveBytes)
		if err == nil {
			err = makeReserve(w.reserve, reserveBytes)
		}
		if err != nil {
			f.Close()
			_ = os.Remove(w.reserve)
			return nil, diskFull(s.dir, fmt.Errorf("reserving room for the journal of run %s: %w", runID, err))
		}
	}
	return w, nil
}

// makeReserve creates (or replaces) a file of n bytes whose blocks are
// allocated now.
func makeReserve(path string, n int) error {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_TRUNC|noFollow, 0o600)
	if err != nil {
		return err
	}
	if err := allocate(f, int64(n)); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// allocate gives f n bytes of allocated blocks: fallocate where the file
// system has it, else written zeros.
func allocate(f *os.File, n int64) error {
	err := fallocate(f, n)
	if err == nil || errors.Is(err, syscall.ENOSPC) || isQuotaExceeded(err) {
		return err
	}
	_, err = f.Write(make([]byte, n))
	return err
}

// DiskFullError says the disk holding the state directory is full (or the
// user's quota is exhausted): the run stops, and its journal ends with a
// run_interrupted record that says so, written in room kept for it.
type DiskFullError struct {
	Dir string
	Err error
}

func (e *DiskFullError) Error() string {
	return fmt.Sprintf("the disk holding the state directory %s is full (%v): free space there, then resume the run", e.Dir, e.Err)
}

func (e *DiskFullError) Unwrap() error { return e.Err }

// diskFull wraps err in a *DiskFullError when it is ENOSPC or EDQUOT.
func diskFull(dir string, err error) error {
	if err != nil && (errors.Is(err, syscall.ENOSPC) || isQuotaExceeded(err)) {
		return &DiskFullError{Dir: dir, Err: err}
	}
	return err
}

// FlushDelay bounds how long a record that is not a barrier (see Barrier)
// may stay unsynced: a crash of the machine within it can lose the outcome
// of an action that finished, and resume then treats that step as cut off
// mid-action (re-run if idempotent, else the operator decides), exactly as
// for a crash during the action.
const FlushDelay = 100 * time.Millisecond

// Barrier reports whether a record must be durable before Append returns:
// the records after which the engine acts (calls an action, acts on an
// approval) or stops. The others (step started, finished or skipped,
// progress, logs) become durable with the next barrier, or FlushDelay after
// they were written, whichever comes first, so a step costs one fsync, not
// one per record.
func Barrier(typ string) bool {
	switch typ {
	case AttemptStarted, ApprovalRequested, ApprovalGranted, ApprovalDenied,
		RunPaused, RunInterrupted, RunFinished:
		return true
	}
	return false
}

// Append writes rec as one line with a single write; a barrier record (see
// Barrier) is fsynced, with every record before it, before Append returns.
// Before a barrier the writer checks that its store still holds the lock
// it took (see FileStore.fence): a run that lost it stops there. After a
// failed write or sync the writer refuses further records: a partial line
// may be on disk and only a reopen (which drops it) may continue the
// journal. When the write failed because the disk is full, the partial
// line is removed at once, the reserve is freed, and one run_interrupted
// record is still accepted, numbered after the last record written.
func (w *fileWriter) Append(rec Record) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		if w.final && rec.Type == RunInterrupted && w.f != nil {
			w.final = false
			return w.appendFinal(rec)
		}
		return w.err
	}
	if w.f == nil {
		return errors.New("journal writer is closed")
	}
	line, sum, err := Seal(w.lastSum, rec, w.legacy)
	if err != nil {
		return err
	}
	if w.size+int64(len(line)) > MaxJournalWriteBytes {
		return fmt.Errorf("journal %s would grow past %d MiB; refusing record %d", w.path, MaxJournalWriteBytes>>20, rec.Seq)
	}
	if Barrier(rec.Type) {
		if err := w.store.fence(); err != nil {
			w.err = err
			return err
		}
	}
	n, err := w.f.Write(line)
	if err != nil {
		w.err = diskFull(w.store.Dir(), fmt.Errorf("writing journal %s: %w", w.path, err))
		var df *DiskFullError
		if errors.As(w.err, &df) && w.reserve != "" && w.f.Truncate(w.size) == nil {
			w.final = os.Remove(w.reserve) == nil
		}
		return w.err
	}
	w.size += int64(n)
	w.lastSeq, w.lastSum = rec.Seq, sum
	if w.noSync {
		return nil
	}
	w.dirty = true
	if Barrier(rec.Type) {
		return w.syncLocked()
	}
	if w.flush == nil {
		w.flush = time.AfterFunc(FlushDelay, w.flushDeferred)
	}
	return nil
}

// appendFinal writes the run_interrupted record that ends a journal whose
// disk filled up, numbered after the last record on disk. w.mu is held.
func (w *fileWriter) appendFinal(rec Record) error {
	rec.Seq = w.lastSeq + 1
	line, sum, err := Seal(w.lastSum, rec, w.legacy)
	if err != nil {
		return err
	}
	n, err := w.f.Write(line)
	if err != nil {
		return w.err
	}
	w.size += int64(n)
	w.lastSeq, w.lastSum = rec.Seq, sum
	if !w.noSync {
		if err := w.f.Sync(); err != nil {
			return w.err
		}
		w.dirty = false
	}
	return nil
}

// flushDeferred syncs records left unsynced for FlushDelay. A failure is
// kept and returned by the next Append, which stops the run.
func (w *fileWriter) flushDeferred() {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.flush = nil
	if w.f != nil && w.err == nil {
		_ = w.syncLocked()
	}
}

// syncLocked fsyncs what was written since the last sync. w.mu is held.
func (w *fileWriter) syncLocked() error {
	if w.flush != nil {
		w.flush.Stop()
		w.flush = nil
	}
	if !w.dirty {
		return nil
	}
	if err := w.f.Sync(); err != nil {
		w.err = diskFull(w.store.Dir(), fmt.Errorf("syncing journal %s: %w", w.path, err))
		return w.err
	}
	w.dirty = false
	return nil
}

// Close syncs any record not yet durable, closes the file and removes the
// reserve.
func (w *fileWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	var err error
	if w.err == nil {
		err = w.syncLocked()
	}
	if cerr := w.f.Close(); err == nil {
		err = cerr
	}
	w.f = nil
	if w.reserve != "" {
		_ = os.Remove(w.reserve)
	}
	return err
}

// syncDir makes a directory's entries (a new or removed file) durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	if err := d.Sync(); err != nil && !errors.Is(err, fs.ErrInvalid) {
		return fmt.Errorf("syncing %s: %w", dir, err)
	}
	return nil
}
