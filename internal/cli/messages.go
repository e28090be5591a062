package cli

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/daguq/daguq/queuestore"
)

// messageView is how peek and dlq list print a message with --json: one
// object per line, the body as the JSON it was enqueued as.
type messageView struct {
	ID          int64           `json:"id"`
	Queue       string          `json:"queue"`
	State       string          `json:"state"`
	Priority    int64           `json:"priority"`
	Attempt     int             `json:"attempt"`
	MaxAttempts int             `json:"max_attempts"`
	Group       string          `json:"group,omitempty"`
	DedupeKey   string          `json:"dedupe_key,omitempty"`
	EnqueuedAt  time.Time       `json:"enqueued_at"`
	VisibleAt   time.Time       `json:"visible_at"`
	LastError   string          `json:"last_error,omitempty"`
	Body        json.RawMessage `json:"body"`
}

func viewOf(m queuestore.Message) messageView {
	body := json.RawMessage(m.Body)
	if !json.Valid(m.Body) { // not enqueued by daguq: show it as a string
		body, _ = json.Marshal(string(m.Body))
	}
	return messageView{ID: m.ID, Queue: m.Queue, State: string(m.State), Priority: m.Priority,
		Attempt: m.Attempt, MaxAttempts: m.MaxAttempts, Group: m.Group, DedupeKey: m.DedupeKey,
		EnqueuedAt: m.EnqueuedAt, VisibleAt: m.VisibleAt, LastError: m.LastError, Body: body}
}

// printMessages writes msgs as JSON Lines, exactly, or as a table with every
// text made printable and bodies cut to bodyWidth characters.
func printMessages(w io.Writer, msgs []queuestore.Message, asJSON bool, withError bool) error {
	if asJSON {
		enc := json.NewEncoder(w)
		for _, m := range msgs {
			if err := enc.Encode(viewOf(m)); err != nil {
				return err
			}
		}
		return nil
	}
	if len(msgs) == 0 {
		_, err := fmt.Fprintln(w, "(none)")
		return err
	}
	tw := newTable(w)
	header := "ID\tPRIORITY\tATTEMPT\tGROUP\tENQUEUED\tVISIBLE\tBODY"
	if withError {
		header = "ID\tPRIORITY\tATTEMPT\tGROUP\tENQUEUED\tLAST_ERROR\tBODY"
	}
	fmt.Fprintln(tw, header)
	for _, m := range msgs {
		v := viewOf(m)
		group := cut(v.Group, 40)
		if group == "" {
			group = "-"
		}
		col := v.VisibleAt.Local().Format(time.DateTime)
		if withError {
			col = cutLeft(lastLine(v.LastError), 40)
			if col == "" {
				col = "-"
			}
		}
		fmt.Fprintf(tw, "%d\t%d\t%d/%d\t%s\t%s\t%s\t%s\n", v.ID, v.Priority, v.Attempt, v.MaxAttempts, group,
			v.EnqueuedAt.Local().Format(time.DateTime), col, cut(string(v.Body), bodyWidth))
	}
	return tw.Flush()
}

const bodyWidth = 60

// cut makes s printable (one line, no control characters) and shortens it to
// n characters, marking the cut with "...".
func cut(s string, n int) string {
	s = printable(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return string(r[:n-3]) + "..."
}

// cutLeft is cut from the other end: it keeps the last n characters, marking
// the cut with "..." in front.
func cutLeft(s string, n int) string {
	s = printable(s)
	if utf8.RuneCountInString(s) <= n {
		return s
	}
	r := []rune(s)
	return "..." + string(r[len(r)-(n-3):])
}

// lastLine is the last line of s that is not blank: where a handler's error
// output (a traceback, a log) says what went wrong.
func lastLine(s string) string {
	lines := strings.FieldsFunc(s, func(r rune) bool { return r == '\n' || r == '\r' })
	for i := len(lines) - 1; i >= 0; i-- {
		if line := strings.TrimSpace(lines[i]); line != "" {
			return line
		}
	}
	return ""
}
