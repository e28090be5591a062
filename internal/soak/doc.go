// Package soak is daguq's fault-injection soak: for a fixed time, real daguq
// processes (producers and consumers with several settings) share one
// database file while a chaos driver kills them (SIGKILL), pauses them past
// their lease (SIGSTOP, SIGCONT), stops them (SIGTERM) and holds the
// database's write lock from outside. Then a clean consumer drains the queue
// and Check proves the delivery contract from what every process recorded
// and from the database (docs/lifecycle.md, "Fault-injection soak").
//
// The package drives the daguq binary only from outside, as a user or Dagu
// would: it imports nothing of daguq. Its handler is a program given by the
// caller (the soak test re-executes its own binary, see HandlerMain).
package soak
