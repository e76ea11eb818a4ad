// Package docgen keeps generated blocks of the documentation in step with
// the code: a block sits between
//
//	<!-- BEGIN GENERATED NAME: ... -->
//	<!-- END GENERATED NAME -->
//
// and the test that generates it fails when the file differs, or rewrites
// the block when run with -update.
package docgen

import (
	"bytes"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
	"testing"
)

var update = flag.Bool("update", false, "rewrite the generated blocks of the documentation")

// Replace returns doc with the block name holding content.
func Replace(doc []byte, name, content string) ([]byte, error) {
	re := regexp.MustCompile(`(?s)(<!-- BEGIN GENERATED ` + regexp.QuoteMeta(name) + `\b[^>]*-->\n).*?(<!-- END GENERATED ` + regexp.QuoteMeta(name) + ` -->)`)
	loc := re.FindSubmatchIndex(doc)
	if loc == nil {
		return nil, fmt.Errorf("no block %q (<!-- BEGIN GENERATED %s ... --> ... <!-- END GENERATED %s -->)", name, name, name)
	}
	var out bytes.Buffer
	out.Write(doc[:loc[3]])
	out.WriteString(content)
	if len(content) > 0 && content[len(content)-1] != '\n' {
		out.WriteByte('\n')
	}
	out.Write(doc[loc[4]:])
	return out.Bytes(), nil
}

// Check fails t when the block name of the file at rel (from the
// repository root) does not hold content; with -update it rewrites it.
func Check(t *testing.T, rel, name, content string) {
	t.Helper()
	path := filepath.Join(root(), rel)
	doc, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	want, err := Replace(doc, name, content)
	if err != nil {
		t.Fatalf("%s: %v", rel, err)
	}
	if bytes.Equal(doc, want) {
		return
	}
	if *update {
		if err := os.WriteFile(path, want, 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	t.Errorf("%s: the generated block %s is stale; run the test with -update to rewrite it. It should read:\n%s", rel, name, content)
}

func root() string {
	_, file, _, _ := runtime.Caller(0)
	return filepath.Clean(filepath.Join(filepath.Dir(file), "..", ".."))
}
