//go:build unix && !linux

package executor

import "syscall"

// handlerSysProcAttr puts a handler in its own process group, so that a stop
// reaches its children.
func handlerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
