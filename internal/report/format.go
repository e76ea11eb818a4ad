package report

import (
	"encoding/json"
	"fmt"
	"github.com/runbookhq/runbook/internal/termtext"
	"github.com/runbookhq/runbook/sdk/redact"
	"math"
	"strconv"
	"strings"
	"time"
)

// redacted is what a secret looks like in a report (as in the journal).
const redacted = redact.Mask

// redactor scrubs the values of secret inputs from every text it is given,
// as a second line of defence behind the engine's own redaction (a plugin
// error message could quote a webhook URL), with the engine's rules
// (sdk/redact): encoded forms too, short values only whole.
type redactor struct{ *redact.Redactor }

func newRedactor(inputs []Input) redactor {
	r := redact.New()
	for _, in := range inputs {
		if in.Secret {
			r.AddValue(in.Value)
		}
	}
	return redactor{r}
}

func (r redactor) text(s string) string { return r.String(s) }

// value renders v as text with secrets scrubbed.
func (r redactor) value(v any) string {
	if red := r.Value(v); red == redact.Mask {
		return redacted
	}
	return r.text(fmtValue(v))
}

// fmtValue renders a value as a report shows it: strings as they are,
// numbers without a needless fraction, lists and maps as compact JSON.
func fmtValue(v any) string {
	switch x := v.(type) {
	case nil:
		return "null"
	case string:
		return x
	case bool:
		return strconv.FormatBool(x)
	case float64:
		if x == math.Trunc(x) && math.Abs(x) < 1e15 {
			return strconv.FormatInt(int64(x), 10)
		}
		return strconv.FormatFloat(x, 'g', -1, 64)
	case float32:
		return fmtValue(float64(x))
	case int, int8, int16, int32, int64, uint, uint8, uint16, uint32, uint64:
		return fmt.Sprint(x)
	case time.Duration:
		return x.String()
	case time.Time:
		return x.UTC().Format(time.RFC3339Nano)
	case fmt.Stringer:
		return x.String()
	}
	b, err := json.Marshal(v)
	if err != nil {
		return fmt.Sprint(v)
	}
	return string(b)
}

// fmtDur formats a duration for people: "450ms", "2.4s", "58s", "2m41s",
// "1h02m03s".
func fmtDur(d time.Duration) string {
	if d < 0 {
		return "-" + fmtDur(-d)
	}
	switch {
	case d == 0:
		return "0s"
	case d < time.Millisecond:
		return "<1ms"
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Round(time.Millisecond)/time.Millisecond)
	}
	if r := d.Round(100 * time.Millisecond); r < time.Minute {
		if r%time.Second == 0 {
			return fmt.Sprintf("%ds", r/time.Second)
		}
		return fmt.Sprintf("%.1fs", r.Seconds())
	}
	d = d.Round(time.Second)
	if d < time.Hour {
		return fmt.Sprintf("%dm%02ds", d/time.Minute, d%time.Minute/time.Second)
	}
	return fmt.Sprintf("%dh%02dm%02ds", d/time.Hour, d%time.Hour/time.Minute, d%time.Minute/time.Second)
}

// fmtOffset formats a time as an offset from the run's start: "+1m05s".
func fmtOffset(d time.Duration) string {
	if d < 0 {
		return fmtDur(d)
	}
	return "+" + fmtDur(d)
}

// fmtTime formats a wall-clock time, always in UTC so that reports written
// on machines in different zones agree.
func fmtTime(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("2006-01-02 15:04:05 UTC")
}

// fmtClock is fmtTime without the date, for times within the run's day.
func fmtClock(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("15:04:05")
}

// fmtStamp is a precise timestamp for the event appendix.
func fmtStamp(t time.Time) string {
	if t.IsZero() {
		return "—"
	}
	return t.UTC().Format("15:04:05.000")
}

// truncate shortens s to at most n runes, marking the cut.
func truncate(s string, n int) string {
	r := []rune(s)
	if len(r) <= n {
		return s
	}
	return string(r[:n-1]) + "…"
}

// oneLine joins a multi-line message for a table cell.
func oneLine(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	// Control characters escaped (termtext): a Markdown report is often
	// read on a terminal.
	return strings.Join(strings.Fields(termtext.Escape(strings.ReplaceAll(s, "\n", " ⏎ "))), " ")
}

func shortHash(h string) string {
	h = strings.TrimPrefix(h, "sha256:")
	if len(h) > 12 {
		return h[:12]
	}
	return h
}

func plural(n int, one, many string) string {
	if n == 1 {
		return fmt.Sprintf("%d %s", n, one)
	}
	return fmt.Sprintf("%d %s", n, many)
}
