// Package executor holds daguq's Dagu step executors, `queue` (consume
// batches and run a handler per batch, or claim/ack/nack one batch),
// `enqueue`, and `pool` (run a command while holding slots of a pool shared
// by every DAG), built from a plain step spec so that both ways of running
// in Dagu share them: the daguq CLI called by Dagu's step_types, and the
// plugin module registered with Dagu's Go executor registry.
//
// It owns the `with:` configuration of every kind (decoding, defaults,
// validation: a refused value is a *FieldError naming its key, which Text
// spells as a with: key or, for the CLI, as a flag), and from the same
// field definitions it produces the JSON schema for step_types and the
// reference tables in docs/executors.md. The executors implement Dagu's
// Executor method set (SetStdout, SetStderr, Kill, Run); the handler
// contract, exit codes and defaults are written in docs/executors.md.
//
// The package talks to the store through the small interfaces declared here
// (Store for queues, PoolStore for pools); OpenStore picks the backend from
// the db value.
package executor
