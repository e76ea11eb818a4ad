package redact_test

import (
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/runbookhq/runbook/sdk/redact"
)

// secrets of the adversarial cases: ASCII with JSON and URL specials, one
// outside ASCII (and outside the BMP), a URL, a long key.
var secrets = []string{
	`tok-"<&>\-A1b2C3d4E5f6`,
	"pässwörd-€𝄞-Zz9",
	"https://hooks.example.com/services/T000/B000/XYZ?x=1&y=2",
	strings.Repeat("k3y-material-", 12),
}

// wrap cuts s into lines of n characters, joined by sep.
func wrap(s string, n int, sep string) string {
	var lines []string
	for len(s) > n {
		lines = append(lines, s[:n])
		s = s[n:]
	}
	return strings.Join(append(lines, s), sep)
}

// jsonASCII is s as JSON with every character outside ASCII a \u escape,
// as Python's json.dumps writes it.
func jsonASCII(s string, upper bool) string {
	q := strconv.QuoteToASCII(s) // \u00e4, and \U0001d11e beyond the BMP
	q = regexp.MustCompile(`\\U([0-9a-f]{8})`).ReplaceAllStringFunc(q, func(m string) string {
		r, _ := strconv.ParseUint(m[2:], 16, 32)
		r -= 0x10000
		return fmt.Sprintf(`\u%04x\u%04x`, 0xd800+(r>>10), 0xdc00+(r&0x3ff))
	})
	if upper {
		q = regexp.MustCompile(`\\u[0-9a-f]{4}`).ReplaceAllStringFunc(q, func(m string) string { return `\u` + strings.ToUpper(m[2:]) })
	}
	return q[1 : len(q)-1]
}

func percentLower(s string) string {
	return regexp.MustCompile(`%[0-9A-F]{2}`).ReplaceAllStringFunc(s, strings.ToLower)
}

// encodings are the ways the tests write a secret into text.
var encodings = map[string]func(s string) string{
	"raw":                  func(s string) string { return s },
	"json \\u (lower)":     func(s string) string { return jsonASCII(s, false) },
	"json \\u (upper)":     func(s string) string { return jsonASCII(s, true) },
	"%q":                   func(s string) string { return fmt.Sprintf("%q", s) },
	"%+q (ASCII)":          func(s string) string { return fmt.Sprintf("%+q", s) },
	"query, upper":         url.QueryEscape,
	"query, lower":         func(s string) string { return percentLower(url.QueryEscape(s)) },
	"path, lower":          func(s string) string { return percentLower(url.PathEscape(s)) },
	"hex":                  func(s string) string { return hex.EncodeToString([]byte(s)) },
	"HEX":                  func(s string) string { return strings.ToUpper(hex.EncodeToString([]byte(s))) },
	"base64":               func(s string) string { return base64.StdEncoding.EncodeToString([]byte(s)) },
	"base64, PEM (64, LF)": func(s string) string { return wrap(base64.StdEncoding.EncodeToString([]byte(s)), 64, "\n") },
	"base64, MIME (76, CRLF)": func(s string) string {
		return wrap(base64.StdEncoding.EncodeToString([]byte(s)), 76, "\r\n")
	},
	"base64 of user:secret, wrapped at 20": func(s string) string {
		return wrap(base64.StdEncoding.EncodeToString([]byte("admin:"+s)), 20, "\n")
	},
	"hex, wrapped at 16, indented": func(s string) string { return wrap(hex.EncodeToString([]byte(s)), 16, "\n    ") },
	"cut in two lines":             func(s string) string { return s[:len(s)/2] + "\n" + s[len(s)/2:] },
}

// leaks reports what of s can be read back from text: s itself, or a
// decoding of the text's hex or base64 runs (line breaks and indentation
// removed) that contains s or a third of it.
func leaks(text, s string) []string {
	var out []string
	if strings.Contains(text, s) {
		out = append(out, "raw")
	}
	flat := regexp.MustCompile(`[\r\n]+[ \t]*`).ReplaceAllString(text, "")
	third := s[:len(s)/3]
	for _, run := range regexp.MustCompile(`[A-Za-z0-9+/=_-]{8,}`).FindAllString(flat, -1) {
		for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding} {
			for off := 0; off < 4 && off < len(run); off++ {
				b, _ := enc.DecodeString(strings.TrimRight(run[off:], "=")[:len(strings.TrimRight(run[off:], "="))/4*4])
				if strings.Contains(string(b), third) {
					out = append(out, "base64 "+run)
				}
			}
		}
		if b, err := hex.DecodeString(run[:len(run)/2*2]); err == nil && strings.Contains(string(b), third) {
			out = append(out, "hex "+run)
		}
	}
	return out
}

func TestEveryEncodingIsRedacted(t *testing.T) {
	t.Parallel()
	r := redact.New(secrets...)
	for _, s := range secrets {
		for name, enc := range encodings {
			text := "before " + enc(s) + " after"
			got := r.String(text)
			if l := leaks(got, s); len(l) > 0 {
				t.Errorf("%.12q..., %s: %q leaks %v", s, name, got, l)
			}
			if !strings.Contains(got, redact.Mask) || !strings.HasPrefix(got, "before ") || !strings.HasSuffix(got, " after") {
				t.Errorf("%.12q..., %s: %q (want the value masked and the rest kept)", s, name, got)
			}
		}
	}
}

// Secrets of every type: numbers as text when long enough and as whole
// values always; short strings and booleans only where they are whole.
func TestValuesOfEveryType(t *testing.T) {
	t.Parallel()
	r := redact.New()
	r.AddValue(map[string]any{"pin": 48213579.0, "ratio": 0.125, "code": "ab", "on": true, "list": []any{"list-secret-1", 7.0}})
	if got, want := r.String("pin 48213579, ratio 0.125, code ab, 7 items, on true, list-secret-1"), "pin ***, ratio ***, code ab, 7 items, on true, ***"; got != want {
		t.Errorf("text:\n got %q\nwant %q", got, want)
	}
	in := map[string]any{"n": 48213579.0, "m": 7.0, "s": "ab", "b": true, "keep": 8.0, "t": "about", "l": []any{7, "ab"}}
	want := map[string]any{"n": "***", "m": "***", "s": "***", "b": true, "keep": 8.0, "t": "about", "l": []any{"***", "***"}}
	if diff := cmp.Diff(want, r.Value(in)); diff != "" {
		t.Errorf("values (-want +got):\n%s", diff)
	}
	if in["n"] != 48213579.0 {
		t.Error("Value changed its argument")
	}
}

// Cut redacts first: a secret the cut would split is masked whole.
func TestCutRedactsBeforeCutting(t *testing.T) {
	t.Parallel()
	s := secrets[3]
	r := redact.New(s)
	for at := 0; at < len(s)+5; at += 7 {
		text := strings.Repeat("x", 300-at) + s + " tail"
		got := r.Cut(text, 300)
		if strings.Contains(got, s[:min(len(s), 8)]) || len(got) > 303 {
			t.Errorf("cut at %d: %q", at, got)
		}
	}
}

// Lines: a secret cut by a line break is masked in both lines; lines that
// cannot end inside a secret go out at once; a held line goes out after
// the delay.
func TestLinesMaskSecretsCutByLineBreaks(t *testing.T) {
	t.Parallel()
	r := redact.New(secrets...)
	var mu sync.Mutex
	var out []string
	l := redact.NewLines(r, time.Hour, func(line string, n int) {
		mu.Lock()
		defer mu.Unlock()
		out = append(out, fmt.Sprintf("%d:%s", n, line))
	})
	pem := wrap(base64.StdEncoding.EncodeToString([]byte("header "+secrets[3]+" trailer")), 64, "\n")
	input := append([]string{"plain line one", "key " + secrets[0][:9]}, secrets[0][9:]+" end")
	input = append(input, strings.Split(pem, "\n")...)
	input = append(input, "plain line two")
	for i, line := range input {
		l.Push(line, i)
	}
	l.Flush()
	mu.Lock()
	defer mu.Unlock()
	if len(out) != len(input) {
		t.Fatalf("%d lines out for %d in: %q", len(out), len(input), out)
	}
	for i, o := range out {
		if !strings.HasPrefix(o, fmt.Sprintf("%d:", i)) {
			t.Errorf("line %d out of order: %q", i, o)
		}
	}
	all := strings.Join(out, "\n")
	for _, s := range secrets[:1] {
		if strings.Contains(all, s[:5]) || strings.Contains(all, s[9:]) {
			t.Errorf("a piece of %q is left: %q", s, out)
		}
	}
	joined := regexp.MustCompile(`\n\d+:`).ReplaceAllString(all, "")
	if l := leaks(joined, secrets[3]); len(l) > 0 {
		t.Errorf("the wrapped base64 leaks %v:\n%s", l, all)
	}
	if out[0] != "0:plain line one" || out[len(out)-1] != fmt.Sprintf("%d:plain line two", len(input)-1) {
		t.Errorf("plain lines changed: %q", out)
	}

	// A line ending with the start of a secret waits at most the delay.
	done := make(chan string, 1)
	l2 := redact.NewLines(r, 20*time.Millisecond, func(line string, _ struct{}) { done <- line })
	l2.Push("begins "+secrets[0][:4], struct{}{})
	select {
	case line := <-done:
		if line != "begins "+secrets[0][:4] {
			t.Errorf("released %q", line)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("a held line was never released")
	}
}

func FuzzRedactor(f *testing.F) {
	for _, s := range secrets {
		for _, enc := range encodings {
			f.Add(s, "x "+enc(s)+" y", 40)
		}
	}
	f.Fuzz(func(t *testing.T, secret, text string, width int) {
		if len(secret) < redact.MinLength || len(secret) > 200 || strings.Contains(secret, redact.Mask) {
			return
		}
		r := redact.New(secret)
		// The raw value never survives String, whatever surrounds it.
		in := text + secret + text
		if got := r.String(in); strings.Contains(got, secret) {
			t.Fatalf("String(%q) = %q keeps the secret", in, got)
		}
		// Nor a line break inside it, through Lines.
		if width <= 0 || width >= len(secret) {
			width = len(secret) / 2
		}
		if width == 0 {
			return
		}
		var out []string
		l := redact.NewLines(r, time.Hour, func(line string, _ int) { out = append(out, line) })
		l.Push(text+secret[:width], 0)
		l.Push(secret[width:]+text, 1)
		l.Flush()
		if len(out) != 2 {
			t.Fatalf("%d lines out", len(out))
		}
		if strings.Contains(out[0]+out[1], secret) || strings.HasSuffix(out[0], secret[:width]) && strings.HasPrefix(out[1], secret[width:]) {
			t.Fatalf("split secret left in %q", out)
		}
	})
}
