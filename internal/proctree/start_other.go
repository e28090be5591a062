//go:build unix && !(linux && cgo)

package proctree

// haveSupervisor tells that handlers run under a supervisor here: not
// without Linux's child subreaper, nor without cgo (the supervisor is C).
const haveSupervisor = false

type pool struct{}

// start runs c directly in its own process group: only that group is swept.
func (s *Starter) start(c Cmd) (tree, error) { return startDirect(c) }

func (s *Starter) closeIdle() {}
