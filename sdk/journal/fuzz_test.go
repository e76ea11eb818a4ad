package journal

import (
	"bytes"
	"testing"
)

// FuzzParse checks that Parse never panics and that whatever it accepts is
// a well-formed journal: records numbered from 1 without gaps, starting
// with run_started, and only a final incomplete line ignored.
func FuzzParse(f *testing.F) {
	var good bytes.Buffer
	for i, typ := range []string{RunStarted, StepStarted, AttemptStarted, StepSucceeded, RunFinished} {
		line, _ := encodeRecord(rec(int64(i+1), typ))
		good.Write(line)
	}
	f.Add(good.Bytes())
	f.Add(append(append([]byte(nil), good.Bytes()...), `{"seq":6,"ty`...))
	f.Add([]byte("{}\n"))
	f.Add([]byte("\n\n"))
	f.Fuzz(func(t *testing.T, data []byte) {
		j, err := Parse("r1", data)
		if err != nil {
			return
		}
		if len(j.Records) == 0 || j.Records[0].Type != RunStarted {
			t.Fatalf("accepted a journal without run_started first: %+v", j.Records)
		}
		for i, r := range j.Records {
			if r.Seq != int64(i+1) || r.RunID != "r1" {
				t.Fatalf("accepted record %d with seq %d run %q", i, r.Seq, r.RunID)
			}
		}
		if j.TornTail > 0 && bytes.IndexByte(data[len(data)-j.TornTail:], '\n') >= 0 {
			t.Fatalf("ignored %d bytes that include a newline", j.TornTail)
		}
	})
}
