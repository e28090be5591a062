//go:build !linux

package queuestore

// freeDiskBytes cannot tell here: the store keeps its usual checkpoints.
func freeDiskBytes(dir string) int64 { return -1 }
