package runbook

import (
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
)

// Numbers are written in decimal, and read the same way wherever a runbook
// reads one: in the runbook (an input's default, a parameter, retry
// attempts), in a var file (YAML or JSON), in a --var value or a
// RUNBOOK_VAR_ variable. YAML alone would read 010 as 8 (YAML 1.1's
// octal) where a --var reads 10, accept 0x10 and 1_000 where JSON does
// not, and round 1e-400 to 0 and 12345678901234567890 to another integer
// without a word. So one grammar, and a value a number cannot hold exactly
// enough is refused rather than rounded.
var numberRe = regexp.MustCompile(`^[-+]?(?:(?:0|[1-9][0-9]*)(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)?$`)

// maxExactInt is the largest integer a number (a float64) holds exactly.
const maxExactInt = 1 << 53

var (
	baseRe      = regexp.MustCompile(`^[-+]?0[xXoObB]`)
	leadZeroRe  = regexp.MustCompile(`^[-+]?0[0-9]+(?:\.[0-9]*)?(?:[eE][-+]?[0-9]+)?$`)
	integerRe   = regexp.MustCompile(`^[-+]?[0-9]+$`)
	nonZeroRe   = regexp.MustCompile(`[1-9]`)
	mantissaRe  = regexp.MustCompile(`^[^eE]*`)
	infinityRe  = regexp.MustCompile(`(?i)^[-+]?\.?(inf|infinity|nan)$`)
	separatedRe = regexp.MustCompile(`^[-+]?[0-9._]*_[0-9._]*(?:[eE][-+]?[0-9_]+)?$`)
)

// parseNumber parses text as a runbook number; problem says why it is
// refused ("" when it is not).
func parseNumber(text string) (f float64, problem string) {
	switch {
	case numberRe.MatchString(text):
	case baseRe.MatchString(text):
		msg := fmt.Sprintf("%s is written in another base than 10", text)
		if v, err := strconv.ParseInt(strings.ReplaceAll(text, "_", ""), 0, 64); err == nil {
			msg += fmt.Sprintf(": write %d", v)
		}
		return 0, msg
	case leadZeroRe.MatchString(text):
		return 0, fmt.Sprintf("%s has a leading zero, which YAML 1.1 reads as octal and other readers as decimal: write it without", text)
	case separatedRe.MatchString(text) && numberRe.MatchString(strings.ReplaceAll(text, "_", "")):
		return 0, fmt.Sprintf("%s has digit separators: write %s", text, strings.ReplaceAll(text, "_", ""))
	case infinityRe.MatchString(text):
		return 0, fmt.Sprintf("%s is not a finite number", text)
	default:
		return 0, fmt.Sprintf("%q is not a number", text)
	}
	f, err := strconv.ParseFloat(text, 64)
	if errors.Is(err, strconv.ErrRange) || math.IsInf(f, 0) {
		return 0, fmt.Sprintf("%s is too large for a number (at most about 1.8e308)", text)
	}
	if err != nil {
		return 0, fmt.Sprintf("%q is not a number", text)
	}
	if f != 0 && math.Abs(f) < math.SmallestNonzeroFloat64*(1<<52) || f == 0 && nonZeroRe.MatchString(mantissaRe.FindString(text)) {
		return 0, fmt.Sprintf("%s is too small to be held as a number (below about 2.2e-308): write 0 if zero is meant", text)
	}
	if n, err := strconv.ParseInt(text, 10, 64); integerRe.MatchString(text) && (err != nil || n > maxExactInt || n < -maxExactInt) {
		return 0, fmt.Sprintf("%s is an integer too large to be held exactly (the limit is %d): quote it to keep it as text", text, int64(maxExactInt))
	}
	return f, ""
}
