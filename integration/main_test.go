package integration

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/daguq/daguq/internal/proctest"
)

// daguqBin is the daguq binary, built once for the package; binDir holds it
// (put on PATH for DAGs that run "daguq ..." themselves). repoRoot is the
// module root (dags/ lives there).
var (
	daguqBin string
	binDir   string
	repoRoot string
)

func TestMain(m *testing.M) {
	os.Exit(run(m))
}

func run(m *testing.M) int {
	wd, err := os.Getwd()
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	repoRoot = filepath.Dir(wd)
	dir, err := os.MkdirTemp("", "daguq-integration-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	defer os.RemoveAll(dir)
	binDir = filepath.Join(dir, "bin")
	daguqBin = filepath.Join(binDir, "daguq")
	// Built without -race: these tests run many daguq processes; the race
	// detector covers the same code in the package tests.
	if err := proctest.BuildDaguq(daguqBin, false); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return m.Run()
}
