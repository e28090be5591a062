package executor

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
)

// The consumer's temporary directory (batch and result files, the script)
// is named runDirPrefix* and holds a file runDirOwner that the consumer
// keeps locked (flock) while it runs. A handler's supervisor removes the
// directory when the consumer dies while the handler runs; a directory
// whose owner file is unlocked anyway belongs to a consumer that died with
// no handler running (kill -9), and the next consumer to start removes it.
// A lock, unlike a recorded pid, cannot be mistaken for a live process
// after pid reuse or in another pid namespace sharing the directory.
const (
	runDirPrefix = "daguq-consume-"
	runDirOwner  = "owner"
)

// newRunDir makes the consumer's temporary directory and locks it; unlock
// releases the lock (after the directory is removed).
func newRunDir() (dir string, unlock func(), err error) {
	sweepRunDirs(os.TempDir())
	dir, err = os.MkdirTemp("", runDirPrefix)
	if err != nil {
		return "", nil, err
	}
	// Locked under another name first, so that a sweep never finds the
	// owner file before it is locked.
	tmp := filepath.Join(dir, runDirOwner+".new")
	f, err := os.OpenFile(tmp, os.O_CREATE|os.O_RDWR, 0o600)
	if err == nil {
		if err = syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB); err == nil {
			err = os.Rename(tmp, filepath.Join(dir, runDirOwner))
		}
		if err != nil {
			f.Close()
		}
	}
	if err != nil {
		os.RemoveAll(dir)
		return "", nil, err
	}
	return dir, func() { f.Close() }, nil
}

// sweepRunDirs removes the run directories in tmp whose owner is gone.
func sweepRunDirs(tmp string) {
	entries, err := os.ReadDir(tmp)
	if err != nil {
		return
	}
	for _, e := range entries {
		if !e.IsDir() || !strings.HasPrefix(e.Name(), runDirPrefix) {
			continue
		}
		dir := filepath.Join(tmp, e.Name())
		f, err := os.Open(filepath.Join(dir, runDirOwner))
		if err != nil {
			continue // not ours, another user's, or just being made
		}
		if syscall.Flock(int(f.Fd()), syscall.LOCK_EX|syscall.LOCK_NB) == nil {
			os.RemoveAll(dir)
		}
		f.Close()
	}
}
