//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pluginhost

import (
	"io/fs"
	"syscall"
	"time"
)

// fileIdentity is what must stay equal for a remembered digest to be
// reused: the path and the file's device, inode, size, mtime and ctime.
type fileIdentity struct {
	path             string
	dev, ino         uint64
	size             int64
	mtimeNs, ctimeNs int64
}

func (id fileIdentity) ctime() time.Time { return time.Unix(0, id.ctimeNs) }

func identityOf(path string, fi fs.FileInfo) (fileIdentity, bool) {
	st, ok := fi.Sys().(*syscall.Stat_t)
	if !ok {
		return fileIdentity{}, false
	}
	return fileIdentity{path: path, dev: uint64(st.Dev), ino: uint64(st.Ino), size: st.Size,
		mtimeNs: fi.ModTime().UnixNano(), ctimeNs: ctimeOf(st)}, true
}
