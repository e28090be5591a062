package proctest

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// RecordScript is a handler, run by sh with the arguments DIR CONSUMER
// PAUSE, that saves each batch it reads on stdin whole to
// DIR/CONSUMER.START_NS.RANDOM (written aside in DIR.tmp, then renamed;
// START_NS is when the handler started), then sleeps PAUSE seconds.
// ReadDeliveries reads what it saved.
const RecordScript = `s=$(date +%s%N) && t=$(mktemp "$1.tmp/XXXXXX") && cat > "$t" && mv "$t" "$1/$2.$s.${t##*/}" && sleep "$3"`

// RecordingHandler is a handler command running RecordScript for consumer,
// saving to dir; it creates dir and dir.tmp.
func RecordingHandler(tb testing.TB, dir, consumer, pause string) []string {
	tb.Helper()
	MakeRecordDirs(tb, dir)
	return []string{"sh", "-c", RecordScript, "sh", dir, consumer, pause}
}

// MakeRecordDirs creates dir and dir.tmp for RecordScript.
func MakeRecordDirs(tb testing.TB, dir string) {
	tb.Helper()
	for _, d := range []string{dir, dir + ".tmp"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			tb.Fatal(err)
		}
	}
}

// Delivery is one handling of a message, as RecordScript saved it.
type Delivery struct {
	Consumer string
	Attempt  int
	At       time.Time // when the handler started
}

// ReadDeliveries reads the batches RecordScript saved in dirs: the
// deliveries of each message by its body's "n".
func ReadDeliveries(tb testing.TB, dirs ...string) map[int][]Delivery {
	tb.Helper()
	byN := map[int][]Delivery{}
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.*.*"))
		for _, f := range files {
			parts := strings.SplitN(filepath.Base(f), ".", 3)
			ns, err := strconv.ParseInt(parts[1], 10, 64)
			if err != nil {
				tb.Fatalf("%s: no start time in the name", f)
			}
			b, err := os.ReadFile(f)
			if err != nil {
				tb.Fatal(err)
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
					tb.Fatalf("%s: %v: %q", f, err, line)
				}
				byN[d.Body.N] = append(byN[d.Body.N], Delivery{parts[0], d.Attempt, time.Unix(0, ns)})
			}
		}
	}
	return byN
}

// HandledCount is how many messages the batches saved in dirs hold.
func HandledCount(dirs ...string) int {
	n := 0
	for _, dir := range dirs {
		files, _ := filepath.Glob(filepath.Join(dir, "*.*.*"))
		for _, f := range files {
			b, _ := os.ReadFile(f)
			n += strings.Count(string(b), "\n")
		}
	}
	return n
}

// WaitHandled waits until the batches saved in dirs hold at least n
// messages, and fails the test after limit.
func WaitHandled(tb testing.TB, n int, limit time.Duration, dirs ...string) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for HandledCount(dirs...) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("fewer than %d messages handled after %s", n, limit)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// CheckKilledConsumer checks the deliveries of messages 0..total-1 when
// one consumer, victim, was killed at killed: each message was handled,
// and twice at most, then first by the victim and again as the next
// attempt, by a handler that started after the kill (while the victim
// lived, its heartbeat kept its lease valid). It returns how many were
// handled twice.
func CheckKilledConsumer(tb testing.TB, byN map[int][]Delivery, total int, victim string, killed time.Time) (doubles int) {
	tb.Helper()
	for n := range total {
		ds := byN[n]
		switch {
		case len(ds) == 0:
			tb.Errorf("message %d was never handled", n)
		case len(ds) > 2:
			tb.Errorf("message %d handled %d times: %+v", n, len(ds), ds)
		case len(ds) == 2:
			doubles++
			first, second := ds[0], ds[1]
			if first.Attempt > second.Attempt {
				first, second = second, first
			}
			if first.Consumer != victim || second.Attempt != first.Attempt+1 || second.At.Before(killed) {
				tb.Errorf("message %d handled twice while the first lease was valid: %+v (%s killed at %s)",
					n, ds, victim, killed.Format(time.RFC3339Nano))
			}
		}
	}
	return doubles
}
