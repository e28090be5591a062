//go:build integration

package integration

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/daguq/daguq/internal/pgtest"
	"github.com/daguq/daguq/internal/proctest"
	"github.com/daguq/daguq/queuestore"
	"github.com/daguq/daguq/queuestore/postgres"
)

// distributedDAG consumes queue "dist" on whichever `dagu worker` carries
// the label daguq=consumers; the database URL, with its password, comes
// from the worker's DAGUQ_DB (env_passthrough), never from the DAG. Its
// handler records each batch in the worker's own directory.
var distributedDAG = `# daguq integration suite: a PostgreSQL consumer for Dagu's workers.
max_active_runs: 2
worker_selector:
  daguq: consumers
steps:
  - id: consume
    type: queue
    with:
      queue: dist
      batch_size: 25
      concurrency: 2
      lease: 2s
      mode: watch
      idle_timeout: 8s
      progress_interval: 0s
      script: |
        set -- "$DAGUQ_TEST_RECORDS" "$DAGUQ_TEST_HOST" 0.05
        ` + proctest.RecordScript + `
`

// Dagu's distributed mode: a coordinator (in dagu start-all) and two `dagu
// worker` processes, each with its own DAGU_HOME, daguq's step types
// installed and the PostgreSQL URL in its environment, nothing else shared.
// Two runs of a consumer DAG go one to each worker (worker_selector, one
// run per worker); one worker and everything it started is killed with
// SIGKILL mid-batch. The other drains the queue, the dead worker's
// batches included once their lease ran out: every message handled, and
// twice only for batches the dead worker held, after it died.
func TestDaguDistributedWorkers(t *testing.T) {
	t.Parallel()
	const total = 3000
	coordinatorPort := freePort(t)
	s := startDaguServerWith(t, coordinatorPort)
	dbURL := pgtest.NewServer(t).NewDatabase(t)
	write(t, filepath.Join(s.home, "dags", "pg-consume.yaml"), distributedDAG)

	ctx := context.Background()
	st, err := postgres.Open(dbURL, postgres.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	var msgs []queuestore.NewMessage
	for n := range total {
		msgs = append(msgs, queuestore.NewMessage{Queue: "dist", Body: []byte(fmt.Sprintf(`{"n":%d}`, n))})
	}
	if _, err := st.Enqueue(ctx, msgs...); err != nil {
		t.Fatal(err)
	}

	workers := []string{"w1", "w2"}
	pids := map[string]int{}
	records := map[string]string{}
	for _, name := range workers {
		home := filepath.Join(s.e.dir, name)
		if err := os.MkdirAll(filepath.Join(home, "home"), 0o755); err != nil {
			t.Fatal(err)
		}
		write(t, filepath.Join(home, "config.yaml"), `worker:
  health_port: 0
env_passthrough: [DAGUQ_DB, DAGUQ_TEST_RECORDS, DAGUQ_TEST_HOST]
`)
		installStepTypes(t, s.e, home)
		records[name] = filepath.Join(home, "records")
		proctest.MakeRecordDirs(t, records[name])
		cmd := s.e.command(s.dagu, "worker", "--worker.id", name, "--worker.labels", "daguq=consumers",
			"--worker.coordinators", "127.0.0.1:"+strconv.Itoa(coordinatorPort), "--worker.max-active-runs", "1")
		for k, v := range map[string]string{"DAGU_HOME": home, "HOME": filepath.Join(home, "home"), "DAGUQ_DB": dbURL,
			"DAGUQ_TEST_RECORDS": records[name], "DAGUQ_TEST_HOST": name} {
			cmd.Env = proctest.Setenv(cmd.Env, k, v)
		}
		cmd.Dir = home
		startLogged(t, cmd, filepath.Join(s.e.dir, name+".log"))
		pids[name] = cmd.Process.Pid
	}

	runs := []string{s.start(t, "pg-consume", nil), s.start(t, "pg-consume", nil)}
	waitFor(t, time.Minute, "a batch handled on each worker", func() bool {
		return proctest.HandledCount(records["w1"]) > 0 && proctest.HandledCount(records["w2"]) > 0
	})
	victim := "w1"
	killTree(t, pids[victim])
	killed := time.Now()
	handledAtKill := proctest.HandledCount(records["w1"], records["w2"])

	var survivor runDetails
	for _, id := range runs {
		if r, _ := s.details(t, "pg-consume", id); r.WorkerID != victim {
			survivor = s.wait(t, "pg-consume", id)
		}
	}
	if survivor.Status != statusSucceeded || survivor.WorkerID == "" {
		t.Fatalf("the run on the surviving worker: %s (worker %q)", survivor, survivor.WorkerID)
	}
	if out := survivor.node("consume").Stderr + survivor.node("consume").Stdout; strings.Contains(out, pgtest.Password) {
		t.Errorf("the consumer's output shows the password")
	}
	byN := proctest.ReadDeliveries(t, records["w1"], records["w2"])
	doubles := proctest.CheckKilledConsumer(t, byN, total, victim, killed)
	if doubles == 0 {
		t.Errorf("no message of the killed worker was handled again: its batch was lost or never held")
	}
	t.Logf("%d messages: %d handled when %s was killed; %d it held handled again by %s after its lease ran out",
		total, handledAtKill, victim, doubles, survivor.WorkerID)
	if stats, err := st.Stats(ctx, "dist"); err != nil || stats.Ready+stats.InFlight+stats.Delayed+stats.Dead != 0 {
		t.Errorf("left in the queue: %+v (%v)", stats, err)
	}
}

// killTree kills a process and every process it started, as a host that
// dies: all are stopped first (none can start another meanwhile), then
// killed with SIGKILL.
func killTree(t *testing.T, root int) {
	t.Helper()
	stopped := map[int]bool{}
	for {
		found := false
		for _, pid := range append([]int{root}, descendants(root)...) {
			if !stopped[pid] {
				syscall.Kill(pid, syscall.SIGSTOP)
				stopped[pid], found = true, true
			}
		}
		if !found {
			break
		}
	}
	for pid := range stopped {
		syscall.Kill(pid, syscall.SIGKILL)
	}
}

// descendants lists the processes below pid, from /proc.
func descendants(pid int) []int {
	children := map[int][]int{}
	entries, _ := os.ReadDir("/proc")
	for _, e := range entries {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		// pid (comm) state ppid ...: comm may hold spaces, so read after ')'.
		fields := strings.Fields(string(stat[strings.LastIndexByte(string(stat), ')')+1:]))
		if len(fields) < 2 {
			continue
		}
		ppid, _ := strconv.Atoi(fields[1])
		children[ppid] = append(children[ppid], p)
	}
	var out []int
	queue := []int{pid}
	for len(queue) > 0 {
		p := queue[0]
		queue = queue[1:]
		out = append(out, children[p]...)
		queue = append(queue, children[p]...)
	}
	return out
}
