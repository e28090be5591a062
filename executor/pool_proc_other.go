//go:build unix && !linux

package executor

import (
	"io"
	"syscall"
)

// commandSysProcAttr: the pool step's command in its own process group
// (group) or in daguq's.
func commandSysProcAttr(group bool) *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: group}
}

// isTerminal is false here: the command always gets its own group.
func isTerminal(io.Reader) bool { return false }
