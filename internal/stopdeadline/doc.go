// Package stopdeadline bounds the store calls of a process told to stop.
//
// Dagu stops a step with SIGTERM once and kills it max_clean_up_time_sec
// later (5 s by default); a service manager does much the same. The store
// calls a stopping process still makes (acks of finished work, releases of
// leases and pool slots, leaving a pool's line) would otherwise wait as long
// as the store lets them: a minute while PostgreSQL is unreachable, 30 s on
// SQLite's write lock. A Deadline gives them a context that ignores the
// cancellation of the caller's context and ends Margin after the grace,
// counted from the first Stop, or Margin after Hurry if that comes sooner.
// What a call could not do by then is left to its lease.
package stopdeadline
