package executor

import "syscall"

// handlerSysProcAttr puts a handler in its own process group (so a stop
// reaches its children) and kills it if daguq itself dies (so a SIGKILL of
// the step leaves no orphan handler behind; its leases then expire).
func handlerSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true, Pdeathsig: syscall.SIGKILL}
}
