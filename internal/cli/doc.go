// Package cli is the daguq command line: one file per subcommand, each a thin
// shell around the executor package (enqueue, consume) or the store (stats,
// peek, dlq, pause, resume, limit, purge, migrate).
package cli
