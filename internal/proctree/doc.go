// Package proctree runs a handler command as a process tree that ends with
// it. When the command exits, when it is stopped, and when the process that
// started it dies (even by SIGKILL), no process the command started is left
// running.
//
// On Linux (with cgo) each command runs under a small supervisor process:
// the running binary itself, started again through /proc/self/exe with a
// switch in its environment. The supervisor is C (supervise_linux.c), an
// ELF constructor that acts on the switch before the Go runtime would
// start, so it works in any program that links the package (the daguq CLI,
// a Dagu binary that embeds the executors, a test binary) and costs about
// one exec, not a Go program's start; a Starter keeps supervisors between
// commands, so a command then costs only its own start. It makes itself a
// child subreaper,
// starts the command in a process group of its own, forwards stop signals,
// and when the command exits kills and reaps every process left below it:
// those in the command's group and those that left it (setsid, double
// fork), which the kernel hands to the subreaper when their parent dies. A
// socket to the starting process carries the command and its signals one
// way and the command's wait status the other; its end of file tells the
// supervisor that the starting process died, and it then kills the tree
// and removes the Cleanup directory (the Starter's), even between commands.
//
// Elsewhere, or when the supervisor cannot be started, the command runs
// directly in its own process group, and only that group is swept.
package proctree
