// Package redact replaces secret values, and the forms a secret takes once
// encoded on its way into output, in everything runbook writes. A runbook
// can build a JSON body with toJSON(inputs.token) or a header with
// toBase64(...); a plugin can quote a value with %q in an error, log JSON
// that escapes every accented letter as \u00e9, put it in a URL, print it
// in hex or as base64 wrapped over lines, or have its log line cut in two.
// Redacting only the raw value would let those through.
//
// The engine (events, journals) and the plugin host (plugin logs,
// progress, errors) share one Redactor; Mask is what a secret becomes.
package redact

import (
	"encoding/base64"
	"encoding/hex"
	"encoding/json"
	"html"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"sync"
	"unicode/utf16"
	"unicode/utf8"
)

// Mask is what a redacted value is replaced with, everywhere.
const Mask = "***"

// MinLength is the shortest secret looked for inside text. A shorter one
// (a 1-character string, a number like 7) would hit unrelated words and
// numbers: it is replaced only where it stands as a whole value (see
// Redactor.Value), as booleans are. Secrets meant to stay secret are longer.
const MinLength = 4

// minForm is the shortest encoded form added: a short secret's base64
// ("YQ" for "a") would otherwise replace unrelated text. The raw value is
// always a form, whatever its length.
const minForm = 6

// minEmbedded is the shortest base64 run kept for a secret embedded in a
// longer base64 text (see embeddedBase64): shorter runs would match
// unrelated base64 data.
const minEmbedded = 12

// Forms returns s and its encoded forms, without duplicates, longest first
// (so a form containing another is replaced whole):
//
//   - JSON string escaping, with and without HTML escaping, twice (JSON in
//     a JSON string), and with every character outside ASCII as a \u
//     escape (lower and upper case hex), as Python's json and others write;
//   - Go quoting (%q) and its ASCII variant (%+q), HTML escaping;
//   - percent-encoding: URL query, path, and component (everything but
//     letters, digits and -._~) escaping, with upper and lower case hex;
//   - hex, lower and upper case;
//   - base64 in the standard and URL alphabets, padded and raw, of s alone
//     and, for long enough secrets, the part that is the same wherever s
//     sits inside a longer base64-encoded text ("user:" + token).
//
// Forms shorter than 6 bytes, but s itself, are left out. An empty s has
// no forms.
func Forms(s string) []string {
	if s == "" {
		return nil
	}
	seen := map[string]bool{}
	var out []string
	add := func(v string) {
		if v != s && len(v) < minForm {
			return
		}
		if v != "" && v != Mask && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	addCases := func(v string) {
		add(v)
		add(lowerHexEscapes(v))
	}
	add(s)
	j := jsonInner(s, true)
	for _, v := range []string{j, jsonInner(s, false), jsonInner(j, true), jsonInner(jsonInner(s, false), false)} {
		add(v)
		add(asciiEscapes(v, false))
		add(asciiEscapes(v, true))
	}
	add(quotedInner(strconv.Quote(s)))
	add(quotedInner(strconv.QuoteToASCII(s)))
	add(html.EscapeString(s))
	addCases(url.QueryEscape(s))
	addCases(url.PathEscape(s))
	addCases(componentEscape(s))
	add(hex.EncodeToString([]byte(s)))
	add(strings.ToUpper(hex.EncodeToString([]byte(s))))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		add(enc.EncodeToString([]byte(s)))
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for _, v := range embeddedBase64(enc, s) {
			add(v)
		}
	}
	sortLongestFirst(out)
	return out
}

// jsonInner is s as a JSON string, without the surrounding quotes.
func jsonInner(s string, escapeHTML bool) string {
	var b strings.Builder
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		return ""
	}
	v := strings.TrimSuffix(b.String(), "\n")
	return v[1 : len(v)-1]
}

func quotedInner(q string) string { return q[1 : len(q)-1] }

// asciiEscapes writes every character of s outside ASCII as a JSON \u
// escape (a UTF-16 surrogate pair beyond the BMP).
func asciiEscapes(s string, upper bool) string {
	var b strings.Builder
	digits := "0123456789abcdef"
	if upper {
		digits = "0123456789ABCDEF"
	}
	u := func(r rune) {
		b.WriteString(`\u`)
		for shift := 12; shift >= 0; shift -= 4 {
			b.WriteByte(digits[(r>>shift)&0xf])
		}
	}
	for _, r := range s {
		switch {
		case r < utf8.RuneSelf:
			b.WriteRune(r)
		case r > 0xffff:
			r1, r2 := utf16.EncodeRune(r)
			u(r1)
			u(r2)
		default:
			u(r)
		}
	}
	return b.String()
}

// componentEscape percent-encodes every byte but letters, digits and
// -._~ (JavaScript's encodeURIComponent, RFC 3986's unreserved set).
func componentEscape(s string) string {
	const digits = "0123456789ABCDEF"
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || strings.IndexByte("-._~", c) >= 0 {
			b.WriteByte(c)
			continue
		}
		b.WriteByte('%')
		b.WriteByte(digits[c>>4])
		b.WriteByte(digits[c&0xf])
	}
	return b.String()
}

// lowerHexEscapes lowercases the hex digits of %XX escapes.
func lowerHexEscapes(s string) string {
	b := []byte(s)
	for i := 0; i+2 < len(b); i++ {
		if b[i] == '%' {
			b[i+1], b[i+2] = lowerHex(b[i+1]), lowerHex(b[i+2])
			i += 2
		}
	}
	return string(b)
}

func lowerHex(c byte) byte {
	if 'A' <= c && c <= 'F' {
		return c + 'a' - 'A'
	}
	return c
}

// embeddedBase64 returns, for each of the three alignments s can have
// inside a longer byte string, the base64 characters that encode bytes of
// s only: they appear in the encoding of any text that contains s at that
// alignment. Runs shorter than minEmbedded are left out.
func embeddedBase64(enc *base64.Encoding, s string) []string {
	var out []string
	for pad := 0; pad < 3; pad++ {
		// pad bytes before s put its first byte at offset pad of a 3-byte
		// group; the groups that hold only bytes of s start at the next
		// multiple of 3.
		skip := (3 - pad) % 3 // bytes of s in the first, mixed group
		n := (len(s) - skip) / 3 * 3
		if n <= 0 {
			continue
		}
		v := enc.EncodeToString([]byte(s[skip : skip+n]))
		if len(v) >= minEmbedded {
			out = append(out, v)
		}
	}
	return out
}

func sortLongestFirst(v []string) {
	sort.SliceStable(v, func(i, j int) bool {
		if len(v[i]) != len(v[j]) {
			return len(v[i]) > len(v[j])
		}
		return v[i] < v[j]
	})
}

// Redactor replaces secrets in text and values. Secrets can be added while
// it is used (values learned from step outputs); it is safe for concurrent
// use. The zero Redactor has no secrets; use New.
type Redactor struct {
	mu    sync.RWMutex
	seen  map[string]bool // every form added
	forms []string        // longest first
	rep   *strings.Replacer
	// whole are values replaced where they stand as a whole value:
	// secrets shorter than MinLength, and numbers.
	wholeText map[string]bool
	wholeNum  map[float64]bool
	maxForm   int
}

// New returns a Redactor for the given secrets (see Add).
func New(secrets ...string) *Redactor {
	r := &Redactor{seen: map[string]bool{}, wholeText: map[string]bool{}, wholeNum: map[float64]bool{}}
	r.Add(secrets...)
	return r
}

// Add adds secret strings: each of at least MinLength bytes is replaced,
// with its encoded forms, wherever it appears in text; a shorter one
// where it stands as a whole value.
func (r *Redactor) Add(secrets ...string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := false
	for _, s := range secrets {
		changed = r.addLocked(s) || changed
	}
	if changed {
		r.rebuild()
	}
}

func (r *Redactor) addLocked(s string) bool {
	if s == "" || s == Mask {
		return false
	}
	if len(s) < MinLength {
		r.wholeText[s] = true
		return false
	}
	if r.seen[s] {
		return false
	}
	changed := false
	for _, f := range Forms(s) {
		if !r.seen[f] {
			r.seen[f] = true
			r.forms = append(r.forms, f)
			r.maxForm = max(r.maxForm, len(f))
			changed = true
		}
	}
	return changed
}

func (r *Redactor) rebuild() {
	sortLongestFirst(r.forms)
	pairs := make([]string, 0, 2*len(r.forms))
	for _, f := range r.forms {
		pairs = append(pairs, f, Mask)
	}
	r.rep = strings.NewReplacer(pairs...)
}

// AddValue adds every scalar inside v (a secret input may be a list or a
// map of them): strings as Add does; numbers in the ways they are written
// (1500, 1.5) as text when that is at least MinLength long, and as whole
// values always. Booleans are not searched for: true and false are in
// every log. Where runbook knows a value is secret (the input itself, a
// parameter or output marked secret), it is masked whole, whatever it is.
func (r *Redactor) AddValue(v any) {
	switch x := v.(type) {
	case nil, bool:
	case string:
		r.Add(x)
	case float64:
		r.mu.Lock()
		r.wholeNum[x] = true
		r.mu.Unlock()
		r.Add(NumberTexts(x)...)
	case int:
		r.AddValue(float64(x))
	case []any:
		for _, it := range x {
			r.AddValue(it)
		}
	case map[string]any:
		for _, it := range x {
			r.AddValue(it)
		}
	}
}

// NumberTexts are the ways a number is commonly written: as runbook
// interpolates it (3, not 3.0), and as Go's %v and %f print it.
func NumberTexts(f float64) []string {
	out := []string{strconv.FormatFloat(f, 'f', -1, 64), strconv.FormatFloat(f, 'g', -1, 64)}
	if f == float64(int64(f)) {
		out = append(out, strconv.FormatInt(int64(f), 10))
	}
	return out
}

// Empty reports whether there is nothing to redact.
func (r *Redactor) Empty() bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.rep == nil && len(r.wholeText) == 0 && len(r.wholeNum) == 0
}

// String replaces every secret form in s, also where a line break cuts
// one (a base64 text wrapped at 64 or 76 characters).
func (r *Redactor) String(s string) string {
	r.mu.RLock()
	rep, maxForm := r.rep, r.maxForm
	r.mu.RUnlock()
	if rep == nil {
		return s
	}
	s = replaceAll(rep, s)
	if strings.IndexByte(s, '\n') < 0 || maxForm < 2 {
		return s
	}
	lines := strings.Split(s, "\n")
	r.maskLines(rep, lines)
	return strings.Join(lines, "\n")
}

// maskLines masks each line, then the forms cut by the breaks between
// them, again until nothing changes: masking can form a secret that holds
// the mask's character anew, and each round that changes something turns
// at least one byte that is not '*' into the mask, so it ends.
func (r *Redactor) maskLines(rep *strings.Replacer, lines []string) {
	for {
		for i, t := range lines {
			lines[i] = replaceAll(rep, t)
		}
		if len(lines) < 2 {
			return
		}
		before := strings.Join(lines, "\n")
		r.maskAcross(lines)
		if strings.Join(lines, "\n") == before {
			return // the lines were stable: the across pass changed nothing
		}
	}
}

// replaceAll replaces until no secret is left: a secret that holds the
// mask's character ("000*") can be formed again by a replacement
// ("000000*000" gives "000***000"). Each pass turns at least one byte
// that is not '*' into the mask, so the loop ends.
func replaceAll(rep *strings.Replacer, s string) string {
	for {
		t := rep.Replace(s)
		if t == s {
			return t
		}
		s = t
	}
}

// Value returns a deep copy of v with secrets replaced in every string
// (map keys included), and every scalar that equals a whole-value secret
// (a short secret, a secret number) replaced by Mask.
func (r *Redactor) Value(v any) any {
	if r.Empty() {
		return v
	}
	return r.value(v)
}

func (r *Redactor) value(v any) any {
	switch x := v.(type) {
	case string:
		if r.isWhole(x) {
			return Mask
		}
		return r.String(x)
	case float64:
		if r.isWholeNum(x) {
			return Mask
		}
	case int:
		if r.isWholeNum(float64(x)) {
			return Mask
		}
	case map[string]any:
		if x == nil {
			return x
		}
		out := make(map[string]any, len(x))
		for k, it := range x {
			out[r.String(k)] = r.value(it)
		}
		return out
	case []any:
		out := make([]any, len(x))
		for i, it := range x {
			out[i] = r.value(it)
		}
		return out
	}
	return v
}

func (r *Redactor) isWhole(s string) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.wholeText[s]
}

func (r *Redactor) isWholeNum(f float64) bool {
	r.mu.RLock()
	defer r.mu.RUnlock()
	return r.wholeNum[f]
}

// Map is Value for a map.
func (r *Redactor) Map(m map[string]any) map[string]any {
	if m == nil {
		return nil
	}
	return r.Value(m).(map[string]any)
}

// Cut redacts s and cuts it to at most n bytes (on a character boundary),
// adding "..." when it cut: redaction before cutting, so that a secret
// the cut would split is not left half in clear.
func (r *Redactor) Cut(s string, n int) string {
	s = r.String(s)
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// maskAcross masks the forms that a line break cuts: lines are joined and
// searched for the forms, and the parts of a form found across a break
// are masked in each line it spans. They are joined with the line breaks
// (a secret that holds some: a PEM key), without them (a form cut by a
// wrap), and again without the carriage returns of CRLF line ends and the
// leading blanks of continuation lines, when there are any (wrapped
// output may be indented). lines are already redacted one by one.
func (r *Redactor) maskAcross(lines []string) {
	r.mu.RLock()
	forms := r.forms
	r.mu.RUnlock()
	r.maskJoined(lines, forms, "\n", false)
	r.maskJoined(lines, forms, "", false)
	for i, l := range lines {
		if strings.HasSuffix(l, "\r") || i > 0 && (strings.HasPrefix(l, " ") || strings.HasPrefix(l, "\t")) {
			r.maskJoined(lines, forms, "", true)
			break
		}
	}
}

func (r *Redactor) maskJoined(lines, forms []string, sep string, clean bool) {
	var joined strings.Builder
	starts := make([]int, len(lines)) // offset of each line's kept part in joined
	skips := make([]int, len(lines))  // leading bytes of each line not in joined
	kept := make([]int, len(lines))   // bytes of each line in joined
	for i, l := range lines {
		part := l
		if clean {
			if i > 0 {
				skips[i] = len(l) - len(strings.TrimLeft(l, " \t"))
			}
			part = strings.TrimSuffix(l[skips[i]:], "\r")
		}
		if i > 0 {
			joined.WriteString(sep)
		}
		starts[i], kept[i] = joined.Len(), len(part)
		joined.WriteString(part)
	}
	j := joined.String()
	type span struct{ from, to int }
	var spans []span
	for _, f := range forms {
		for off := 0; ; {
			k := strings.Index(j[off:], f)
			if k < 0 {
				break
			}
			from, to := off+k, off+k+len(f)
			// Only a match across a break: within one line it is done.
			line := lineOf(starts, from)
			if line+1 < len(starts) && to > starts[line+1]-len(sep) {
				spans = append(spans, span{from, to})
			}
			off = from + 1
		}
	}
	if len(spans) == 0 {
		return
	}
	// Mask, line by line, the bytes the spans cover (not the separators).
	cover := make([][]bool, len(lines))
	for _, sp := range spans {
		for p := sp.from; p < sp.to; p++ {
			li := lineOf(starts, p)
			if li < 0 || p-starts[li] >= kept[li] {
				continue
			}
			if cover[li] == nil {
				cover[li] = make([]bool, len(lines[li]))
			}
			cover[li][skips[li]+p-starts[li]] = true
		}
	}
	for i, c := range cover {
		if c == nil {
			continue
		}
		var b strings.Builder
		in := false
		for k := 0; k < len(lines[i]); k++ {
			if c[k] {
				if !in {
					b.WriteString(Mask)
				}
				in = true
				continue
			}
			in = false
			b.WriteByte(lines[i][k])
		}
		lines[i] = b.String()
	}
}

// lineOf is the index of the line holding joined offset p.
func lineOf(starts []int, p int) int {
	return sort.Search(len(starts), func(i int) bool { return starts[i] > p }) - 1
}

// cutForm is the length of the longest end of s that is the beginning of
// a form, but not a whole one: what a line break may have cut.
func (r *Redactor) cutForm(s string) int {
	if s == "" {
		return 0
	}
	r.mu.RLock()
	defer r.mu.RUnlock()
	last, n := s[len(s)-1], 0
	for _, f := range r.forms {
		for i := n; i < len(f)-1 && i < len(s); i++ {
			if f[i] == last && strings.HasSuffix(s, f[:i+1]) {
				n = i + 1
			}
		}
	}
	return n
}
