// Package plugin registers daguq's `queue`, `enqueue` and `pool` step executors
// with Dagu's Go executor registry (github.com/dagucloud/dagu, v2.6+), for
// programs that embed Dagu's engine. It is the only daguq code that imports
// Dagu; it maps a Dagu step to executor.Spec and leaves the rest to package
// executor.
//
// Registered executors exist only inside the embedding process: Dagu's
// stock server and local sub-DAGs run steps through `dagu start`
// subprocesses, which do not have them (see README.md).
package plugin
