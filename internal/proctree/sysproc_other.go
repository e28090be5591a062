//go:build unix && !linux

package proctree

import "syscall"

func directSysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Setpgid: true}
}
