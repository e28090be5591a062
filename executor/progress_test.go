package executor

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

// recordedProgress keeps what an executor reported.
type recordedProgress struct {
	mu       sync.Mutex
	totals   []int64
	units    []string
	last     int64
	sets     int
	finished int
}

func (p *recordedProgress) Start(total int64, unit string) {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.totals, p.units = append(p.totals, total), append(p.units, unit)
}

func (p *recordedProgress) Set(done int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if done < p.last {
		panic(fmt.Sprintf("progress went back from %d to %d", p.last, done))
	}
	p.last, p.sets = done, p.sets+1
}

func (p *recordedProgress) Finish() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.finished++
}

// enqueue --file reports the bytes read against the file's size; from a
// reader that is no file, against an unknown total.
func TestEnqueueReportsProgress(t *testing.T) {
	t.Parallel()
	te := setup(t)
	var lines strings.Builder
	for i := range 5000 {
		fmt.Fprintf(&lines, "{\"n\":%d}\n", i)
	}
	os.WriteFile(filepath.Join(te.dir, "in.jsonl"), []byte(lines.String()), 0o644)
	for _, tc := range []struct {
		name      string
		file      string
		stdin     bool
		wantTotal int64
	}{
		{"a file", "in.jsonl", false, int64(lines.Len())},
		{"a pipe", "-", true, -1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p := &recordedProgress{}
			e := te.exec(KindEnqueue, map[string]any{"queue": "p" + tc.file, "file": tc.file}, nil)
			if tc.stdin {
				e.(StdinSetter).SetStdin(strings.NewReader(lines.String()))
			}
			e.(ProgressSetter).SetProgress(p)
			r := runExecutor(t, e, context.Background())
			wantExit(t, r.err, 0)
			if s := enqueueSummary(t, r); s.Enqueued != 5000 {
				t.Fatalf("summary %+v", s)
			}
			if len(p.totals) != 1 || p.totals[0] != tc.wantTotal || p.units[0] != "bytes" || p.last != int64(lines.Len()) || p.finished != 1 {
				t.Errorf("progress: totals %v units %v, last %d of %d, finished %d", p.totals, p.units, p.last, lines.Len(), p.finished)
			}
			if r.stderr != "" {
				t.Errorf("stderr: %q", r.stderr)
			}
		})
	}
}

// consume reports the messages finished against the ready count at the
// start, and prints no progress lines then.
func TestConsumeReportsProgress(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 30)
	p := &recordedProgress{}
	e := te.exec(KindQueue, map[string]any{"queue": "q", "run": "cat >/dev/null; sleep 0.1", "batch_size": 5, "progress_interval": "50ms"}, nil)
	e.(ProgressSetter).SetProgress(p)
	r := runExecutor(t, e, context.Background())
	wantExit(t, r.err, 0)
	if s := consumeSummary(t, r); s.Acked != 30 {
		t.Fatalf("summary %+v", s)
	}
	if len(p.totals) != 1 || p.totals[0] != 30 || p.units[0] != "messages" || p.last != 30 || p.finished != 1 {
		t.Errorf("progress: totals %v units %v, last %d, finished %d", p.totals, p.units, p.last, p.finished)
	}
	if strings.Contains(r.stderr, "messages/s") {
		t.Errorf("a progress line beside the bar: %q", r.stderr)
	}
}
