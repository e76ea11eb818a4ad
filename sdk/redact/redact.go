// Package redact knows the forms a secret value takes once it has been
// encoded on its way into output: a runbook can build a JSON body with
// toJSON(inputs.token) or a header with toBase64(...), a plugin can quote a
// value with %q in an error, a URL can carry it query-escaped. Redacting
// only the raw value would let those through, so the engine's and the
// plugin host's redactors replace every form Forms returns.
package redact

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"html"
	"net/url"
	"strconv"
	"strings"
)

// Replacement is what a redacted value is replaced with.
const Replacement = "***"

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
//   - JSON string escaping, with and without HTML escaping, and twice
//     (JSON in a JSON string);
//   - Go quoting (%q), HTML escaping, URL query and path escaping;
//   - base64 in the standard and URL alphabets, padded and raw, of s alone
//     and, for long enough secrets, the part that is the same wherever s
//     sits inside a longer base64-encoded text ("user:" + token).
//
// An empty s has no forms.
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
		if v != "" && v != Replacement && !seen[v] {
			seen[v] = true
			out = append(out, v)
		}
	}
	add(s)
	j := jsonInner(s, true)
	add(j)
	add(jsonInner(s, false))
	add(jsonInner(j, true))
	add(jsonInner(jsonInner(s, false), false))
	add(quotedInner(s))
	add(html.EscapeString(s))
	add(url.QueryEscape(s))
	add(url.PathEscape(s))
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.URLEncoding, base64.RawStdEncoding, base64.RawURLEncoding} {
		add(enc.EncodeToString([]byte(s)))
	}
	for _, enc := range []*base64.Encoding{base64.RawStdEncoding, base64.RawURLEncoding} {
		for _, v := range embeddedBase64(enc, s) {
			add(v)
		}
	}
	// Longest first; ties in a stable order.
	sortLongestFirst(out)
	return out
}

// jsonInner is s as a JSON string, without the surrounding quotes.
func jsonInner(s string, escapeHTML bool) string {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(escapeHTML)
	if err := enc.Encode(s); err != nil {
		return ""
	}
	v := strings.TrimSuffix(b.String(), "\n")
	return v[1 : len(v)-1]
}

func quotedInner(s string) string {
	q := strconv.Quote(s)
	return q[1 : len(q)-1]
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
	for i := 1; i < len(v); i++ {
		for k := i; k > 0 && (len(v[k]) > len(v[k-1]) || (len(v[k]) == len(v[k-1]) && v[k] < v[k-1])); k-- {
			v[k], v[k-1] = v[k-1], v[k]
		}
	}
}
