// Package postgres is daguq's message store in a PostgreSQL database, for
// queues shared by processes on many hosts. It keeps the contract of
// queuestore.Backend with the same semantics as the SQLite store
// (docs/lifecycle.md): leases with fencing tokens, heartbeats, ack and nack
// by id with backoff and dead letters, priorities with aging by time waited,
// bands, groups, dedupe, delays, pause and an in-flight limit across every
// host, kept counts and counters.
//
// How it maps the contract onto PostgreSQL (docs/postgres.md):
//
//   - Claims lock their messages with FOR UPDATE SKIP LOCKED, walking the
//     ready set's partial index in claim order, so concurrent claims never
//     wait for one another and never take the same message.
//   - Fencing is the lease id in each message row; every finish matches it.
//     No session state: a lease outlives the connection that took it.
//   - The in-flight limit is checked in the claim's transaction under a row
//     lock on the queue's settings, so two claims cannot take the last slot.
//   - Times come from the store's clock (Options.Now), as integer
//     milliseconds, as in SQLite.
//   - Migrations are versioned in the database and applied in one
//     transaction under a transaction-level advisory lock.
package postgres
