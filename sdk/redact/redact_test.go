package redact_test

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/url"
	"strings"
	"testing"

	"github.com/runbookhq/runbook/sdk/redact"
)

// replaceAll is what a redactor does with Forms.
func replaceAll(text, secret string) string {
	for _, f := range redact.Forms(secret) {
		text = strings.ReplaceAll(text, f, redact.Mask)
	}
	return text
}

func TestEncodedSecretsAreRedacted(t *testing.T) {
	t.Parallel()
	secrets := []string{
		`tok-"<&>\-A1b2C3d4E5f6`,
		"pässwörd-Zz9!x/7",
		"https://hooks.example.com/services/T000/B000/XYZsecret?x=1&y=2",
		"sk_live_51HxQeRsT0123456789uvWX",
		"line1\nline2\ttab",
	}
	for _, s := range secrets {
		j, _ := json.Marshal(map[string]string{"token": s})
		jj, _ := json.Marshal(string(j))
		texts := map[string]string{
			"raw":          "value " + s + " end",
			"json":         string(j),
			"json in json": string(jj),
			"%q":           fmt.Sprintf("bad token %q", s),
			"query":        "https://x.example/?t=" + url.QueryEscape(s),
			"base64":       "Authorization: Bearer " + base64.StdEncoding.EncodeToString([]byte(s)),
			"base64url":    base64.RawURLEncoding.EncodeToString([]byte(s)),
		}
		for pad := range 3 {
			blob := strings.Repeat("u", 5+pad) + ":" + s + ":tail"
			texts[fmt.Sprintf("embedded base64 (offset %d)", pad)] = "Basic " + base64.StdEncoding.EncodeToString([]byte(blob))
		}
		for name, text := range texts {
			got := replaceAll(text, s)
			if !strings.Contains(got, redact.Mask) {
				t.Errorf("%q, %s: nothing redacted in %q", s, name, text)
			}
			if strings.Contains(got, s) {
				t.Errorf("%q, %s: raw value left in %q", s, name, got)
			}
			if name == "base64" || strings.HasPrefix(name, "embedded") {
				// Decoding what is left must not give the secret back.
				for _, field := range strings.Fields(got) {
					if b, err := base64.StdEncoding.DecodeString(field); err == nil && strings.Contains(string(b), s) {
						t.Errorf("%q, %s: %q still decodes to the secret", s, name, field)
					}
				}
			}
		}
	}
}

func TestForms(t *testing.T) {
	t.Parallel()
	if redact.Forms("") != nil {
		t.Error("an empty secret has forms")
	}
	f := redact.Forms("a")
	if len(f) != 1 || f[0] != "a" {
		t.Errorf("a one-letter secret: %q, want only itself (short encodings would hit unrelated text)", f)
	}
	forms := redact.Forms(`tok-"<&>\-A1b2C3d4E5f6`)
	seen := map[string]bool{}
	for i, v := range forms {
		if v == "" || v == redact.Mask || seen[v] {
			t.Errorf("form %d: %q (empty, the replacement, or a duplicate)", i, v)
		}
		seen[v] = true
		if i > 0 && len(forms[i-1]) < len(v) {
			t.Errorf("forms not longest first: %q before %q", forms[i-1], v)
		}
	}
	for _, want := range []string{`tok-"<&>\-A1b2C3d4E5f6`, `tok-\"\u003c\u0026\u003e\\-A1b2C3d4E5f6`, `tok-\"<&>\\-A1b2C3d4E5f6`, "tok-&#34;&lt;&amp;&gt;\\-A1b2C3d4E5f6"} {
		if !seen[want] {
			t.Errorf("missing form %q in %q", want, forms)
		}
	}
}
