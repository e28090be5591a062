package executor

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/daguq/daguq/internal/proctree"
)

// Environment variables a handler gets, besides the step's own.
const (
	EnvQueue      = "DAGUQ_QUEUE"
	EnvBatchID    = "DAGUQ_BATCH_ID"
	EnvBatchSize  = "DAGUQ_BATCH_SIZE"
	EnvAttempt    = "DAGUQ_ATTEMPT"
	EnvBatchFile  = "DAGUQ_BATCH_FILE"
	EnvResultFile = "DAGUQ_RESULT_FILE"
)

// errorTail is how much of a failed handler's output is kept as the
// messages' last error.
const errorTail = 1024

// checkProgram fails fast when the command's program cannot be found (in
// dir, the step's directory), so that a typo does not spend every
// message's attempts.
func (c *queueConfig) checkProgram(dir string) error {
	if c.runArgv != nil {
		return checkProgram(dir, "run", c.runArgv[0])
	}
	if err := checkProgram(dir, "shell", c.shellArgv[0]); err != nil {
		return err
	}
	// A command line that starts with a plain path (`./send.sh --fast`):
	// check that file too. Anything with shell syntax is left to the shell.
	if words := strings.Fields(c.runLine); len(words) > 0 &&
		strings.ContainsRune(words[0], '/') && !strings.ContainsAny(words[0], "$`'\"\\*?[{~;|&<>()=") {
		return checkProgram(dir, "run", words[0])
	}
	return nil
}

func checkProgram(dir, field, prog string) error {
	if strings.ContainsRune(prog, '/') {
		info, err := os.Stat(resolvePath(dir, prog))
		switch {
		case err != nil:
			return badKey(field, fmt.Errorf("handler program %q: %w", prog, err))
		case info.IsDir() || info.Mode()&0o111 == 0:
			return badKey(field, fmt.Errorf("handler program %q is not an executable file", prog))
		}
		return nil
	}
	if _, err := exec.LookPath(prog); err != nil {
		return badKey(field, fmt.Errorf("handler program %q not found in PATH", prog))
	}
	return nil
}

// handlerRuns is what the handler runs of one consumer share, made once by
// prepare: per batch only the batch's own variables and files change.
type handlerRuns struct {
	starter *proctree.Starter // keeps the supervisors between batches
	env     []string          // the environment before the batch's variables
	files   chan *batchFiles  // one pair per running batch, reused
	// The handler program last found in PATH.
	lookedUp, path string
	mu             sync.Mutex
}

// prepare makes the run's temporary directory, the script file, the batch
// files and the supervisor pool.
func (c *consumer) prepare() error {
	dir, unlock, err := newRunDir()
	if err != nil {
		return fmt.Errorf("temporary directory for batch files: %w", err)
	}
	c.tmpDir = dir
	runs := &handlerRuns{starter: proctree.NewStarter(dir), files: make(chan *batchFiles, c.cfg.Concurrency),
		env: append(os.Environ(), c.e.spec.Env...)}
	for i := range c.cfg.Concurrency {
		runs.files <- newBatchFiles(filepath.Join(dir, "batch-"+strconv.Itoa(i)+".jsonl"),
			filepath.Join(dir, "result-"+strconv.Itoa(i)+".txt"))
	}
	c.runs = runs
	c.cleanup = func() {
		runs.starter.Close()
		os.RemoveAll(dir)
		unlock()
	}
	if c.cfg.Script != "" {
		c.script = filepath.Join(dir, "handler.sh")
		if err := os.WriteFile(c.script, []byte(c.cfg.Script), 0o700); err != nil {
			c.cleanup()
			return fmt.Errorf("script: write handler file: %w", err)
		}
	}
	return nil
}

// lookPath finds the handler program as os/exec does; a name found in PATH
// is looked up again only when it fails to start.
func (r *handlerRuns) lookPath(name string) (string, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == r.lookedUp {
		return r.path, nil
	}
	lookup := exec.Command(name)
	if lookup.Err != nil {
		return "", lookup.Err
	}
	if !strings.ContainsRune(name, '/') {
		r.lookedUp, r.path = name, lookup.Path
	}
	return lookup.Path, nil
}

// forget drops the program found for name.
func (r *handlerRuns) forget(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if name == r.lookedUp {
		r.lookedUp, r.path = "", ""
	}
}

// handlerResult is how one handler run ended.
type handlerResult struct {
	exitCode int  // 0 success; -1 killed by a signal
	stopped  bool // Kill arrived while it ran
	timedOut bool // batch_timeout killed it
	startErr error
	tail     string // the end of its output
}

// handle runs the handler on one batch and finishes the batch's messages.
func (c *consumer) handle(ctx context.Context, batch []claimed) {
	first := batch[0]
	batchID := fmt.Sprintf("%d-%d", first.lease.ID, first.msg.ID)
	attempt := 0
	for _, m := range batch {
		attempt = max(attempt, m.msg.Attempt)
	}
	files := <-c.runs.files
	defer func() { c.runs.files <- files }()
	batchFile, resultFile := files.batch, files.result

	if c.e.isStopped() {
		c.finish(ctx, batch, finishRelease, "", nil)
		return
	}
	err := files.writeBatch(batch)
	if err == nil {
		err = emptyFile(resultFile)
	}
	if err != nil {
		c.finish(ctx, batch, finishRelease, "", nil)
		c.setFatal(fmt.Errorf("write batch files: %w", err))
		return
	}
	values := map[string]string{
		"batch_file": batchFile, "result_file": resultFile, "batch_id": batchID,
		"queue": c.cfg.Queue, "attempt": strconv.Itoa(attempt), "batch_size": strconv.Itoa(len(batch)),
	}
	env := append(c.runs.env[:len(c.runs.env):len(c.runs.env)],
		EnvQueue+"="+c.cfg.Queue,
		EnvBatchID+"="+batchID,
		EnvBatchSize+"="+strconv.Itoa(len(batch)),
		EnvAttempt+"="+strconv.Itoa(attempt),
		EnvBatchFile+"="+batchFile,
		EnvResultFile+"="+resultFile,
	)
	res := c.runHandler(c.handlerArgv(values), env, batchFile)

	switch {
	case res.startErr != nil:
		c.finish(ctx, batch, finishNack, "start handler: "+res.startErr.Error(), nil)
	case res.exitCode == 0:
		failed, err := readResultFile(resultFile, batch)
		if err != nil {
			fmt.Fprintf(c.stderr, "daguq: batch of queue %s: result file %s: %v: the whole batch is nacked\n", c.cfg.Queue, resultFile, err)
			c.finish(ctx, batch, finishNack, "result file: "+err.Error(), nil)
			return
		}
		ok, bad := batch, []claimed(nil)
		if len(failed) > 0 {
			ok = nil
			for _, m := range batch {
				if _, f := failed[m.msg.ID]; f {
					bad = append(bad, m)
				} else {
					ok = append(ok, m)
				}
			}
		}
		if len(ok) > 0 {
			c.finish(ctx, ok, finishAck, "", nil)
		}
		if len(bad) > 0 {
			c.finish(ctx, bad, finishNack, "failed (result file)", failed)
		}
	case res.timedOut:
		c.finish(ctx, batch, finishNack, fmt.Sprintf("batch_timeout %s exceeded: handler killed%s", c.cfg.BatchTimeout, tailText(res.tail)), nil)
	case res.stopped:
		c.finish(ctx, batch, finishRelease, "", nil)
	default:
		status := "exit status " + strconv.Itoa(res.exitCode)
		if res.exitCode < 0 {
			status = "killed by a signal"
		}
		c.finish(ctx, batch, finishNack, "handler "+status+tailText(res.tail), nil)
	}
}

func tailText(t string) string {
	t = strings.TrimSpace(t)
	if t == "" {
		return ""
	}
	return ": " + t
}

// handlerArgv builds the handler's command with the placeholders filled.
func (c *consumer) handlerArgv(values map[string]string) []string {
	switch {
	case c.cfg.runArgv != nil:
		var r *strings.Replacer // only for words that may hold a placeholder
		argv := make([]string, len(c.cfg.runArgv))
		for i, w := range c.cfg.runArgv {
			if strings.IndexByte(w, '{') >= 0 {
				if r == nil {
					r = placeholderReplacer(values, func(s string) string { return s })
				}
				w = r.Replace(w)
			}
			argv[i] = w
		}
		return argv
	case c.script != "":
		return append(append([]string(nil), c.cfg.shellArgv...), c.script)
	}
	r := placeholderReplacer(values, shellQuote)
	return append(append([]string(nil), c.cfg.shellArgv...), "-c", r.Replace(c.cfg.runLine))
}

// Placeholders lists the placeholders `run` may hold.
var Placeholders = []string{"batch_file", "result_file", "batch_id", "queue", "attempt", "batch_size"}

func placeholderReplacer(values map[string]string, quote func(string) string) *strings.Replacer {
	var pairs []string
	for _, p := range Placeholders {
		pairs = append(pairs, "{"+p+"}", quote(values[p]))
	}
	return strings.NewReplacer(pairs...)
}

// shellQuote quotes s as one word for a POSIX shell.
func shellQuote(s string) string {
	if s != "" && strings.Trim(s, "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_./:=+,") == "" {
		return s
	}
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// runHandler runs one handler as a process tree (internal/proctree): on
// Linux under a small supervisor that ends every process the handler
// started when the handler exits, when it is stopped, and when daguq itself
// dies. The batch file is its stdin, its output goes to the step's stderr.
// It returns when no process of the tree is left: on Kill the handler's
// group gets Kill's signal, on batch_timeout SIGTERM, and the whole tree
// gets SIGKILL after grace in both cases.
func (c *consumer) runHandler(argv []string, env []string, stdinFile string) handlerResult {
	stdin, err := os.Open(stdinFile)
	if err != nil {
		return handlerResult{startErr: err}
	}
	defer stdin.Close()
	// Our own pipe for the handler's output, so that no process but the
	// tree's holds its write end: the copy ends when the tree is gone.
	outR, outW, err := os.Pipe()
	if err != nil {
		return handlerResult{startErr: err}
	}
	tail := &tailBuffer{max: errorTail}
	copied := make(chan struct{})
	go func() {
		defer close(copied)
		// A small buffer: io.Copy would take 32 KiB per batch (*os.File's
		// WriteTo falls back to it), for output that is mostly empty.
		buf := make([]byte, 4<<10)
		io.CopyBuffer(&teeWriter{a: c.stderr, b: tail}, struct{ io.Reader }{outR}, buf)
	}()
	var tree *proctree.Tree
	path, err := c.runs.lookPath(argv[0])
	if err == nil {
		tree, err = c.runs.starter.Start(proctree.Cmd{Path: path, Args: argv, Dir: c.e.spec.Dir, Env: env,
			Stdin: stdin, Output: outW})
	}
	outW.Close()
	if err != nil {
		c.runs.forget(argv[0])
		outR.Close()
		<-copied
		return handlerResult{startErr: err}
	}
	c.e.addTree(tree)
	defer c.e.removeTree(tree)

	done := make(chan int, 1)
	go func() { done <- tree.Wait() }()

	var res handlerResult
	var timeout <-chan time.Time
	if c.cfg.BatchTimeout > 0 {
		t := time.NewTimer(c.cfg.BatchTimeout)
		defer t.Stop()
		timeout = t.C
	}
	var killAfter <-chan time.Time
	graceTimer := time.NewTimer(time.Hour)
	graceTimer.Stop()
	defer graceTimer.Stop()
	startGrace := func() {
		if killAfter == nil {
			graceTimer.Reset(c.cfg.Grace)
			killAfter = graceTimer.C
		}
	}
	stopped := c.e.stop.Stopped()
	for {
		select {
		case code := <-done:
			// The tree is gone, and the copy ends with it. Without a
			// supervisor (not Linux) a process that left the handler's
			// group may still hold the pipe: its output is cut short.
			select {
			case <-copied:
			case <-time.After(outputDrainTime):
				outR.Close()
				<-copied
			}
			outR.Close()
			res.tail = tail.String()
			res.exitCode = code
			return res
		case <-stopped:
			stopped = nil
			res.stopped = true // Kill has signalled the tree
			startGrace()
		case <-timeout:
			timeout = nil
			res.timedOut = true
			fmt.Fprintf(c.stderr, "daguq: batch of queue %s ran past batch_timeout %s: sending SIGTERM to the handler\n", c.cfg.Queue, c.cfg.BatchTimeout)
			tree.Signal(syscall.SIGTERM)
			startGrace()
		case <-killAfter:
			killAfter = nil
			tree.Signal(syscall.SIGKILL)
		}
	}
}

// outputDrainTime is how long output is still copied after the tree has
// ended, from processes that escaped it (without a supervisor only).
const outputDrainTime = time.Second

// tailBuffer keeps the last max bytes written to it.
type tailBuffer struct {
	max int
	buf []byte
}

func (t *tailBuffer) Write(p []byte) (int, error) {
	t.buf = append(t.buf, p...)
	if len(t.buf) > t.max {
		t.buf = append(t.buf[:0], t.buf[len(t.buf)-t.max:]...)
	}
	return len(p), nil
}

func (t *tailBuffer) String() string { return string(t.buf) }

// teeWriter writes to a and b; an error of a does not stop b.
type teeWriter struct {
	a, b interface{ Write([]byte) (int, error) }
}

func (t *teeWriter) Write(p []byte) (int, error) {
	t.b.Write(p)
	t.a.Write(p)
	return len(p), nil
}
