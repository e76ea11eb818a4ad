package docgen

import "testing"

func TestReplace(t *testing.T) {
	doc := "intro\n<!-- BEGIN GENERATED x: by a test -->\nold\nlines\n<!-- END GENERATED x -->\nafter\n"
	got, err := Replace([]byte(doc), "x", "new")
	if err != nil {
		t.Fatal(err)
	}
	if want := "intro\n<!-- BEGIN GENERATED x: by a test -->\nnew\n<!-- END GENERATED x -->\nafter\n"; string(got) != want {
		t.Errorf("got %q", got)
	}
	if _, err := Replace([]byte(doc), "y", "new"); err == nil {
		t.Error("a missing block is not an error")
	}
}
