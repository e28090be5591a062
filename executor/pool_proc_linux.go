package executor

import (
	"io"
	"os"
	"syscall"
	"unsafe"
)

// commandSysProcAttr: the pool step's command in its own process group
// (group) or in daguq's, and killed if daguq itself dies, so that a SIGKILL
// of the step leaves no orphan command behind (its slots then return when
// the lease runs out).
func commandSysProcAttr(group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: group, Pdeathsig: syscall.SIGKILL}
}

// isTerminal reports whether r is a terminal.
func isTerminal(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok || f == nil {
		return false
	}
	var t syscall.Termios
	_, _, errno := syscall.Syscall(syscall.SYS_IOCTL, f.Fd(), syscall.TCGETS, uintptr(unsafe.Pointer(&t)))
	return errno == 0
}
