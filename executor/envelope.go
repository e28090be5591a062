package executor

import (
	"time"

	"github.com/daguq/daguq/queuestore"
)

// ParseEnvelope reads one message in the envelope form, a JSON object with
// the keys body (required), priority, dedupe_key, group, delay, not_before
// and max_attempts, into a message for queue. It is the parser of the
// `envelope: true` lines of an enqueue step, shared with daguq serve's
// POST /api/v1/queues/{queue}/messages so that both accept and refuse the
// same input with the same words. now anchors delay and not_before.
func ParseEnvelope(queue string, text []byte, now time.Time) (queuestore.NewMessage, error) {
	m := queuestore.NewMessage{Queue: queue}
	if err := applyEnvelope(&m, text, now); err != nil {
		return queuestore.NewMessage{}, err
	}
	return m, nil
}
