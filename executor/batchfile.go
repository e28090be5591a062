package executor

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

	"github.com/daguq/daguq/queuestore"
)

// batchFiles are the batch file and the result file of one running batch,
// with the buffers that write the batch file. They are rewritten in place
// for the next batch: creating and removing two files per batch cost more
// than the claim of a batch of 10.
type batchFiles struct {
	batch, result string
	w             *bufio.Writer
	enc           *lineEncoder
}

func newBatchFiles(batch, result string) *batchFiles {
	return &batchFiles{batch: batch, result: result, w: bufio.NewWriterSize(nil, 64<<10), enc: newLineEncoder()}
}

// openRewrite opens path to be rewritten from its start: the file of the
// batch before, or a new one. A symbolic link a handler left in its place is
// replaced, not followed. The caller truncates it to what it wrote, never to
// zero before writing: ext4 flushes a file truncated to zero when it is
// closed (auto_da_alloc), which costs more than writing it.
func openRewrite(path string) (*os.File, error) {
	const flags = os.O_CREATE | os.O_WRONLY | syscall.O_NOFOLLOW
	f, err := os.OpenFile(path, flags, 0o600)
	if err != nil {
		os.Remove(path)
		f, err = os.OpenFile(path, flags|os.O_EXCL, 0o600)
	}
	return f, err
}

// finishRewrite cuts f to the n bytes just written and closes it.
func finishRewrite(f *os.File, n int64) error {
	err := f.Truncate(n)
	return errors.Join(err, f.Close())
}

// emptyFile makes path an empty file, touching it only when it is not.
func emptyFile(path string) error {
	if fi, err := os.Lstat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil
	}
	f, err := openRewrite(path)
	if err != nil {
		return err
	}
	return finishRewrite(f, 0)
}

// writeBatch writes the batch file: the batch as JSON Lines.
func (b *batchFiles) writeBatch(batch []claimed) error {
	f, err := openRewrite(b.batch)
	if err != nil {
		return err
	}
	cw := &countingWriter{w: f}
	b.w.Reset(cw)
	for _, m := range batch {
		if err := b.enc.write(b.w, m.msg); err != nil {
			f.Close()
			return err
		}
	}
	if err := b.w.Flush(); err != nil {
		f.Close()
		return err
	}
	b.w.Reset(nil)
	return finishRewrite(f, cw.n)
}

// lineEncoder writes a message as the line json.Encoder (HTML escaping
// off) writes for claimedMessage, reading the body once: claimedMessage
// validates it, and the encoder then validates and compacts it again.
type lineEncoder struct {
	env  bytes.Buffer
	enc  *json.Encoder // into env
	body bytes.Buffer
}

// plainJSONString reports a JSON string without escapes or control
// characters: valid JSON that compacting leaves as it is, found with one
// quick pass instead of the JSON scanner's.
func plainJSONString(b []byte) bool {
	if len(b) < 2 || b[0] != '"' || b[len(b)-1] != '"' {
		return false
	}
	for _, c := range b[1 : len(b)-1] {
		if c == '"' || c == '\\' || c < 0x20 {
			return false
		}
	}
	return true
}

// bodySlot is the body the envelope is encoded with: cut off and replaced.
var bodySlot = []byte("null}\n")

func newLineEncoder() *lineEncoder {
	e := &lineEncoder{}
	e.enc = json.NewEncoder(&e.env)
	e.enc.SetEscapeHTML(false)
	return e
}

func (e *lineEncoder) write(w io.Writer, m queuestore.Message) error {
	body := m.Body
	if !plainJSONString(body) { // plain strings are what `enqueue --raw` stores
		e.body.Reset()
		if json.Compact(&e.body, body) != nil {
			// Stored by something other than daguq's enqueue: pass it as
			// text, as claimedMessage does.
			s, err := json.Marshal(string(body))
			if err != nil {
				return err
			}
			e.body.Reset()
			e.body.Write(s)
		}
		body = e.body.Bytes()
	}
	e.env.Reset()
	if err := e.enc.Encode(ClaimedMessage{ID: m.ID, Queue: m.Queue, Priority: m.Priority, Attempt: m.Attempt,
		Group: m.Group, EnqueuedAt: m.EnqueuedAt, Body: json.RawMessage(bodySlot[:4])}); err != nil {
		return err
	}
	env := e.env.Bytes()
	if _, err := w.Write(env[:len(env)-len(bodySlot)]); err != nil {
		return err
	}
	if _, err := w.Write(body); err != nil {
		return err
	}
	_, err := w.Write(bodySlot[4:])
	return err
}

// countingWriter counts the bytes written through it.
type countingWriter struct {
	w *os.File
	n int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.w.Write(p)
	c.n += int64(n)
	return n, err
}

// readResultFile reads the ids a handler reports as failed: one per line,
// a bare id or a JSON object {"id": N, "error": "text"}. Blank lines are
// skipped; an id not in the batch is an error.
func readResultFile(path string, batch []claimed) (map[int64]string, error) {
	if fi, err := os.Stat(path); err == nil && fi.Mode().IsRegular() && fi.Size() == 0 {
		return nil, nil // the common case: nothing failed
	}
	data, err := os.ReadFile(path)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	inBatch := make(map[int64]bool, len(batch))
	for _, m := range batch {
		inBatch[m.msg.ID] = true
	}
	failed := map[int64]string{}
	for i, line := range bytes.Split(data, []byte("\n")) {
		line = bytes.TrimSpace(line)
		if len(line) == 0 {
			continue
		}
		var id int64
		var text string
		if line[0] == '{' {
			var r struct {
				ID    json.Number `json:"id"`
				Error string      `json:"error"`
			}
			dec := json.NewDecoder(bytes.NewReader(line))
			dec.UseNumber()
			if err := dec.Decode(&r); err != nil {
				return nil, fmt.Errorf("line %d: want an id or {\"id\": N, \"error\": \"text\"}: %v", i+1, err)
			}
			id, err = r.ID.Int64()
			if err != nil {
				return nil, fmt.Errorf("line %d: id %q is not an integer", i+1, r.ID)
			}
			text = r.Error
		} else {
			id, err = strconv.ParseInt(string(line), 10, 64)
			if err != nil {
				return nil, fmt.Errorf("line %d: want an id or {\"id\": N, \"error\": \"text\"}, got %s", i+1, preview(line))
			}
		}
		if !inBatch[id] {
			return nil, fmt.Errorf("line %d: message %d is not in this batch", i+1, id)
		}
		if len(text) > errorTail {
			text = text[:errorTail]
		}
		failed[id] = text
	}
	return failed, nil
}
