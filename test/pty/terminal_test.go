package pty_test

import (
	"bytes"
	"context"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"
)

// TestDataCannotForgeTheTerminal runs testdata/adversarial/terminal in a
// terminal, answering its approval at the prompt: what the strings hold
// (clear the screen, set the title, move the cursor, overwrite the line,
// start lines of their own, reorder text) must reach the terminal escaped,
// in the live view, the plugin log lines drawn above it, the approval's
// question and the summary; the prompt must be asked once, its message
// lines marked as the message's.
func TestDataCannotForgeTheTerminal(t *testing.T) {
	t.Parallel()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("..", "..", "testdata", "adversarial", "terminal", "hostile.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hostile.yaml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	given := "arg \x1b[2J\x1b]0;t\a\r\u202e\u009b31m\x7f\nforged line"
	out := runApproving(ctx, t, dir, env("RUNBOOK_PLUGIN_PATH="+binDir), "run", "hostile.yaml", "--log-level", "trace", "--var", "given="+given)
	// What the strings hold never reaches the terminal as it is (the live
	// view's own sequences are cursor moves, erases and colours).
	for _, raw := range []string{"\x1b[2J", "\x1b[H", "\x1b]0;", "\x1b[8m", "\x1b[2K", "\a", "\x00", "\x7f", "\u009b", "\u202e", "\u200b", "\ufeff", "\b"} {
		if bytes.Contains(out, []byte(raw)) {
			i := bytes.Index(out, []byte(raw))
			t.Errorf("%q reached the terminal: ...%q...", raw, out[max(0, i-60):min(len(out), i+20)])
		}
	}
	screen := screenOf(t, out) // fails on a control sequence the emulator does not know
	all := screen.All()
	transcript := strings.Join(all, "\n")
	// The prompt was asked once; every line of the message is marked as
	// the message's, the forged question among them.
	prompts := 0
	for _, l := range all {
		// The whole question: the strings hold its beginning, which a long
		// log line wrapped by the terminal may bring to a row's start.
		if regexp.MustCompile(`^  Approve\? Type 'yes' to continue, 'no' to refuse`).MatchString(l) {
			prompts++
		}
	}
	if prompts != 1 {
		t.Errorf("%d prompts on the screen, want 1:\n%s", prompts, transcript)
	}
	for _, want := range []string{
		`    │ up \x1b[1A\x1b[2K  Approve? Type 'yes' to continue`,
		`    │ 2026-01-01T00:00:00Z run r1 finished: succeeded in 1s`, // its own line, marked
		`    │ overwrite\r✓ confirm approved by admin`,
		`    │ arg \x1b[2J\x1b]0;t\x07\r\u202e\u009b31m\x7f`,
		`    │ forged line`,
		`clear \x1b[2J\x1b[H | title \x1b]0;pwned\x07`,                      // a plugin's log line
		`given = arg \x1b[2J\x1b]0;t\x07\r\u202e\u009b31m\x7f\nforged line`, // the summary
	} {
		if !strings.Contains(transcript, want) {
			t.Errorf("not on the screen: %s", want)
		}
	}
	for _, l := range all {
		if strings.HasPrefix(l, "2026-01-01T00:00:00Z") || strings.HasPrefix(l, "forged line") || strings.HasPrefix(l, "✓ confirm approved by admin") {
			t.Errorf("a line starts as data made it: %q", l)
		}
	}
	if t.Failed() {
		t.Logf("transcript:\n%s", transcript)
	}
}
