package server

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"regexp"
	"slices"
	"strings"

	"github.com/daguq/daguq/executor"
	"github.com/daguq/daguq/queuestore"
)

// enqueueAnswer is what POST .../messages answers: the enqueue step's summary.
type enqueueAnswer struct {
	Queue      string  `json:"queue"`
	Enqueued   int     `json:"enqueued"`
	Duplicates int     `json:"duplicates"`
	IDs        []int64 `json:"ids"` // in input order; duplicates left out
}

// enqueue stores the posted messages, all or none: one message object, a
// JSON array of them, or JSON Lines (application/x-ndjson), each with the
// keys of the enqueue step's envelope (body, priority, delay, not_before,
// dedupe_key, group, max_attempts).
func (s *Server) enqueue(w http.ResponseWriter, r *http.Request) {
	q, err := queueParam(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	msgs, err := s.readMessages(r, q)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	res, err := s.store.Enqueue(r.Context(), msgs...)
	if err != nil {
		if errors.Is(err, queuestore.ErrInvalid) {
			text := strings.ReplaceAll(err.Error(), "queuestore: invalid input: ", "")
			s.fail(w, r, badRequest(envelopeField(text), "nothing was enqueued: %s", text))
			return
		}
		s.fail(w, r, fmt.Errorf("%s: %w", executor.EnqueueOutcome(err), err))
		return
	}
	ans := enqueueAnswer{Queue: q, Enqueued: res.Enqueued, Duplicates: res.Duplicates, IDs: make([]int64, 0, res.Enqueued)}
	for _, id := range res.IDs {
		if id != 0 {
			ans.IDs = append(ans.IDs, id)
		}
	}
	writeJSON(w, http.StatusCreated, ans)
}

// bodyErrorCode is 413 for a body over the limit, else 400.
func bodyErrorCode(err error) int {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return http.StatusRequestEntityTooLarge
	}
	return http.StatusBadRequest
}

// readMessages parses the request body into messages for queue; the first
// bad one fails the whole request, naming it and the field.
func (s *Server) readMessages(r *http.Request, queue string) ([]queuestore.NewMessage, error) {
	ndjson := false
	if ct := r.Header.Get("Content-Type"); ct != "" {
		mt, _, err := mime.ParseMediaType(ct)
		switch {
		case err != nil:
			return nil, &apiError{code: http.StatusUnsupportedMediaType, msg: fmt.Sprintf("Content-Type %q cannot be read", ct)}
		case mt == "application/x-ndjson" || mt == "application/jsonl" || mt == "application/jsonlines":
			ndjson = true
		case mt == "application/json":
		default:
			return nil, &apiError{code: http.StatusUnsupportedMediaType,
				msg: fmt.Sprintf("Content-Type %s: send application/json (a message object or an array of them) or application/x-ndjson (one per line)", mt)}
		}
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		return nil, err
	}
	now := s.opts.Now()
	var items [][]byte
	var names []string // how an error names each item
	if ndjson {
		for i, line := range bytes.Split(body, []byte("\n")) {
			if len(bytes.TrimSpace(line)) == 0 {
				continue
			}
			items = append(items, line)
			names = append(names, fmt.Sprintf("line %d", i+1))
		}
	} else {
		trimmed := bytes.TrimSpace(body)
		switch {
		case len(trimmed) == 0:
		case trimmed[0] == '[':
			var list []json.RawMessage
			if err := json.Unmarshal(trimmed, &list); err != nil {
				return nil, badRequest("", "the body is not a JSON array of message objects: %v", err)
			}
			for i, m := range list {
				items = append(items, m)
				names = append(names, fmt.Sprintf("message %d", i))
			}
		default:
			items, names = [][]byte{trimmed}, []string{"message"}
		}
	}
	if len(items) == 0 {
		return nil, badRequest("body", `no messages: send {"body": ...}, an array of such objects, or JSON Lines of them`)
	}
	msgs := make([]queuestore.NewMessage, len(items))
	for i, item := range items {
		m, err := executor.ParseEnvelope(queue, item, now)
		if err != nil {
			return nil, badRequest(envelopeField(envelopeText(err)), "%s: %s; nothing was enqueued", names[i], envelopeText(err))
		}
		msgs[i] = m
	}
	return msgs, nil
}

// envelopeText words the enqueue step's envelope errors for the API, where
// the message object is the envelope.
func envelopeText(err error) string {
	s := err.Error()
	s = strings.Replace(s, "envelope: ", "", 1)
	s = strings.Replace(s, "envelope must be", "must be", 1)
	return strings.Replace(s, "envelope ", "", 1)
}

// messageKeys are the keys of a message object.
var messageKeys = []string{"body", "priority", "dedupe_key", "group", "delay", "not_before", "max_attempts"}

// fieldPatterns find the key an error text is about: "priority must be",
// json's `struct field envelope.priority`, `unknown field "prio"`.
var fieldPatterns = []*regexp.Regexp{
	regexp.MustCompile(`(?:^|: )"?([a-z_]+)"? (?:must|is required|and )`),
	regexp.MustCompile(`struct field envelope\.([a-z_]+)`),
}

// envelopeField finds the message key an error is about, "" when none.
func envelopeField(text string) string {
	for _, re := range fieldPatterns {
		for _, m := range re.FindAllStringSubmatch(text, -1) {
			if slices.Contains(messageKeys, m[1]) {
				return m[1]
			}
		}
	}
	return ""
}
