//go:build !linux || !cgo

package malloctune

// TrimThreshold is unused where Apply does nothing.
const TrimThreshold = 64 << 20

// Apply does nothing on this platform and returns false.
func Apply() bool { return false }

const glibc = false
