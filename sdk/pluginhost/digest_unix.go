//go:build linux || darwin || freebsd || netbsd || openbsd || dragonfly

package pluginhost

import (
	"fmt"
	"io/fs"
	"os"
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

// ownedByMe: the file belongs to the user running this process.
func ownedByMe(fi fs.FileInfo) bool {
	st, ok := fi.Sys().(*syscall.Stat_t)
	return ok && int(st.Uid) == os.Geteuid()
}

// key is the on-disk cache key of the identity.
func (id fileIdentity) key() string {
	return fmt.Sprintf("v1\x00%s\x00%d\x00%d\x00%d\x00%d\x00%d", id.path, id.dev, id.ino, id.size, id.mtimeNs, id.ctimeNs)
}
