package cli_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"
)

// recordingHandler is a handler command that saves each batch whole to
// dir/CONSUMER.START_NS.RANDOM (written aside in dir.tmp, then renamed),
// START_NS the time the handler started, then sleeps pause seconds. dir
// and dir.tmp are created.
func recordingHandler(tb testing.TB, dir, consumer, pause string) []string {
	tb.Helper()
	for _, d := range []string{dir, dir + ".tmp"} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			tb.Fatal(err)
		}
	}
	return []string{"sh", "-c",
		`s=$(date +%s%N) && t=$(mktemp "$0.tmp/XXXXXX") && cat > "$t" && mv "$t" "$0/$1.$s.${t##*/}" && sleep "$2"`,
		dir, consumer, pause}
}

// delivery is one handling of a message, from a recordingHandler's files.
type delivery struct {
	consumer string
	attempt  int
	at       time.Time // when the handler started
}

// readDeliveries reads the batches recordingHandler saved in dirs: the
// deliveries of each message by its body's "n".
func readDeliveries(tb testing.TB, dirs ...string) map[int][]delivery {
	tb.Helper()
	byN := map[int][]delivery{}
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
				byN[d.Body.N] = append(byN[d.Body.N], delivery{parts[0], d.Attempt, time.Unix(0, ns)})
			}
		}
	}
	return byN
}

// handledCount is how many messages the batches saved in dirs hold.
func handledCount(dirs ...string) int {
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

// waitHandled waits until the batches saved in dirs hold at least n
// messages, and fails the test after limit.
func waitHandled(tb testing.TB, n int, limit time.Duration, dirs ...string) {
	tb.Helper()
	deadline := time.Now().Add(limit)
	for handledCount(dirs...) < n {
		if time.Now().After(deadline) {
			tb.Fatalf("fewer than %d messages handled after %s", n, limit)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
