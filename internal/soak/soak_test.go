package soak_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/internal/soak"
)

// daguqBin is the daguq binary built once for the package's tests.
var daguqBin string

// TestMain builds daguq, or plays a part of the soak when the soak
// re-executes this binary as a handler or as a handler's child.
func TestMain(m *testing.M) {
	switch os.Getenv(soak.RoleEnv) {
	case soak.RoleHandler:
		os.Exit(soak.HandlerMain(os.Args[1:]))
	case soak.RoleChild:
		os.Exit(soak.ChildMain())
	}
	if bin := os.Getenv("SOAK_DAGUQ"); bin != "" { // soak another build of daguq
		daguqBin = bin
		os.Exit(m.Run())
	}
	dir, err := os.MkdirTemp("", "daguq-soak-test-")
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	daguqBin = filepath.Join(dir, "daguq")
	if err := proctest.BuildDaguq(daguqBin, raceEnabled); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

// environ is a clean environment for the soak's processes: none of the
// caller's daguq, Dagu or temporary-directory settings.
func environ(dir string) []string {
	vars := proctest.Environ(func(name string) bool {
		switch name {
		case "DAGUQ_DB", "DAGU_HOME", "XDG_DATA_HOME", "HOME", "GORACE", "TMPDIR", soak.RoleEnv, soak.RunEnv:
			return true
		}
		return false
	})
	gorace := strings.TrimSpace(os.Getenv("GORACE") + " atexit_sleep_ms=0")
	return append(vars, "HOME="+filepath.Join(dir, "home"), "GORACE="+gorace)
}

// keptDir is a fresh directory for a run's files: under $SOAK_DIR, kept
// for a look afterwards, when that is set, else a temporary one.
func keptDir(t *testing.T, name string) string {
	keep := os.Getenv("SOAK_DIR")
	if keep == "" {
		return t.TempDir()
	}
	dir := filepath.Join(keep, name)
	if err := os.RemoveAll(dir); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	return dir
}

// handlerArgv runs this test binary as the soak's handler.
func handlerArgv(tb testing.TB) []string {
	exe, err := os.Executable()
	if err != nil {
		tb.Fatal(err)
	}
	return []string{exe}
}

// TestSoak is the fault-injection soak: SOAK_DURATION of producers,
// consumers and chaos on one database file (20s by default, `make soak` runs
// longer), a final drain, then the invariants of soak.Check.
func TestSoak(t *testing.T) {
	duration := 20 * time.Second
	if v := os.Getenv("SOAK_DURATION"); v != "" {
		d, err := time.ParseDuration(v)
		if err != nil {
			t.Fatalf("SOAK_DURATION=%q: %v", v, err)
		}
		duration = d
	}
	var seed uint64
	if v := os.Getenv("SOAK_SEED"); v != "" {
		s, err := strconv.ParseUint(v, 10, 64)
		if err != nil {
			t.Fatalf("SOAK_SEED=%q: %v", v, err)
		}
		seed = s
	}
	dir := keptDir(t, "soak")
	res, err := soak.Run(context.Background(), soak.Config{
		Daguq:    daguqBin,
		Handler:  handlerArgv(t),
		Dir:      dir,
		Duration: duration,
		Env:      environ(dir),
		Seed:     seed,
		Logf:     t.Logf,
	})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("soak of %s (seed %d, %s in all, race detector %v):\n%s", res.Duration, res.Seed, res.Took.Round(time.Second), raceEnabled, res.Counts)
	for _, v := range res.Violations {
		t.Error(v)
	}
}

// TestSoakFullDisk runs the soak's consumers and producers on a database
// that runs out of space: a tmpfs of 4 MB, which takes root to mount. Without
// root the test is skipped, unless CI is set: then it fails.
func TestSoakFullDisk(t *testing.T) {
	dir := keptDir(t, "fulldisk")
	small := filepath.Join(dir, "small")
	if err := os.Mkdir(small, 0o700); err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=4m,mode=0700", "tmpfs", small).CombinedOutput(); err != nil {
		msg := fmt.Sprintf("a full disk needs a small tmpfs, and mounting one failed (root: %v): %v: %s",
			os.Geteuid() == 0, err, strings.TrimSpace(string(out)))
		if os.Getenv("CI") != "" {
			t.Fatal(msg)
		}
		t.Skip(msg)
	}
	t.Cleanup(func() {
		if os.Getenv("SOAK_DIR") != "" { // keep the database too
			exec.Command("cp", "-a", small, filepath.Join(dir, "small-kept")).Run()
		}
		if out, err := exec.Command("umount", small).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v: %s", small, err, out)
		}
	})
	res, err := soak.RunFullDisk(context.Background(), soak.Config{
		Daguq:   daguqBin,
		Handler: handlerArgv(t),
		Dir:     dir,
		Env:     environ(dir),
		Drain:   10 * time.Second,
		Logf:    t.Logf,
	}, small)
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("full disk (seed %d, %s in all):\n%s", res.Seed, res.Took.Round(time.Second), res.Counts)
	if res.Counts.FullRefused == 0 {
		t.Error("no enqueue was refused: the disk never filled")
	}
	for _, v := range res.Violations {
		t.Error(v)
	}
}
