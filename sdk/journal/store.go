package journal

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"regexp"
	"time"
)

// Store holds the journals of runs and the lock of one target. FileStore is
// the local implementation.
type Store interface {
	// Create starts the journal of a new run; it fails if one exists.
	Create(ctx context.Context, runID string) (Writer, error)
	// Reopen opens an existing journal for appending (resume). A torn final
	// line left by a crash is removed first, exactly as Open ignores it.
	Reopen(ctx context.Context, runID string) (Writer, error)
	// Open reads every record of a run. See Parse for what is tolerated.
	Open(ctx context.Context, runID string) (*Journal, error)
	// List summarises every run, oldest first.
	List(ctx context.Context) ([]RunSummary, error)

	// Lock takes the target's lock for holder, or fails with a
	// *LockedError naming the current holder. It never takes over a lock,
	// stale or not.
	Lock(ctx context.Context, holder Holder) (Lock, error)
	// LockHolder returns the current holder, or nil if the lock is free.
	LockHolder(ctx context.Context) (*Holder, error)
	// Unlock removes the lock whoever holds it, for `runbook unlock`. It
	// refuses when the holder may still be running (a live process on this
	// host, or any process on another host) unless force is set. It
	// returns the holder it removed (nil if the lock was free).
	Unlock(ctx context.Context, force bool) (*Holder, error)

	// Location names the store in messages (a directory, a URL).
	Location() string
}

// Writer appends records to one run's journal. Append returns only once the
// record is durable if it is a barrier (see Barrier; every record for a
// store whose writes are durable one by one, such as S3); the file store
// makes other records durable with the next barrier, within FlushDelay, or
// at Close.
type Writer interface {
	Append(rec Record) error
	Close() error
}

// Journal is the content of one run's journal.
type Journal struct {
	RunID   string
	Records []Record
	// TornTail is the number of bytes of an incomplete final line that were
	// ignored (a record cut short by a crash before it was synced).
	TornTail int
	// Unchecked: the journal was written before records carried checksums,
	// so edits to it cannot be detected (see Seal).
	Unchecked bool
	// lastSum is the last record's checksum (LastSum).
	lastSum string
}

// ErrNotFound is returned (wrapped) for a run with no journal.
var ErrNotFound = errors.New("no such run")

// ErrExists is returned (wrapped) by Create for a run id already used.
var ErrExists = errors.New("run journal already exists")

// CorruptError is a journal that cannot be trusted: a line other than the
// last is not a record, or records are missing.
type CorruptError struct {
	RunID string
	Line  int
	Msg   string
}

func (e *CorruptError) Error() string {
	return fmt.Sprintf("journal of run %s is corrupt at line %d: %s", e.RunID, e.Line, e.Msg)
}

var runIDPattern = regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$`)

// ValidRunID reports whether id is usable as a run id: letters, digits,
// '.', '_' and '-', starting with a letter or digit, at most 128 bytes.
func ValidRunID(id string) error {
	if !runIDPattern.MatchString(id) {
		return fmt.Errorf("invalid run id %q: use letters, digits, '.', '_' and '-' (starting with a letter or digit)", id)
	}
	return nil
}

// Parse reads a journal's bytes. Every line must be a record, numbered from
// 1 without gaps, the first a run_started. Only the final line may be
// incomplete (no newline, and not a whole record): it is what a crash
// leaves of a write that was never synced, and it is ignored and counted in
// TornTail. Anything else is a *CorruptError.
func Parse(runID string, data []byte) (*Journal, error) {
	j := &Journal{RunID: runID}
	body, tail := splitTail(data)
	line := 0
	var raws [][]byte // each record's line, for the checksum chain
	for len(body) > 0 {
		i := bytes.IndexByte(body, '\n')
		raw := body[:i]
		body = body[i+1:]
		line++
		rec, err := decodeLine(raw)
		if err != nil {
			return nil, &CorruptError{RunID: runID, Line: line, Msg: err.Error()}
		}
		j.Records = append(j.Records, rec)
		raws = append(raws, raw)
	}
	if len(tail) > 0 {
		// A whole record whose newline was lost is kept; anything else was
		// never synced, so nothing acted on it.
		if rec, err := decodeLine(tail); err == nil {
			j.Records = append(j.Records, rec)
			raws = append(raws, tail)
		} else {
			j.TornTail = len(tail)
		}
	}
	if len(j.Records) == 0 {
		return nil, &CorruptError{RunID: runID, Line: 1, Msg: "the journal has no complete record"}
	}
	for i, rec := range j.Records {
		if rec.Seq != int64(i+1) {
			return nil, &CorruptError{RunID: runID, Line: i + 1, Msg: fmt.Sprintf("record number %d where %d was expected (records are missing or out of order)", rec.Seq, i+1)}
		}
		if i == 0 && rec.Type != RunStarted {
			return nil, &CorruptError{RunID: runID, Line: 1, Msg: "the first record is " + rec.Type + ", not run_started"}
		}
		if rec.RunID != runID {
			return nil, &CorruptError{RunID: runID, Line: i + 1, Msg: fmt.Sprintf("record of run %q in the journal of run %q", rec.RunID, runID)}
		}
	}
	if err := verifyChain(j, raws); err != nil {
		return nil, err
	}
	return j, nil
}

// verifyChain checks the records' checksum chain (see Seal): every record
// carries a sum that matches, or none does (a journal written before the
// chain; Unchecked is set).
func verifyChain(j *Journal, raws [][]byte) error {
	if j.Records[0].Sum == "" {
		for i, rec := range j.Records {
			if rec.Sum != "" {
				return &CorruptError{RunID: j.RunID, Line: i + 1, Msg: fmt.Sprintf("record %d carries a checksum but the records before it do not: records were replaced", rec.Seq)}
			}
		}
		j.Unchecked = true
		return nil
	}
	prev := ""
	for i, rec := range j.Records {
		if rec.Sum == "" {
			return &CorruptError{RunID: j.RunID, Line: i + 1, Msg: fmt.Sprintf("record %d (%s) has no checksum although the records before it do: it was added or edited by hand", rec.Seq, describeRecord(rec))}
		}
		if err := checkSum(prev, raws[i], rec); err != nil {
			return &CorruptError{RunID: j.RunID, Line: i + 1, Msg: err.Error()}
		}
		prev = rec.Sum
		// Readers see the records as they were appended; the chain is
		// the store's business.
		j.Records[i].Sum = ""
	}
	j.lastSum = prev
	return nil
}

// LastSum is the checksum of the last record ("" when the journal has no
// checksums): a writer continuing the journal chains to it.
func (j *Journal) LastSum() string { return j.lastSum }

// splitTail splits data into whole lines (ending in '\n') and what follows
// the last newline.
func splitTail(data []byte) (body, tail []byte) {
	i := bytes.LastIndexByte(data, '\n')
	return data[:i+1], data[i+1:]
}

// decodeLine decodes b as exactly one record.
func decodeLine(b []byte) (Record, error) {
	var rec Record
	dec := json.NewDecoder(bytes.NewReader(b))
	if err := dec.Decode(&rec); err != nil {
		return Record{}, fmt.Errorf("not a journal record: %v", err)
	}
	if dec.More() {
		return Record{}, errors.New("more than one value on the line")
	}
	if rec.Type == "" {
		return Record{}, errors.New("record without a type")
	}
	return rec, nil
}

// encodeRecord is the one line written for rec.
func encodeRecord(rec Record) ([]byte, error) {
	b, err := json.Marshal(rec)
	if err != nil {
		return nil, fmt.Errorf("encoding %s record: %w", rec.Type, err)
	}
	return append(b, '\n'), nil
}

// RunSummary is one line of `runbook runs`.
type RunSummary struct {
	RunID       string    `json:"run_id"`
	Runbook     string    `json:"runbook"`
	RunbookPath string    `json:"runbook_path,omitempty"`
	Status      string    `json:"status"`
	Started     time.Time `json:"started"`
	// Finished is the time of the last terminal record (finished, paused,
	// interrupted); zero while running.
	Finished time.Time `json:"finished,omitzero"`
	// Err is set instead of the rest when the journal could not be read.
	Err string `json:"error,omitempty"`
}

// Summarize reads a run's status from its records (see View): the last of
// run_finished, run_paused, run_interrupted or run_resumed decides. A
// journal without a terminal record is "running".
func (j *Journal) Summarize() RunSummary {
	v := ViewOf(j)
	s := RunSummary{RunID: j.RunID, Status: v.Status, Started: v.Started, Finished: v.Finished}
	if s.Status == "" {
		s.Status = StatusRunning
	}
	if v.Run != nil {
		s.Runbook, s.RunbookPath = v.Run.Runbook, v.Run.RunbookPath
	}
	return s
}

// Finished returns the run_finished record, if the run has finished.
func (j *Journal) Finished() (Record, bool) {
	for i := len(j.Records) - 1; i >= 0; i-- {
		if j.Records[i].Type == RunFinished {
			return j.Records[i], true
		}
	}
	return Record{}, false
}

// Start returns the run_started record.
func (j *Journal) Start() Record {
	if len(j.Records) == 0 {
		return Record{}
	}
	return j.Records[0]
}

// LastSeq is the number of the last record.
func (j *Journal) LastSeq() int64 {
	if len(j.Records) == 0 {
		return 0
	}
	return j.Records[len(j.Records)-1].Seq
}
