package main

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

// clockTick is the unit of /proc/PID/stat times (USER_HZ, 100 on Linux).
const clockTick = 10 * time.Millisecond

// treeCPU is the CPU time (user+sys) of process pid, of its children that
// exited and were waited for, and of its children still running: for
// PostgreSQL's postmaster, the whole server's. Linux only; 0 elsewhere.
func treeCPU(pid int) time.Duration {
	total := int64(0)
	if f := statFields(pid); len(f) > 14 {
		total += sumTicks(f[11:15]) // utime, stime, cutime, cstime
	}
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		child, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		f := statFields(child)
		if len(f) > 14 && f[1] == strconv.Itoa(pid) {
			total += sumTicks(f[11:15])
		}
	}
	return time.Duration(total) * clockTick
}

// statFields are the fields of /proc/PID/stat after the command name:
// state is [0], ppid [1], utime [11].
func statFields(pid int) []string {
	b, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "stat"))
	if err != nil {
		return nil
	}
	s := string(b)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return nil
	}
	return strings.Fields(s[i+1:])
}

func sumTicks(fields []string) int64 {
	var n int64
	for _, f := range fields {
		v, _ := strconv.ParseInt(f, 10, 64)
		n += v
	}
	return n
}
