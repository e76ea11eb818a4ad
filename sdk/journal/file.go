package journal

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
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
type FileStore struct {
	dir string
	// NoSync never fsyncs (see Barrier for when records are synced). For
	// benchmarks only: a crash can then lose records the engine has already
	// acted on.
	NoSync bool
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
		return fmt.Errorf("creating state directory: %w", err)
	}
	return nil
}

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
		return nil, fmt.Errorf("creating journal: %w", err)
	}
	// The new directory entry must survive a crash too.
	if !s.NoSync {
		if err := syncDir(s.runsDir()); err != nil {
			f.Close()
			return nil, err
		}
	}
	return &fileWriter{f: f, path: path, noSync: s.NoSync}, nil
}

// Reopen opens a run's journal for appending. An incomplete final line (see
// Parse) is truncated away first, so that the next record starts on a line
// of its own; a whole final record that lost its newline gets it back.
func (s *FileStore) Reopen(ctx context.Context, runID string) (Writer, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	path := s.Path(runID)
	f, err := os.OpenFile(path, os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s (no journal at %s)", ErrNotFound, runID, path)
	}
	if err != nil {
		return nil, fmt.Errorf("opening journal: %w", err)
	}
	data, err := readAll(f)
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("reading journal: %w", err)
	}
	// Refuse to append to a journal Open would refuse to read.
	if _, err := Parse(runID, data); err != nil {
		f.Close()
		return nil, err
	}
	body, tail := splitTail(data)
	if len(tail) > 0 {
		if _, err := decodeLine(tail); err == nil {
			_, err = f.WriteAt([]byte{'\n'}, int64(len(data)))
		} else {
			err = f.Truncate(int64(len(body)))
		}
		if err == nil && !s.NoSync {
			err = f.Sync()
		}
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("repairing the journal's final line: %w", err)
		}
	}
	if _, err := f.Seek(0, 2); err != nil {
		f.Close()
		return nil, err
	}
	return &fileWriter{f: f, path: path, noSync: s.NoSync}, nil
}

// Open reads a run's journal.
func (s *FileStore) Open(ctx context.Context, runID string) (*Journal, error) {
	if err := ValidRunID(runID); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(s.Path(runID))
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
	noSync bool
	err    error
	// dirty: records written since the last fsync; flush syncs them
	// FlushDelay after the first of them unless a barrier record did first.
	dirty bool
	flush *time.Timer
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
// After a failed write or sync the writer refuses further records: a
// partial line may be on disk and only a reopen (which drops it) may
// continue the journal.
func (w *fileWriter) Append(rec Record) error {
	line, err := encodeRecord(rec)
	if err != nil {
		return err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.err != nil {
		return w.err
	}
	if w.f == nil {
		return errors.New("journal writer is closed")
	}
	if _, err := w.f.Write(line); err != nil {
		w.err = fmt.Errorf("writing journal %s: %w", w.path, err)
		return w.err
	}
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
		w.err = fmt.Errorf("syncing journal %s: %w", w.path, err)
		return w.err
	}
	w.dirty = false
	return nil
}

// Close syncs any record not yet durable and closes the file.
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
	return err
}

func readAll(f *os.File) ([]byte, error) {
	var buf bytes.Buffer
	_, err := buf.ReadFrom(f)
	return buf.Bytes(), err
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
