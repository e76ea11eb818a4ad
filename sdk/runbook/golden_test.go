package runbook

import (
	"flag"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
)

var update = flag.Bool("update", false, "rewrite the golden files of testdata/runbooks/invalid")

const corpus = "../../testdata/runbooks"

// TestInvalidCorpus loads each runbook of the invalid corpus (one mistake
// class per file) and compares every diagnostic with its .golden file.
func TestInvalidCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpus, "invalid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) < 40 {
		t.Fatalf("the invalid corpus has %d files, want at least 40", len(files))
	}
	for _, path := range files {
		name := filepath.Base(path)
		t.Run(strings.TrimSuffix(name, ".yaml"), func(t *testing.T) {
			t.Parallel()
			src, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			opts, _ := testOptions()
			rb, ds := Parse(name, src, opts)
			got := ds.Error() + "\n"
			golden := strings.TrimSuffix(path, ".yaml") + ".golden"
			if *update {
				if err := os.WriteFile(golden, []byte(got), 0o644); err != nil {
					t.Fatal(err)
				}
			}
			want, err := os.ReadFile(golden)
			if err != nil {
				t.Fatalf("%v (run go test -update to create it)", err)
			}
			if diff := cmp.Diff(string(want), got); diff != "" {
				t.Errorf("diagnostics differ from %s (-want +got):\n%s", golden, diff)
			}
			if len(ds) == 0 {
				t.Fatal("no diagnostics for a runbook of the invalid corpus")
			}
			// A file whose only problems are warnings still loads.
			if ds.HasErrors() != (rb == nil) {
				t.Errorf("HasErrors = %v but runbook returned = %v", ds.HasErrors(), rb != nil)
			}
			for _, d := range ds {
				if d.Pos.File != name || d.Pos.Line < 1 || d.Pos.Col < 1 {
					t.Errorf("diagnostic without a full position: %v", d)
				}
			}
		})
	}
}

// TestValidCorpus loads every valid example without any diagnostic.
func TestValidCorpus(t *testing.T) {
	files, err := filepath.Glob(filepath.Join(corpus, "valid", "*.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if len(files) == 0 {
		t.Fatal("no valid examples")
	}
	for _, path := range files {
		t.Run(filepath.Base(path), func(t *testing.T) {
			t.Parallel()
			opts, _ := testOptions()
			rb, ds := Load(path, opts)
			if len(ds) > 0 {
				t.Fatalf("diagnostics:\n%v", ds)
			}
			if rb == nil {
				t.Fatal("no runbook")
			}
		})
	}
}
