package executor

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/daguq/daguq/internal/stopdeadline"
	"github.com/daguq/daguq/queuestore"
)

// maxSummaryIDs caps the ids listed in an enqueue summary; the counts stay exact.
const maxSummaryIDs = 1000

// maxLineBytes is the longest JSON Lines line accepted.
const maxLineBytes = 64 << 20

// enqueueExecutor is the `enqueue` step.
type enqueueExecutor struct {
	spec   Spec
	cfg    enqueueConfig
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
	// progress, when set, is told the bytes of the file read.
	progress Progress
	// stop ends the enqueue's store call 1.5 s after Kill (no grace: there
	// is no handler to wait for), so a stop while the database does not
	// answer returns soon.
	stop *stopdeadline.Deadline

	exitStatus
}

var (
	_ Executor    = (*enqueueExecutor)(nil)
	_ StdinSetter = (*enqueueExecutor)(nil)
)

func newEnqueueExecutor(spec Spec, cfg enqueueConfig) *enqueueExecutor {
	return &enqueueExecutor{spec: spec, cfg: cfg, stdin: os.Stdin, stdout: io.Discard, stderr: io.Discard, stop: stopdeadline.New(0)}
}

func (e *enqueueExecutor) SetStdout(w io.Writer) { e.stdout = w }
func (e *enqueueExecutor) SetStderr(w io.Writer) { e.stderr = w }

// SetStdin sets what `file: "-"` reads (default os.Stdin).
func (e *enqueueExecutor) SetStdin(r io.Reader) { e.stdin = r }

// Kill gives the enqueue, one transaction that commits whole or not at
// all, until the stop deadline (1.5 s) to finish: one that finishes is
// reported as usual; one the database does not take by then (PostgreSQL
// down, SQLite's write lock held) ends with exit status 4, saying what
// it left in the store. Kill may be called many times and before Run.
func (e *enqueueExecutor) Kill(os.Signal) error {
	e.stop.Stop()
	return nil
}

// EnqueueSummary is what an enqueue step prints on stdout.
type EnqueueSummary struct {
	Queue      string `json:"queue"`
	Enqueued   int    `json:"enqueued"`
	Duplicates int    `json:"duplicates"`
	// IDs of the stored messages in input order (duplicates left out), at
	// most 1000; IDsTruncated tells that more were stored.
	IDs          []int64 `json:"ids"`
	IDsTruncated bool    `json:"ids_truncated,omitempty"`
}

// Run stores the configured messages, all or none, and prints a summary.
func (e *enqueueExecutor) Run(ctx context.Context) error { return e.record(e.run(ctx)) }

func (e *enqueueExecutor) run(ctx context.Context) error {
	now := time.Now()
	msgs, err := e.messages(now)
	if err != nil {
		return invalid(err)
	}
	path, _ := ResolveDB(e.cfg.DB, specGetenv(e.spec))
	store, err := OpenStore(resolvePath(e.spec.Dir, path), StoreOptions{LockWaitNotice: e.stderr})
	if err != nil {
		return err
	}
	defer store.Close()
	defer context.AfterFunc(ctx, func() { e.Kill(syscall.SIGTERM) })()
	storeCtx, cancelStore := e.stop.Context(ctx)
	defer cancelStore()
	res, err := store.Enqueue(storeCtx, msgs...)
	if err != nil {
		if stopdeadline.Passed(storeCtx) {
			return stoppedError(fmt.Errorf("enqueue to %q stopped: the database did not take it within %s of the stop: %s", e.cfg.Queue, e.stop.Bound(), EnqueueOutcome(err)))
		}
		return fmt.Errorf("enqueue to %q: %s: %w", e.cfg.Queue, EnqueueOutcome(err), err)
	}
	sum := EnqueueSummary{Queue: e.cfg.Queue, Enqueued: res.Enqueued, Duplicates: res.Duplicates, IDs: []int64{}}
	for _, id := range res.IDs {
		if id == 0 {
			continue
		}
		if len(sum.IDs) == maxSummaryIDs {
			sum.IDsTruncated = true
			break
		}
		sum.IDs = append(sum.IDs, id)
	}
	return writeJSON(e.stdout, sum)
}

// EnqueueOutcome says what a failed enqueue left in the store: nothing, or,
// when the connection broke during the commit, all or nothing.
func EnqueueOutcome(err error) string {
	if errors.Is(err, queuestore.ErrOutcomeUnknown) {
		return "the messages were stored all or none, which is not known: look before enqueueing them again"
	}
	return "nothing was enqueued"
}

// messages builds every message to store, or the first error naming its
// source (the field, or the file line).
func (e *enqueueExecutor) messages(now time.Time) ([]queuestore.NewMessage, error) {
	base := queuestore.NewMessage{
		Queue:       e.cfg.Queue,
		Priority:    e.cfg.Priority,
		Group:       e.cfg.Group,
		MaxAttempts: e.cfg.MaxAttempts,
		EnqueuedBy:  dagRun(specGetenv(e.spec)),
	}
	switch {
	case e.cfg.Delay > 0:
		base.NotBefore = now.Add(e.cfg.Delay)
	case e.cfg.NotBefore != "":
		t, err := parseNotBefore(e.cfg.NotBefore, now)
		if err != nil {
			return nil, err
		}
		base.NotBefore = t
	}
	var msgs []queuestore.NewMessage
	if e.cfg.File != "" {
		var r io.Reader
		name := e.cfg.File
		if name == "-" {
			r, name = e.stdin, "standard input"
		} else {
			f, err := os.Open(resolvePath(e.spec.Dir, e.cfg.File))
			if err != nil {
				return nil, badKey("file", err)
			}
			defer f.Close()
			r = f
		}
		if e.progress != nil {
			e.progress.Start(fileSize(r), "bytes")
			r = &progressReader{r: r, p: e.progress}
		}
		var err error
		msgs, err = readJSONLines(r, base, e.cfg.Envelope, e.cfg.Raw, now)
		if e.progress != nil {
			e.progress.Finish()
		}
		if err != nil {
			return nil, &FieldError{Field: "file", Err: err, say: func(n Names) string {
				return n.Key("file") + " " + name + ": " + Text(err, n)
			}}
		}
	} else {
		for _, body := range e.cfg.messages {
			m := base
			m.Body = body
			msgs = append(msgs, m)
		}
	}
	if e.cfg.DedupeKey != "" {
		for i := range msgs {
			if msgs[i].DedupeKey != "" {
				continue // an envelope's own key
			}
			if len(msgs) == 1 {
				msgs[i].DedupeKey = e.cfg.DedupeKey
			} else {
				msgs[i].DedupeKey = e.cfg.DedupeKey + "-" + strconv.Itoa(i)
			}
		}
	}
	return msgs, nil
}

// envelope is one line of a JSON Lines file with `envelope: true`.
type envelope struct {
	Body        json.RawMessage `json:"body"`
	Priority    *int64          `json:"priority"`
	DedupeKey   string          `json:"dedupe_key"`
	Group       *string         `json:"group"`
	Delay       any             `json:"delay"`
	NotBefore   string          `json:"not_before"`
	MaxAttempts *int            `json:"max_attempts"`
}

// readJSONLines reads one message per line; blank lines are skipped. Any bad
// line fails the whole read, so that a bulk enqueue is all or nothing.
func readJSONLines(r io.Reader, base queuestore.NewMessage, withEnvelope, raw bool, now time.Time) ([]queuestore.NewMessage, error) {
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 64<<10), maxLineBytes)
	var msgs []queuestore.NewMessage
	for lineNo := 1; sc.Scan(); lineNo++ {
		line := bytes.TrimRight(sc.Bytes(), "\r")
		if len(bytes.TrimSpace(line)) == 0 {
			continue
		}
		if err := checkUTF8(line); err != nil {
			return nil, &lineError{line: lineNo, err: err}
		}
		m := base
		var err error
		switch {
		case raw:
			m.Body, err = json.Marshal(string(line))
		case withEnvelope:
			err = applyEnvelope(&m, line, now)
		default:
			m.Body, err = compactJSON(line)
		}
		if err != nil {
			return nil, &lineError{line: lineNo, err: err}
		}
		msgs = append(msgs, m)
	}
	if err := sc.Err(); err != nil {
		if errors.Is(err, bufio.ErrTooLong) {
			return nil, &lineError{line: len(msgs) + 1, err: fmt.Errorf("longer than %d bytes", maxLineBytes)}
		}
		return nil, err
	}
	return msgs, nil
}

// lineError is a refused line of a JSON Lines file.
type lineError struct {
	line int
	err  error
}

func (e *lineError) Error() string        { return e.spell(WithKeys{}) }
func (e *lineError) Unwrap() error        { return e.err }
func (e *lineError) spell(n Names) string { return fmt.Sprintf("line %d: %s", e.line, Text(e.err, n)) }

func applyEnvelope(m *queuestore.NewMessage, line []byte, now time.Time) error {
	dec := json.NewDecoder(bytes.NewReader(line))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	var env envelope
	if err := dec.Decode(&env); err != nil {
		return fmt.Errorf("envelope must be a JSON object with keys body, priority, dedupe_key, group, delay, not_before, max_attempts: %v", err)
	}
	if dec.More() {
		return errors.New("envelope: more than one JSON value on the line")
	}
	if len(env.Body) == 0 {
		return errors.New(`envelope: "body" is required`)
	}
	body, err := compactJSON(env.Body)
	if err != nil {
		return fmt.Errorf("envelope body: %w", err)
	}
	m.Body = body
	// The envelope's keys have the bounds of the step's keys (the field table).
	field := func(name string) Field { return mustField(KindEnqueue, name) }
	if env.Priority != nil {
		if err := field("priority").checkNumber(float64(*env.Priority), strconv.FormatInt(*env.Priority, 10)); err != nil {
			return fmt.Errorf("envelope %w", err)
		}
		m.Priority = *env.Priority
	}
	if env.DedupeKey != "" {
		m.DedupeKey = env.DedupeKey
	}
	if env.Group != nil {
		m.Group = *env.Group
	}
	if env.MaxAttempts != nil {
		if err := field("max_attempts").checkNumber(float64(*env.MaxAttempts), strconv.Itoa(*env.MaxAttempts)); err != nil {
			return fmt.Errorf("envelope %w", err)
		}
		m.MaxAttempts = *env.MaxAttempts
	}
	if env.Delay != nil && env.NotBefore != "" {
		return errors.New("envelope: delay and not_before are exclusive")
	}
	if env.Delay != nil {
		v := env.Delay
		if n, ok := v.(json.Number); ok {
			v = n.String()
		}
		d, err := durationHook(nil, durationType, v)
		if err != nil || d.(time.Duration) < 0 {
			return fmt.Errorf(`envelope delay must be a duration like "30s" or a number of seconds, got %s`, describeValue(env.Delay))
		}
		m.NotBefore = now.Add(d.(time.Duration))
	}
	if env.NotBefore != "" {
		t, err := parseNotBefore(env.NotBefore, now)
		if err != nil {
			return fmt.Errorf("envelope %w", err)
		}
		m.NotBefore = t
	}
	for _, key := range []struct{ name, value string }{{"dedupe_key", m.DedupeKey}, {"group", m.Group}} {
		if err := field(key.name).checkLength(key.value); err != nil {
			return fmt.Errorf("envelope %w", err)
		}
	}
	return nil
}

// writeJSON prints v as one line of JSON.
func writeJSON(w io.Writer, v any) error {
	b, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_, err = w.Write(append(b, '\n'))
	return err
}

// specGetenv looks a variable up in the step's env first, then the process's.
func specGetenv(spec Spec) func(string) string {
	return func(key string) string {
		for i := len(spec.Env) - 1; i >= 0; i-- {
			if k, v, ok := cutEnv(spec.Env[i]); ok && k == key {
				return v
			}
		}
		return os.Getenv(key)
	}
}

func cutEnv(kv string) (string, string, bool) {
	for i := 0; i < len(kv); i++ {
		if kv[i] == '=' {
			return kv[:i], kv[i+1:], true
		}
	}
	return "", "", false
}

// resolvePath makes a relative path relative to the step's directory.
func resolvePath(dir, path string) string {
	if dir == "" || path == "" || filepath.IsAbs(path) || isURL(path) {
		return path
	}
	return filepath.Join(dir, path)
}

func isURL(s string) bool {
	for i := 0; i < len(s) && i < 16; i++ {
		if s[i] == ':' {
			return len(s) > i+2 && s[i+1] == '/' && s[i+2] == '/'
		}
	}
	return false
}
