// Package queuestore is daguq's durable message store, kept in one SQLite file
// that many OS processes share at once (every Dagu step runs in its own
// process).
//
// It owns the schema and its migrations, and every state change of a message:
// enqueue (with priority, delay, dedupe key, group key), claim under a lease
// with a fencing token, ack, nack with backoff and dead letters, extend,
// release, per-queue pause and in-flight limits, and the read side (stats,
// peek). The delivery contract is drawn in docs/lifecycle.md.
//
// Delivery is at least once: a lease whose time ran out makes its messages
// claimable again, and a finish (ack, nack, extend, release) under a lease that
// another claim has taken over fails with ErrLeaseLost and changes nothing.
package queuestore
