//go:build unix

package sqlite

import (
	"errors"
	"fmt"
	"os"
	"syscall"
)

// claimFile makes this store the only one serving the database at path,
// with an exclusive advisory lock on path+".lock" that the kernel drops
// when the process ends (a crash included). release gives it back.
//
// The store promises one process per file, and leans on it: the BFF keeps
// decoded records in memory, dropped by its own writes only, and Open
// clears every refresh lock as left over from a crash. A second BFF on the
// same file (two replicas on one volume) would keep serving sessions the
// other had killed. A file system without advisory locks (some network
// file systems) cannot check this, and the file is opened all the same.
func claimFile(path string) (release func() error, err error) {
	f, err := os.OpenFile(path+".lock", os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB)
	switch {
	case err == nil:
		return f.Close, nil
	case errors.Is(err, syscall.EWOULDBLOCK):
		f.Close()
		return nil, fmt.Errorf("sqlite: %s is in use by another process: a database file serves one BFF process; run several instances against redis", path)
	case errors.Is(err, syscall.ENOLCK), errors.Is(err, syscall.ENOTSUP), errors.Is(err, syscall.EOPNOTSUPP):
		f.Close()
		return func() error { return nil }, nil
	default:
		f.Close()
		return nil, fmt.Errorf("sqlite: lock %s: %w", path, err)
	}
}
