package executor

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"syscall"
	"testing"
	"time"
)

// helperEnv carries a queue step config (JSON) to a helper process: the test
// binary run again as one consumer, as Dagu runs each step in its own process.
const helperEnv = "DAGUQ_TEST_HELPER_CONFIG"

// TestHelperConsumer is not a test: it is the body of a helper process.
func TestHelperConsumer(t *testing.T) {
	raw := os.Getenv(helperEnv)
	if raw == "" {
		t.Skip("helper process only")
	}
	var cfg map[string]any
	if err := json.Unmarshal([]byte(raw), &cfg); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(100)
	}
	dir, _ := os.Getwd()
	e, err := New(KindQueue, Spec{Name: "helper", Config: cfg, Dir: dir})
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(ExitCode(err))
	}
	e.SetStdout(os.Stdout)
	e.SetStderr(os.Stderr)
	os.Exit(ExitCode(e.Run(context.Background())))
}

func startConsumerProcess(tb testing.TB, te *testEnv, config map[string]any) *exec.Cmd {
	tb.Helper()
	b, _ := json.Marshal(config)
	cmd := exec.Command(os.Args[0], "-test.run=^TestHelperConsumer$")
	cmd.Dir = te.dir
	cmd.Env = append(os.Environ(), helperEnv+"="+string(b))
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	return cmd
}

// deliveries reads every batch copyHandler saved: per id, the attempts it
// was delivered with.
func deliveries(tb testing.TB, dir string) map[int64][]int {
	tb.Helper()
	got := map[int64][]int{}
	for _, b := range handledBatches(tb, dir) {
		for _, m := range b {
			got[m.ID] = append(got[m.ID], m.Attempt)
		}
	}
	return got
}

// TestConsumersInSeveralProcesses: four consumer processes drain one queue
// on one database file; every message is handled exactly once.
func TestConsumersInSeveralProcesses(t *testing.T) {
	t.Parallel()
	te := setup(t)
	ids := te.enqueueN("q", 3000)
	te.script("h.sh", copyHandler)
	cfg := map[string]any{"queue": "q", "db": te.db, "run": "./h.sh", "batch_size": 50, "concurrency": 2}
	var procs []*exec.Cmd
	for i := 0; i < 4; i++ {
		procs = append(procs, startConsumerProcess(t, te, cfg))
	}
	for i, p := range procs {
		if err := p.Wait(); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
	}
	got := deliveries(t, te.dir)
	for _, id := range ids {
		if len(got[id]) != 1 {
			t.Fatalf("message %d delivered %d times (attempts %v)", id, len(got[id]), got[id])
		}
	}
	if st := te.stats("q"); st.Ready+st.InFlight+st.Delayed != 0 {
		t.Fatalf("stats %+v", st)
	}
}

// TestConsumerKilledWithSIGKILL: one of three consumer processes dies by
// kill -9 mid-drain. Its handlers die with it, its leases expire, and a
// later drain delivers its messages again: none lost, and no two deliveries
// of a message share an attempt number (no message went to two handlers
// under one valid lease).
func TestConsumerKilledWithSIGKILL(t *testing.T) {
	t.Parallel()
	te := setup(t)
	ids := te.enqueueN("q", 600)
	te.script("h.sh", copyHandler+"sleep 0.1\n")
	cfg := map[string]any{"queue": "q", "db": te.db, "run": "./h.sh", "batch_size": 20, "lease": "1s"}
	victim := startConsumerProcess(t, te, cfg)
	others := []*exec.Cmd{startConsumerProcess(t, te, cfg), startConsumerProcess(t, te, cfg)}
	deadline := time.Now().Add(20 * time.Second)
	for countMarks(t, filepath.Join(te.dir, "out"), "") < 5 {
		if time.Now().After(deadline) {
			t.Fatal("consumers made no progress")
		}
		time.Sleep(10 * time.Millisecond)
	}
	victim.Process.Signal(syscall.SIGKILL)
	victim.Wait()
	for i, p := range others {
		if err := p.Wait(); err != nil {
			t.Fatalf("consumer %d: %v", i, err)
		}
	}
	time.Sleep(1200 * time.Millisecond) // the victim's leases expire
	r := te.run(KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "batch_size": 100})
	wantExit(t, r.err, 0)

	got := deliveries(t, te.dir)
	twice := 0
	for _, id := range ids {
		attempts := got[id]
		if len(attempts) == 0 {
			t.Fatalf("message %d lost", id)
		}
		seen := map[int]bool{}
		for _, a := range attempts {
			if seen[a] {
				t.Fatalf("message %d delivered twice with attempt %d: two handlers under one lease", id, a)
			}
			seen[a] = true
		}
		if len(attempts) > 1 {
			twice++
		}
	}
	if st := te.stats("q"); st.Ready+st.InFlight+st.Delayed+st.Dead != 0 {
		t.Fatalf("stats %+v", st)
	}
	t.Logf("%d of %d messages delivered again after the kill", twice, len(ids))
}
