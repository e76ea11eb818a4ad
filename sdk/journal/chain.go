package journal

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
)

// The journal's checksum chain. Each record a writer seals carries, as its
// last field, "sum": the SHA-256 (hex) of the previous record's sum, a
// newline, and the record's own line as encoded without the sum. Parse
// recomputes the chain from the raw bytes, so a flipped byte, an edited
// output or a forged approval anywhere before the last record breaks the
// chain at that record and is named; a removed or reordered record breaks
// the numbering. The chain has no secret key: it detects damage and edits
// by hand or by tools that do not know the format, not a forger who
// recomputes every sum (that needs write access to the state directory,
// which the store refuses to share, or to the state bucket).
//
// Journals written before the chain (no record carries a sum) are still
// read; a journal in which only some records carry one is corrupt.

const sumPrefix = `,"sum":"`

// sumLen is the length of a sum in hex.
const sumLen = sha256.Size * 2

// chainSum is the sum of a record whose line, encoded without its sum, is
// body, following the record whose sum is prev ("" for the first).
func chainSum(prev string, body []byte) string {
	h := sha256.New()
	h.Write([]byte(prev))
	h.Write([]byte{'\n'})
	h.Write(body)
	return hex.EncodeToString(h.Sum(nil))
}

// Seal encodes rec as one journal line (ending in a newline) carrying its
// checksum chained to prev, the sum of the record before it ("" for the
// first record of a run). It returns the line and the record's sum, which
// is the prev of the next record. A writer that continues a journal
// written before checksums passes legacy: the line then has no sum, as the
// records before it.
func Seal(prev string, rec Record, legacy bool) (line []byte, sum string, err error) {
	rec.Sum = ""
	b, err := encodeRecord(rec)
	if err != nil {
		return nil, "", err
	}
	if legacy {
		return b, "", nil
	}
	body := b[:len(b)-1] // without the newline
	sum = chainSum(prev, body)
	line = make([]byte, 0, len(body)+len(sumPrefix)+sumLen+3)
	line = append(line, body[:len(body)-1]...) // without the closing brace
	line = append(line, sumPrefix...)
	line = append(line, sum...)
	line = append(line, '"', '}', '\n')
	return line, sum, nil
}

// checkSum verifies the sum of the record decoded as rec from the line raw
// (without its newline), following the record whose sum is prev.
func checkSum(prev string, raw []byte, rec Record) error {
	suffix := sumPrefix + rec.Sum + `"}`
	if len(rec.Sum) != sumLen || !bytes.HasSuffix(raw, []byte(suffix)) {
		return fmt.Errorf("record %d (%s) carries a malformed checksum: the journal was edited after it was written", rec.Seq, describeRecord(rec))
	}
	body := make([]byte, 0, len(raw)-len(suffix)+1)
	body = append(body, raw[:len(raw)-len(suffix)]...)
	body = append(body, '}')
	if chainSum(prev, body) != rec.Sum {
		return fmt.Errorf("record %d (%s) does not match its checksum: it, or a record before it, was changed after it was written (an edited value, a forged approval or a damaged disk)", rec.Seq, describeRecord(rec))
	}
	return nil
}

// describeRecord names a record for a message: its type and step.
func describeRecord(rec Record) string {
	s := rec.Type
	if rec.Step != "" {
		s += " of step " + rec.Step
	}
	return s
}
