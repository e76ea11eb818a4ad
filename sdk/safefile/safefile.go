// Package safefile opens and reads the files runbook is given or finds in
// its state defensively: regular files only, and never more than a stated
// size. A named pipe (FIFO), a device (/dev/zero, a terminal), a socket or a
// symbolic link to one of them is refused at once, without blocking on it
// and without reading from it; a file larger than its cap is refused with
// the cap in the error instead of being read into memory.
package safefile

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"syscall"
)

// NotRegularError refuses a path that is not a regular file.
type NotRegularError struct {
	Path string
	// Kind says what it is: "a named pipe (FIFO)", "a character device"...
	Kind string
}

func (e *NotRegularError) Error() string {
	return fmt.Sprintf("%s is %s, not a regular file; refusing to read it", e.Path, e.Kind)
}

// TooLargeError refuses a file larger than its cap.
type TooLargeError struct {
	Path  string
	Limit int64
}

func (e *TooLargeError) Error() string {
	return fmt.Sprintf("%s is larger than %s, the most runbook reads from such a file; refusing it", e.Path, Size(e.Limit))
}

// Size formats a byte count for messages: "4 MiB", "64 KiB", "100 bytes".
func Size(n int64) string {
	switch {
	case n >= 1<<30 && n%(1<<30) == 0:
		return fmt.Sprintf("%d GiB", n>>30)
	case n >= 1<<20 && n%(1<<20) == 0:
		return fmt.Sprintf("%d MiB", n>>20)
	case n >= 1<<10 && n%(1<<10) == 0:
		return fmt.Sprintf("%d KiB", n>>10)
	}
	return fmt.Sprintf("%d bytes", n)
}

// kind names a file mode that is not a regular file.
func kind(m fs.FileMode) string {
	switch {
	case m.IsDir():
		return "a directory"
	case m&fs.ModeNamedPipe != 0:
		return "a named pipe (FIFO)"
	case m&fs.ModeSocket != 0:
		return "a socket"
	case m&fs.ModeCharDevice != 0:
		return "a character device"
	case m&fs.ModeDevice != 0:
		return "a block device"
	case m&fs.ModeSymlink != 0:
		return "a symbolic link"
	}
	return "not a regular file (mode " + m.String() + ")"
}

// CheckRegular returns a *NotRegularError unless fi is a regular file.
func CheckRegular(path string, fi fs.FileInfo) error {
	if fi.Mode().IsRegular() {
		return nil
	}
	return &NotRegularError{Path: path, Kind: kind(fi.Mode())}
}

// Open opens path with flag (os.O_RDONLY, os.O_RDWR...) only if it is a
// regular file, following symbolic links. The file is looked at before it
// is opened and again once open, so that neither a FIFO nor a device is ever
// opened in a way that blocks (the open is non-blocking) or read.
func Open(path string, flag int) (*os.File, error) {
	fi, err := os.Stat(path)
	if err != nil {
		return nil, err
	}
	if err := CheckRegular(path, fi); err != nil {
		return nil, err
	}
	// Non-blocking: a FIFO put in place between the Stat and the open must
	// not block the open. It has no effect on a regular file's reads.
	f, err := os.OpenFile(path, flag|syscall.O_NONBLOCK|syscall.O_NOCTTY, 0)
	if err != nil {
		return nil, err
	}
	fi, err = f.Stat()
	if err == nil {
		err = CheckRegular(path, fi)
	}
	if err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// ReadFile reads the regular file at path if it holds at most limit bytes;
// otherwise it returns a *TooLargeError (a *NotRegularError for anything
// but a regular file) without reading more than limit+1 bytes.
func ReadFile(path string, limit int64) ([]byte, error) {
	f, err := Open(path, os.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return ReadAll(f, path, limit)
}

// ReadAll reads f to its end if it holds at most limit bytes (path names it
// in the error).
func ReadAll(f *os.File, path string, limit int64) ([]byte, error) {
	if fi, err := f.Stat(); err == nil && fi.Size() > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return nil, err
	}
	if int64(len(b)) > limit {
		return nil, &TooLargeError{Path: path, Limit: limit}
	}
	return b, nil
}

// IsRefused reports whether err is one of this package's refusals.
func IsRefused(err error) bool {
	var nr *NotRegularError
	var tl *TooLargeError
	return errors.As(err, &nr) || errors.As(err, &tl)
}
