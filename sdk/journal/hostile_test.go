//go:build linux

package journal

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/runbookhq/runbook/sdk/internal/procfs"
	"github.com/runbookhq/runbook/sdk/safefile"
)

// A state directory others can write, or that another user owns, is
// refused with the command that fixes it, before anything is read or
// written.
func TestUnsafeStateDirRefused(t *testing.T) {
	ctx := context.Background()
	dir := filepath.Join(t.TempDir(), "state")
	if err := os.MkdirAll(filepath.Join(dir, "runs"), 0o700); err != nil {
		t.Fatal(err)
	}
	s := NewFileStore(dir)
	for _, c := range []struct {
		path string
		mode os.FileMode
	}{{dir, 0o777}, {dir, 0o720}, {filepath.Join(dir, "runs"), 0o702}} {
		if err := os.Chmod(c.path, c.mode); err != nil {
			t.Fatal(err)
		}
		for what, call := range map[string]func() error{
			"Lock":       func() error { _, err := s.Lock(ctx, CurrentHolder("r", "")); return err },
			"Create":     func() error { _, err := s.Create(ctx, "r"); return err },
			"Open":       func() error { _, err := s.Open(ctx, "r"); return err },
			"List":       func() error { _, err := s.List(ctx); return err },
			"LockHolder": func() error { _, err := s.LockHolder(ctx); return err },
			"Unlock":     func() error { _, err := s.Unlock(ctx, true); return err },
		} {
			err := call()
			var ud *UnsafeDirError
			if !errors.As(err, &ud) || !strings.Contains(err.Error(), "chmod go-w "+c.path) {
				t.Errorf("%s with %s mode %o: %v, want a refusal naming chmod go-w", what, c.path, c.mode, err)
			}
		}
		if err := os.Chmod(c.path, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if os.Getuid() == 0 {
		if err := os.Chown(dir, 4242, 4242); err != nil {
			t.Fatal(err)
		}
		_, err := s.Lock(ctx, CurrentHolder("r", ""))
		if err == nil || !strings.Contains(err.Error(), "belongs to another user (uid 4242)") {
			t.Errorf("directory of another user: %v", err)
		}
	}
	if entries, _ := os.ReadDir(filepath.Join(dir, "runs")); len(entries) != 0 {
		t.Errorf("something was written: %v", entries)
	}
}

// A journal or lock file that is a FIFO, a device or too large is refused
// at once (a FIFO would block the open, /dev/zero never ends).
func TestHostileStateFilesRefused(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	if err := s.ensureDirs(); err != nil {
		t.Fatal(err)
	}
	if err := syscall.Mkfifo(s.Path("fifo"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/dev/zero", s.Path("zero")); err != nil {
		t.Fatal(err)
	}
	big, err := os.Create(s.Path("big"))
	if err != nil {
		t.Fatal(err)
	}
	if err := big.Truncate(MaxJournalBytes + 1); err != nil { // sparse
		t.Fatal(err)
	}
	big.Close()
	done := make(chan struct{})
	go func() {
		defer close(done)
		for id, want := range map[string]string{"fifo": "named pipe", "zero": "character device", "big": "larger than 128 MiB"} {
			if _, err := s.Open(ctx, id); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Open %s: %v, want %q", id, err, want)
			}
			if _, err := s.Reopen(ctx, id); err == nil || !strings.Contains(err.Error(), want) {
				t.Errorf("Reopen %s: %v, want %q", id, err, want)
			}
		}
		runs, err := s.List(ctx)
		if err != nil || len(runs) != 3 {
			t.Errorf("List: %v %v", runs, err)
		}
		for _, r := range runs {
			if r.Status != "unreadable" {
				t.Errorf("run %s listed as %s", r.RunID, r.Status)
			}
		}
		if err := syscall.Mkfifo(s.lockPath(), 0o600); err != nil {
			t.Error(err)
			return
		}
		if _, err := s.LockHolder(ctx); !safefile.IsRefused(err) {
			t.Errorf("LockHolder of a FIFO: %v", err)
		}
		if _, err := s.Lock(ctx, CurrentHolder("r", "")); err == nil || !strings.Contains(err.Error(), "named pipe") {
			t.Errorf("Lock over a FIFO: %v", err)
		}
		os.Remove(s.lockPath())
		if err := os.WriteFile(s.lockPath(), make([]byte, maxLockBytes+1), 0o600); err != nil {
			t.Error(err)
			return
		}
		if _, err := s.LockHolder(ctx); err == nil || !strings.Contains(err.Error(), "larger than 64 KiB") {
			t.Errorf("LockHolder of a huge lock: %v", err)
		}
	}()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		t.Fatal("reading a hostile state file blocked")
	}
}

// deadPID returns the pid of a process that has exited and been reaped.
func deadPID(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Skip("cannot run `true`:", err)
	}
	return cmd.Process.Pid
}

func TestHolderLiveness(t *testing.T) {
	self := CurrentHolder("r", "")
	if self.BootID == "" || self.ProcStart == 0 {
		t.Fatalf("holder without boot id or start time: %+v", self)
	}
	if self.Alive() != AliveYes {
		t.Fatal("this process is not alive")
	}
	if dead, _ := self.ProvablyDead(); dead {
		t.Fatal("this process is provably dead")
	}
	gone := self
	gone.PID = deadPID(t)
	if dead, why := gone.ProvablyDead(); !dead || !strings.Contains(why, "no longer exists") {
		t.Errorf("exited pid: %v %q", dead, why)
	}
	// The pid now belongs to another process (a restarted container):
	// pid 1 exists, with another start time.
	reused := self
	reused.PID = 1
	if dead, why := reused.ProvablyDead(); !dead || !strings.Contains(why, "another process") {
		t.Errorf("reused pid: %v %q", dead, why)
	}
	// A lock written before boot ids were recorded: stale, not provable.
	old := gone
	old.BootID, old.ProcStart, old.MachineID = "", 0, ""
	if dead, _ := old.ProvablyDead(); dead || old.Alive() != AliveNo {
		t.Errorf("old lock: provable %v, alive %v", dead, old.Alive())
	}
	// Another boot of the same machine: it restarted.
	rebooted := self
	rebooted.BootID = "00000000-0000-0000-0000-000000000000"
	if procfs.MachineID() != "" {
		if dead, why := rebooted.ProvablyDead(); !dead || !strings.Contains(why, "restarted") {
			t.Errorf("rebooted: %v %q", dead, why)
		}
	}
	// Another boot and no machine id to tell a restart from another
	// machine of the same name: unknown.
	other := rebooted
	other.MachineID = ""
	if dead, _ := other.ProvablyDead(); dead || other.Alive() != AliveUnknown {
		t.Errorf("other boot, no machine id: alive %v", other.Alive())
	}
	remote := self
	remote.Host = "another-host.invalid"
	remote.PID = gone.PID
	if dead, _ := remote.ProvablyDead(); dead || remote.Alive() != AliveUnknown {
		t.Error("a holder on another host is judged")
	}
}

func TestTakeOverOnlyAProvablyDeadHolder(t *testing.T) {
	ctx := context.Background()
	s := NewFileStore(t.TempDir())
	// A live holder (this process) is never taken over.
	live, err := s.Lock(ctx, CurrentHolder("live", ""))
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeOver(ctx, live.Holder(), CurrentHolder("thief", "")); !errors.Is(err, ErrLocked) {
		t.Fatalf("take-over of a live holder: %v", err)
	}
	if err := live.Release(); err != nil {
		t.Fatal(err)
	}
	// A holder on another host neither.
	remote := CurrentHolder("remote", "")
	remote.Host = "another-host.invalid"
	lr, err := s.Lock(ctx, remote)
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := s.TakeOver(ctx, lr.Holder(), CurrentHolder("thief", "")); !errors.Is(err, ErrLocked) {
		t.Fatalf("take-over of a remote holder: %v", err)
	}
	if _, err := s.Unlock(ctx, true); err != nil {
		t.Fatal(err)
	}
	// A dead holder on this host, this boot: exactly one of many
	// contenders takes it over.
	dead := CurrentHolder("dead", "")
	dead.PID = deadPID(t)
	ld, err := s.Lock(ctx, dead)
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	var won []Lock
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			l, why, err := s.TakeOver(ctx, ld.Holder(), CurrentHolder("heir", ""))
			if err == nil {
				if !strings.Contains(why, "no longer exists") {
					t.Errorf("why = %q", why)
				}
				mu.Lock()
				won = append(won, l)
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if len(won) != 1 {
		t.Fatalf("%d contenders took the lock over", len(won))
	}
	if cur, _ := s.LockHolder(ctx); cur == nil || cur.Token != won[0].Holder().Token {
		t.Fatalf("lock held by %v", cur)
	}
	if err := won[0].Release(); err != nil {
		t.Fatal(err)
	}
}

// A run whose lock was removed or replaced stops writing at the next
// barrier: nothing it journals after that can be acted on.
func TestLostLockStopsTheWriter(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s := NewFileStore(dir)
	l, err := s.Lock(ctx, CurrentHolder("r1", ""))
	if err != nil {
		t.Fatal(err)
	}
	w, err := s.Create(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	for i, typ := range []string{RunStarted, StepStarted, AttemptStarted} {
		if err := w.Append(rec(int64(i+1), typ)); err != nil {
			t.Fatal(err)
		}
	}
	// Another process (another store) forces the lock away and takes it.
	other := NewFileStore(dir)
	if _, err := other.Unlock(ctx, true); err != nil {
		t.Fatal(err)
	}
	theirs, err := other.Lock(ctx, CurrentHolder("r2", "run other"))
	if err != nil {
		t.Fatal(err)
	}
	// A record that is not a barrier is written; the next barrier stops.
	if err := w.Append(rec(4, Progress)); err != nil {
		t.Fatal(err)
	}
	err = w.Append(rec(5, AttemptStarted))
	var lost *LockLostError
	if !errors.As(err, &lost) || !strings.Contains(err.Error(), "r2") {
		t.Fatalf("barrier after the lock was lost: %v", err)
	}
	if err := w.Append(rec(5, StepSucceeded)); err == nil {
		t.Fatal("the writer went on after losing the lock")
	}
	w.Close()
	if j, err := s.Open(ctx, "r1"); err != nil || j.LastSeq() != 4 {
		t.Fatalf("journal: %v records, %v", j, err)
	}
	if err := l.Release(); err == nil {
		t.Fatal("releasing a lost lock succeeded")
	}
	if cur, _ := s.LockHolder(ctx); cur == nil || cur.RunID != "r2" {
		t.Fatalf("the new holder's lock was removed: %v", cur)
	}
	theirs.Release()
}

// diskFullEnv runs TestDiskFullEndsTheJournal's inner part, in a mount
// namespace with a small tmpfs at the directory it names.
const diskFullEnv = "RUNBOOK_JOURNAL_DISKFULL_DIR"

// When the disk fills up, the record that could not be written is removed,
// and the run_interrupted record saying why still fits (the reserve is
// freed for it), numbered after the last record: the journal stays valid
// and names the cause.
func TestDiskFullEndsTheJournal(t *testing.T) {
	if dir := os.Getenv(diskFullEnv); dir != "" {
		diskFullInner(t, dir)
		return
	}
	if _, err := exec.LookPath("unshare"); err != nil {
		t.Skip("needs unshare(1) to mount a small file system:", err)
	}
	mnt := t.TempDir()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command("unshare", "-Urm", "sh", "-c", `mount -t tmpfs -o size=256k tmpfs "$0" && exec "$1" -test.run '^TestDiskFullEndsTheJournal$' -test.v`, mnt, exe)
	cmd.Env = append(os.Environ(), diskFullEnv+"="+mnt)
	out, err := cmd.CombinedOutput()
	if err != nil && strings.Contains(string(out), "mount") && !strings.Contains(string(out), "--- ") {
		t.Skipf("cannot mount a tmpfs in a user namespace here: %v: %s", err, out)
	}
	if err != nil || !strings.Contains(string(out), "--- PASS: TestDiskFullEndsTheJournal") {
		t.Fatalf("inner test: %v\n%s", err, out)
	}
}

func diskFullInner(t *testing.T, dir string) {
	ctx := context.Background()
	s := NewFileStore(filepath.Join(dir, "state"))
	w, err := s.Create(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Append(rec(1, RunStarted)); err != nil {
		t.Fatal(err)
	}
	// Fill the file system.
	fill, err := os.Create(filepath.Join(dir, "fill"))
	if err != nil {
		t.Fatal(err)
	}
	for {
		if _, err := fill.Write(make([]byte, 4096)); err != nil {
			break
		}
	}
	fill.Close()
	big := rec(2, StepSucceeded)
	big.Step, big.Outputs = "s", map[string]any{"blob": strings.Repeat("x", 8192)}
	err = w.Append(big)
	var df *DiskFullError
	if !errors.As(err, &df) || !errors.Is(err, syscall.ENOSPC) || !strings.Contains(err.Error(), "is full") {
		t.Fatalf("append on a full disk: %v", err)
	}
	if err := w.Append(rec(3, Progress)); err == nil {
		t.Fatal("the writer went on after the disk filled up")
	}
	final := rec(9, RunInterrupted)
	final.Message = "writing the run journal: " + err.Error()
	if err := w.Append(final); err != nil {
		t.Fatalf("the final record did not fit: %v", err)
	}
	if err := w.Append(final); err == nil {
		t.Fatal("a second final record was accepted")
	}
	w.Close()
	j, err := s.Open(ctx, "r1")
	if err != nil {
		t.Fatal(err)
	}
	last := j.Records[len(j.Records)-1]
	if len(j.Records) != 2 || j.TornTail != 0 || last.Type != RunInterrupted || last.Seq != 2 || !strings.Contains(last.Message, "no space left on device") {
		t.Fatalf("journal after a full disk: %+v (torn %d)", j.Records, j.TornTail)
	}
	// Resuming on a disk still full is refused before anything is written.
	if _, err := s.Reopen(ctx, "r1"); !errors.As(err, &df) {
		t.Fatalf("reopen on a full disk: %v", err)
	}
	if err := os.Remove(filepath.Join(dir, "fill")); err != nil {
		t.Fatal(err)
	}
	w, err = s.Reopen(ctx, "r1")
	if err != nil {
		t.Fatalf("reopen once there is room: %v", err)
	}
	w.Close()
}
