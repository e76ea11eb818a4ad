//go:build unix

package safefile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRefusesWhatIsNotARegularFile(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	link := filepath.Join(dir, "zero")
	if err := os.Symlink("/dev/zero", link); err != nil {
		t.Fatal(err)
	}
	fifoLink := filepath.Join(dir, "fifo-link")
	if err := os.Symlink(fifo, fifoLink); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct{ path, kind string }{
		{fifo, "named pipe"},
		{fifoLink, "named pipe"},
		{"/dev/zero", "character device"},
		{link, "character device"},
		{dir, "directory"},
	} {
		done := make(chan error, 1)
		go func() {
			_, err := ReadFile(c.path, 1<<20)
			done <- err
		}()
		select {
		case err := <-done:
			var nr *NotRegularError
			if !errors.As(err, &nr) || !strings.Contains(err.Error(), c.kind) || !strings.Contains(err.Error(), c.path) {
				t.Errorf("%s: %v, want a refusal naming %q", c.path, err, c.kind)
			}
			if !IsRefused(err) {
				t.Errorf("%s: IsRefused(%v) = false", c.path, err)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: ReadFile blocked", c.path)
		}
	}
}

func TestCapsTheSize(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte(strings.Repeat("x", 2048)), 0o600); err != nil {
		t.Fatal(err)
	}
	if b, err := ReadFile(p, 2048); err != nil || len(b) != 2048 {
		t.Fatalf("at the cap: %d bytes, %v", len(b), err)
	}
	_, err := ReadFile(p, 2047)
	var tl *TooLargeError
	if !errors.As(err, &tl) || !strings.Contains(err.Error(), "2047 bytes") {
		t.Fatalf("over the cap: %v", err)
	}
	if _, err := ReadFile(p, 1024); err == nil || !strings.Contains(err.Error(), "1 KiB") {
		t.Fatalf("over the cap: %v", err)
	}
	// A file that reports no size (as /proc's do) is still cut at the cap.
	if _, err := ReadFile("/proc/self/environ", 1); err == nil {
		t.Fatal("/proc/self/environ read past a 1-byte cap")
	}
}

func TestOpenForWriting(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	if err := os.WriteFile(p, []byte("a\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	f, err := Open(p, os.O_RDWR)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("b"), 0); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if b, _ := os.ReadFile(p); string(b) != "b\n" {
		t.Fatalf("content %q", b)
	}
	if _, err := Open(filepath.Join(t.TempDir(), "missing"), os.O_RDONLY); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}
