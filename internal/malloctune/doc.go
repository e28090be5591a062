// Package malloctune keeps glibc's malloc from handing memory back to the
// kernel after nearly every SQLite statement.
//
// Under cgo, SQLite allocates with the C heap. glibc trims the top of a heap
// (and shrinks per-thread arenas) once 128 KiB or more is free there, so a
// statement that frees its buffers can cost an madvise or brk call, and the
// next one page faults the memory back in. Raising M_TRIM_THRESHOLD stops
// that churn; docs/performance.md has the measured gain. The same effect is
// available without code through GLIBC_TUNABLES=glibc.malloc.trim_threshold=N.
package malloctune
