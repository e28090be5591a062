//go:build unix && !linux

package executor

import "os"

const runDirPrefix = "daguq-consume-"

// newRunDir makes the consumer's temporary directory. Here nothing removes
// it after a kill -9 of the consumer (Linux sweeps it: proc_linux.go).
func newRunDir() (dir string, unlock func(), err error) {
	dir, err = os.MkdirTemp("", runDirPrefix)
	return dir, func() {}, err
}
