//go:build !unix

package journal

import "io/fs"

// mutex does nothing here: a take-over, the only operation that needs it,
// is never possible (no holder is provably dead without /proc).
func (s *FileStore) mutex() (func(), error) { return func() {}, nil }

func foreignOwner(fs.FileInfo) int { return -1 }

func isQuotaExceeded(error) bool { return false }

const noFollow = 0

func checkFree(string, int64) error { return nil }
