//go:build unix && !linux

package proctree

import "syscall"

// start runs c directly in its own process group: there is no supervisor
// here (it needs Linux's child subreaper), so only that group is swept.
func start(c Cmd) (tree, error) { return startDirect(c) }

func directSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
