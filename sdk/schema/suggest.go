package schema

import (
	"fmt"
	"sort"
	"strconv"
	"strings"
	"unicode/utf8"

	"golang.org/x/text/unicode/runenames"
)

// MaxSuggestLen is the longest name a suggestion is looked for: typos are
// made in names people write, and comparing long strings costs the
// product of their lengths.
const MaxSuggestLen = 64

// DefaultSuggestBudget is the work (cells of the edit-distance table) a
// Suggester does in all before it stops suggesting: about a tenth of a
// second, however many unknown names a hostile file holds.
const DefaultSuggestBudget = 20_000_000

// Suggester suggests the known name closest to an unknown one, within a
// budget of work shared by all its calls; once spent, it suggests nothing.
// Validation uses one per file.
type Suggester struct{ left int }

// NewSuggester returns a Suggester with DefaultSuggestBudget.
func NewSuggester() *Suggester { return &Suggester{left: DefaultSuggestBudget} }

// Suggest returns the candidate closest to name by edit distance, if it is
// close enough to be a likely typo, or "". Ties go to the candidate first
// in sorted order.
func Suggest(name string, candidates []string) string {
	return NewSuggester().Suggest(name, candidates)
}

// Suggest is the package's Suggest within s's budget.
func (s *Suggester) Suggest(name string, candidates []string) string {
	a := []rune(name)
	if len(a) > MaxSuggestLen || s.left <= 0 {
		return ""
	}
	limit := min(max(len(a)/3, 1), 3)
	best, bestD := "", limit+1
	for _, c := range candidates {
		if s.left <= 0 {
			break
		}
		// A distance within limit needs lengths within limit (in bytes,
		// a cheap lower bound of the rune check below).
		if len(c) > 4*(len(a)+limit) || len(c)+limit < len(a) {
			continue
		}
		b := []rune(c)
		if len(b)-len(a) > limit || len(a)-len(b) > limit {
			continue
		}
		d := s.distance(a, b, bestD)
		if d < bestD || d == bestD && d <= limit && c < best {
			best, bestD = c, d
		}
	}
	if bestD <= limit {
		return best
	}
	return ""
}

// distance is the optimal string alignment distance (Levenshtein plus
// adjacent transpositions), the usual measure for typos. It stops as soon
// as the distance must exceed bound, returning bound+1, and counts its
// work against the budget.
func (s *Suggester) distance(ra, rb []rune, bound int) int {
	prev2 := make([]int, len(rb)+1)
	prev := make([]int, len(rb)+1)
	cur := make([]int, len(rb)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(ra); i++ {
		cur[0] = i
		rowMin := cur[0]
		for j := 1; j <= len(rb); j++ {
			cost := 1
			if ra[i-1] == rb[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
			if i > 1 && j > 1 && ra[i-1] == rb[j-2] && ra[i-2] == rb[j-1] {
				cur[j] = min(cur[j], prev2[j-2]+1)
			}
			rowMin = min(rowMin, cur[j])
		}
		s.left -= len(rb)
		if rowMin > bound {
			return bound + 1
		}
		prev2, prev, cur = prev, cur, prev2
	}
	return prev[len(rb)]
}

func sortedKeys(m map[string]any) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// maxLookalikes bounds the characters QuoteName names.
const maxLookalikes = 3

// QuoteName quotes a name for a message: escaped to ASCII and, when it
// holds characters outside ASCII, followed by what they are. A Cyrillic а
// in a step id looks exactly like a Latin a: the message must not look
// like it names the right thing.
func QuoteName(s string) string {
	q := strconv.QuoteToASCII(s)
	if q == strconv.Quote(s) {
		return q
	}
	var which []string
	seen := map[rune]bool{}
	for _, r := range s {
		if r < utf8.RuneSelf || seen[r] {
			continue
		}
		seen[r] = true
		if len(which) == maxLookalikes {
			which = append(which, "...")
			break
		}
		desc := fmt.Sprintf("U+%04X", r)
		if name := runenames.Name(r); name != "" {
			desc += " " + name
		}
		which = append(which, desc)
	}
	return q + " (not ASCII: " + strings.Join(which, ", ") + ")"
}
