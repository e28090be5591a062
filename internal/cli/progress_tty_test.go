package cli_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/creack/pty"
)

// On a terminal (a pseudo-terminal here), enqueue --file and a drain draw
// a bar on stderr; stdout keeps the JSON summary. Elsewhere stderr stays as
// it was (every other test of these commands).
func TestProgressBarOnATerminal(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	var lines strings.Builder
	for i := range 20000 {
		fmt.Fprintf(&lines, "{\"n\":%d}\n", i)
	}
	os.WriteFile(filepath.Join(e.dir, "big.jsonl"), []byte(lines.String()), 0o644)
	onTTY := func(args ...string) (stdout, stderr string) {
		t.Helper()
		ptmx, tty, err := pty.Open()
		if err != nil {
			t.Skipf("no pseudo-terminal: %v", err)
		}
		defer ptmx.Close()
		cmd := e.command(nil, args...)
		var out bytes.Buffer
		cmd.Stdout, cmd.Stderr = &out, tty
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		tty.Close()
		read := make(chan string)
		go func() { b, _ := io.ReadAll(ptmx); read <- string(b) }() // ends with EIO when the process is gone
		if err := cmd.Wait(); err != nil {
			t.Fatalf("daguq %v: %v\n%s", args, err, out.String())
		}
		return out.String(), <-read
	}
	stdout, stderr := onTTY("enqueue", "--queue", "big", "--file", "big.jsonl")
	if !strings.Contains(stdout, `"enqueued":20000`) {
		t.Errorf("stdout: %s", stdout)
	}
	if !strings.Contains(stderr, "enqueue big") || !strings.Contains(stderr, "100%") || !strings.Contains(stderr, "B/s") {
		t.Errorf("no bar on the terminal: %q", stderr)
	}
	stdout, stderr = onTTY("consume", "--queue", "big", "--batch-size", "1000", "--", "sh", "-c", "cat >/dev/null")
	if !strings.Contains(stdout, `"acked":20000`) {
		t.Errorf("stdout: %s", stdout)
	}
	if !strings.Contains(stderr, "consume big") || !strings.Contains(stderr, "(20000/20000") || strings.Contains(stderr, "daguq: queue big:") {
		t.Errorf("no bar on the terminal, or progress lines: %q", stderr)
	}
}
