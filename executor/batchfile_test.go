package executor

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

// The batch file holds, line for line, what json.Encoder writes for
// claimedMessage: JSON bodies compacted, anything else as a JSON string.
func TestBatchFileLines(t *testing.T) {
	t.Parallel()
	at := time.Date(2026, 12, 2, 5, 0, 0, 123e6, time.UTC)
	var batch []claimed
	for i, body := range []string{
		`{"a": 1,` + "\n" + ` "b": "<x> & y"}`,
		`  [1, 2, 3]  `,
		`"text"`,
		`plain text with <html> & "quotes"` + "\n" + `and a newline`,
		"",
		"not \xff utf-8",
		`{"unterminated": `,
		`42`,
		`"plain string <b> & é"`,
		`"escaped \" quote"`,
		"\"a tab\there\"",
		"\"bad \xff utf-8\"",
		`"`,
		`""`,
	} {
		batch = append(batch, claimed{msg: queuestore.Message{ID: int64(i + 1), Queue: "q", Priority: int64(i), Attempt: i % 3,
			Group: "g", EnqueuedAt: at, Body: []byte(body)}})
	}
	var want bytes.Buffer
	enc := json.NewEncoder(&want)
	enc.SetEscapeHTML(false)
	for _, m := range batch {
		if err := enc.Encode(claimedMessage(m.msg)); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(t.TempDir(), "batch.jsonl")
	files := newBatchFiles(path, path+".result")
	// A longer batch first: the file is rewritten in place and cut to size.
	if err := files.writeBatch(append(batch, batch...)); err != nil {
		t.Fatal(err)
	}
	if err := files.writeBatch(batch); err != nil {
		t.Fatal(err)
	}
	got, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want.Bytes()) {
		t.Errorf("batch file:\n%s\nwant:\n%s", got, want.Bytes())
	}
}
