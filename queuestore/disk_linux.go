package queuestore

import "syscall"

// freeDiskBytes is the space left to an unprivileged writer on the file
// system that holds dir, or -1 when it cannot be told.
func freeDiskBytes(dir string) int64 {
	var st syscall.Statfs_t
	if err := syscall.Statfs(dir, &st); err != nil {
		return -1
	}
	return int64(st.Bavail) * int64(st.Bsize)
}
