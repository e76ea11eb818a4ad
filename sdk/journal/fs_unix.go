//go:build unix

package journal

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"syscall"

	"golang.org/x/sys/unix"
)

// mutex takes an exclusive advisory lock (flock) on the state directory's
// lock.mutex file and returns its release. It serialises what removes the
// lock file (unlock, release, take-over), so that a take-over never
// removes a lock other than the one it judged.
func (s *FileStore) mutex() (func(), error) {
	if err := s.ensureDirs(); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(s.dir, "lock.mutex"), os.O_RDWR|os.O_CREATE|syscall.O_NOFOLLOW|syscall.O_NONBLOCK, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", filepath.Join(s.dir, "lock.mutex"), err)
	}
	for {
		err = unix.Flock(int(f.Fd()), unix.LOCK_EX)
		if err != unix.EINTR {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return func() { f.Close() }, nil // closing releases the flock
}

// foreignOwner returns the uid owning fi when it is neither this process's
// user nor root, else -1.
func foreignOwner(fi fs.FileInfo) int {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return -1
	}
	if uid := int(st.Uid); uid != os.Getuid() && uid != 0 {
		return uid
	}
	return -1
}

func isQuotaExceeded(err error) bool { return errors.Is(err, unix.EDQUOT) }

const noFollow = syscall.O_NOFOLLOW

// checkFree fails with ENOSPC when the file system holding dir has fewer
// than n bytes available to this user: a run must not start (or resume)
// on a disk that cannot take its journal.
func checkFree(dir string, n int64) error {
	var st unix.Statfs_t
	if err := unix.Statfs(dir, &st); err != nil {
		return nil // cannot tell: the writes will say
	}
	if avail := int64(st.Bavail) * int64(st.Bsize); avail < n {
		return fmt.Errorf("%s has %d bytes free, less than the %d a journal needs to start: %w", dir, avail, n, unix.ENOSPC)
	}
	return nil
}
