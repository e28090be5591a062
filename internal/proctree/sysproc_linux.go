package proctree

import "syscall"

// directSysProcAttr: a handler started without a supervisor dies with the
// process that started it (Pdeathsig), in a group of its own.
func directSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
