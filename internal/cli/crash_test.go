package cli_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// A consumer killed with SIGKILL in the middle of a drain loses nothing: the
// batches it held come back when their lease runs out (no heartbeat extends
// it any more) and are handled again, as attempt 2. Those are the only
// messages handled twice.
func TestKilledConsumerLosesNothing(t *testing.T) {
	t.Parallel()
	const total = 4000
	e := newEnv(t)
	e.ok(strings.NewReader(jsonLines(total)), "enqueue", "--queue", "crash", "--file", "-")
	out := filepath.Join(e.dir, "out")
	os.Mkdir(out, 0o700)
	os.Mkdir(out+".tmp", 0o700)
	// Each batch is saved whole (written aside, then renamed) to a file named
	// after its consumer, then the handler takes a moment: a kill that
	// follows a saved file lands while that batch is still held.
	handler := func(name string) []string {
		return []string{"sh", "-c",
			`t=$(mktemp "$0.tmp/XXXXXX") && cat > "$t" && mv "$t" "$0/$1.${t##*/}" && sleep 0.2`, out, name}
	}
	consume := func(name string) []string {
		args := []string{"consume", "--queue", "crash", "--batch-size", "50", "--concurrency", "2",
			"--lease", "2s", "--progress-interval", "0s", "--consumer", name, "--"}
		return append(args, handler(name)...)
	}

	victim := e.command(nil, consume("victim")...)
	if err := victim.Start(); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	for i := range 3 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if r := e.run(nil, consume(fmt.Sprintf("c%d", i))...); r.Code != 0 {
				t.Errorf("consumer c%d: %s", i, r)
			}
		}()
	}
	deadline := time.Now().Add(30 * time.Second)
	for {
		files, _ := filepath.Glob(filepath.Join(out, "victim.*"))
		if len(files) >= 1 {
			break
		}
		if time.Now().After(deadline) {
			victim.Process.Kill()
			t.Fatal("the victim handled no batch in 30 s")
		}
		time.Sleep(5 * time.Millisecond)
	}
	victim.Process.Kill() // SIGKILL: no release, no ack, no heartbeat
	killed := time.Now()
	victim.Wait()
	wg.Wait()

	// What the victim held is leased until its lease ends; then a last
	// consumer takes it.
	time.Sleep(time.Until(killed.Add(2500 * time.Millisecond)))
	e.ok(nil, consume("sweeper")...)

	type delivery struct {
		consumer string
		attempt  int
	}
	byN := map[int][]delivery{}
	files, _ := filepath.Glob(filepath.Join(out, "*.*"))
	for _, f := range files {
		consumer := strings.SplitN(filepath.Base(f), ".", 2)[0]
		b, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
			if line == "" {
				continue
			}
			var d struct {
				Attempt int
				Body    struct{ N int }
			}
			if err := json.Unmarshal([]byte(line), &d); err != nil {
				t.Fatalf("%s: %v: %q", f, err, line)
			}
			byN[d.Body.N] = append(byN[d.Body.N], delivery{consumer, d.Attempt})
		}
	}
	var doubles int
	for n := range total {
		ds := byN[n]
		switch {
		case len(ds) == 0:
			t.Errorf("message %d was never handled", n)
		case len(ds) > 2:
			t.Errorf("message %d handled %d times: %+v", n, len(ds), ds)
		case len(ds) == 2:
			doubles++
			first, second := ds[0], ds[1]
			if first.attempt > second.attempt {
				first, second = second, first
			}
			if first.consumer != "victim" || first.attempt != 1 || second.attempt != 2 {
				t.Errorf("message %d handled twice without an expired lease of the victim: %+v", n, ds)
			}
		}
	}
	if doubles == 0 {
		t.Errorf("no message of the killed consumer was handled again: its batches were lost or never held")
	}
	t.Logf("%d messages held by the killed consumer were handled again after its lease ran out", doubles)
	if s := e.stats("crash"); s.Ready+s.InFlight+s.Delayed+s.Dead != 0 {
		t.Errorf("after the sweep: %+v", s)
	}
}
