package main

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"time"
)

// The shell-glue file queue from the original Dagu discussion: a producer
// step appends with `echo "$MSG" >> file`, a consumer step takes the head
// line and rewrites the file without it:
//
//	head -n 1 file; tail -n +2 file > temp; mv temp file
//
// Every consumer uses the same temp name, as copies of one DAG would. A
// batch of N is `head -n N` and `tail -n +N+1`.
const shellName = "shell glue"

// shellPad makes the shell's lines the same 1 KiB as everyone's bodies.
var shellPad = string(padding)

const (
	// shellProduceSingle is one `echo "$MSG" >> q` per message; $1 first id, $2 end.
	shellProduceSingle = `i=$1
while [ "$i" -lt "$2" ]; do
  MSG=$(printf '%010d-%s' "$i" "$PAD")
  echo "$MSG" >> q
  i=$((i + 1))
done`
	// shellProduceBulk appends every message under one redirection.
	shellProduceBulk = `i=$1
while [ "$i" -lt "$2" ]; do
  printf '%010d-%s\n' "$i" "$PAD"
  i=$((i + 1))
done >> q`
	// shellConsume: $1 batch, $2 this consumer's delivery log (the handler).
	// It runs until q is empty and the producer has left q.done.
	shellConsume = `while [ -s q ] || [ ! -e q.done ]; do
  head -n "$1" q >> "$2"
  tail -n +"$(($1 + 1))" q > temp
  mv temp q
done`
)

// shellRun is the outcome of one shell-glue drain.
type shellRun struct {
	rate            float64
	delivered       int
	unique, doubled int
	lost            int
	remaining       int
	corrupt         int // delivered lines that are not a whole message
	errors          int // lines the consumers wrote to stderr (mv races)
	timedOut        bool
}

func shellCmd(ctx context.Context, dir, script string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, "sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), "PAD="+shellPad, "LC_ALL=C")
	return cmd
}

// shellProduce appends n messages from id 0, one per echo or all at once,
// and returns messages per second.
func shellProduce(dir string, n int, bulk bool) (float64, error) {
	script := shellProduceSingle
	if bulk {
		script = shellProduceBulk
	}
	start := time.Now()
	if out, err := shellCmd(context.Background(), dir, script, "0", strconv.Itoa(n)).CombinedOutput(); err != nil {
		return 0, fmt.Errorf("shell producer: %v: %s", err, out)
	}
	return float64(n) / time.Since(start).Seconds(), nil
}

// shellDrain runs procs consumers at batch size batch against dir/q holding
// n messages (with producer, the producer runs at the same time, one echo
// per message). Consumers are killed after limit.
func shellDrain(dir string, n, procs, batch int, producer bool, limit time.Duration, logw io.Writer) (shellRun, error) {
	var r shellRun
	ctx, cancel := context.WithTimeout(context.Background(), limit)
	defer cancel()
	stderr := &bytes.Buffer{}
	start := time.Now()
	var prod *exec.Cmd
	if producer {
		os.Remove(filepath.Join(dir, "q.done"))
		if err := os.WriteFile(filepath.Join(dir, "q"), nil, 0o600); err != nil {
			return r, err
		}
		prod = shellCmd(ctx, dir, shellProduceSingle+"\n: > q.done", "0", strconv.Itoa(n))
		prod.Stderr = stderr
		if err := prod.Start(); err != nil {
			return r, err
		}
	} else if err := os.WriteFile(filepath.Join(dir, "q.done"), nil, 0o600); err != nil {
		return r, err
	}
	var cmds []*exec.Cmd
	for i := range procs {
		c := shellCmd(ctx, dir, shellConsume, strconv.Itoa(batch), fmt.Sprintf("out.%d", i))
		c.Stderr = stderr
		if err := c.Start(); err != nil {
			return r, err
		}
		cmds = append(cmds, c)
	}
	for _, c := range cmds {
		c.Wait()
	}
	if prod != nil {
		prod.Wait()
	}
	elapsed := time.Since(start)
	r.timedOut = ctx.Err() != nil
	r.errors = bytes.Count(stderr.Bytes(), []byte("\n"))
	if stderr.Len() > 0 {
		fmt.Fprintf(logw, "shell glue, %d consumers, batch %d: %d stderr lines, first: %s\n",
			procs, batch, r.errors, firstLine(stderr.Bytes()))
	}

	t := newTally(n)
	for i := range procs {
		path := filepath.Join(dir, fmt.Sprintf("out.%d", i))
		f, err := os.Open(path)
		if err != nil {
			continue // this consumer never delivered anything
		}
		sc := bufio.NewScanner(f)
		sc.Buffer(make([]byte, 1<<20), 1<<20)
		for sc.Scan() {
			line := sc.Bytes()
			r.delivered++
			if len(line) != bodySize-1 || bodyID(line) < 0 {
				r.corrupt++
				continue
			}
			t.add(bodyID(line))
		}
		f.Close()
		os.Remove(path)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "q")); err == nil {
		r.remaining = bytes.Count(b, []byte("\n"))
	}
	r.unique, r.doubled = t.summary()
	r.lost = max(n-r.unique-r.remaining, 0)
	r.rate = float64(r.unique) / elapsed.Seconds() // distinct messages handled
	return r, nil
}

func firstLine(b []byte) string {
	if i := bytes.IndexByte(b, '\n'); i >= 0 {
		return string(b[:i])
	}
	return string(b)
}
