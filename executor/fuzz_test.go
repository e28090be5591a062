package executor

import (
	"bytes"
	"encoding/json"
	"strings"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/daguq/daguq/queuestore"
)

// FuzzParseQueueConfig decodes arbitrary `with:` maps (as JSON objects, and
// with every value turned to text as ${VAR} expansion does): the parser
// never panics, and what it accepts is within the documented bounds.
func FuzzParseQueueConfig(f *testing.F) {
	for _, seed := range []string{
		`{"queue":"q","run":"./h.sh"}`,
		`{"queue":"emails","batch_size":50,"concurrency":4,"max_wait":"5s","run":"./send.sh"}`,
		`{"queue":"q","run":["sh","-c","cat {batch_file}"],"mode":"watch","idle_timeout":30,"lease":"1m"}`,
		`{"queue":"q","script":"cat","shell":"bash -eu","backoff":"30s","fail_on":"dead"}`,
		`{"queue":"q","action":"nack","token":"4.abc","ids":"1, 2,3","error":"x"}`,
		`{"queue":"q","action":"claim","group_by":"true","min_priority":"-3","max_priority":7}`,
		`{"queue":"q","run":"x","batch_size":1e3,"max_bytes":"1048576","aging":"1.5"}`,
		`{"queue":"q","run":"x","batch_size":2.5}`,
		`{"queue":"bad name","run":"","bogus":null}`,
		`{"queue":"q","run":"x","backoff_base":"2h","backoff_max":"1s","lease":"-1s"}`,
	} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var raw map[string]any
		if json.Unmarshal(data, &raw) != nil {
			return
		}
		checkQueueConfig(t, raw)
		text := make(map[string]any, len(raw))
		for k, v := range raw {
			if b, err := json.Marshal(v); err == nil {
				text[k] = strings.Trim(string(b), `"`)
			}
		}
		checkQueueConfig(t, text)
	})
}

func checkQueueConfig(t *testing.T, raw map[string]any) {
	cfg, err := parseQueueConfig(raw)
	if err != nil {
		if err.Error() == "" {
			t.Fatal("empty error text")
		}
		return
	}
	switch {
	case cfg.BatchSize < 1 || cfg.BatchSize > maxBatchSize,
		cfg.Concurrency < 1 || cfg.Concurrency > maxConcurrency,
		cfg.Lease < time.Second,
		cfg.PollInterval < 10*time.Millisecond,
		cfg.MaxWait < 0 || cfg.MaxWait > time.Hour,
		cfg.MaxAttempts < 0 || cfg.MaxAttempts > maxAttemptsCap,
		cfg.BackoffBase > cfg.BackoffMax,
		len(cfg.shellArgv) == 0:
		t.Fatalf("accepted out-of-range config %+v from %v", cfg, raw)
	}
	if queuestore.ValidateQueueName(cfg.Queue) != nil {
		t.Fatalf("accepted queue name %q", cfg.Queue)
	}
	if cfg.Action == ActionConsume && (cfg.runLine != "") == (cfg.runArgv != nil) && cfg.Script == "" {
		if cfg.resolveHandler(Spec{}) == nil {
			t.Fatalf("consume without a handler accepted: %v", raw)
		}
	}
	if _, err := New(KindQueue, Spec{Config: raw}); err != nil && cfg.resolveHandler(Spec{}) == nil {
		t.Fatalf("parser accepted %v but New refused it: %v", raw, err)
	}
}

// FuzzEnqueueJSONLines reads arbitrary JSON Lines input, plain, raw and as
// envelopes: never a panic; either every line becomes a valid JSON body or
// the error names a line and nothing is returned.
func FuzzEnqueueJSONLines(f *testing.F) {
	for _, seed := range []string{
		"{\"a\":1}\n[1,2]\n\"s\"\n",
		"\n\n  42  \r\n",
		"{\"body\":{\"x\":1},\"priority\":3,\"dedupe_key\":\"k\",\"group\":\"g\",\"delay\":\"30s\",\"max_attempts\":2}\n",
		"{\"body\":null,\"not_before\":\"0 9 * * *\"}\n{\"body\":1,\"delay\":5}\n",
		"{\"body\":1,\"bogus\":2}\n",
		"{broken\n",
		"1 2\n",
		"plain text, not json\n",
		"{\"body\":\"x\",\"priority\":99999999999}\n",
	} {
		f.Add([]byte(seed), false, false)
		f.Add([]byte(seed), true, false)
		f.Add([]byte(seed), false, true)
	}
	now := time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)
	f.Fuzz(func(t *testing.T, data []byte, envelope, raw bool) {
		if envelope && raw {
			return // refused by config validation
		}
		base := queuestore.NewMessage{Queue: "q"}
		msgs, err := readJSONLines(bytes.NewReader(data), base, envelope, raw, now)
		if err != nil {
			if msgs != nil || !strings.Contains(err.Error(), "line ") {
				t.Fatalf("error %q: want a line number and no messages (got %d)", err, len(msgs))
			}
			return
		}
		nonBlank := 0
		for _, line := range bytes.Split(data, []byte("\n")) {
			if len(bytes.TrimSpace(bytes.TrimRight(line, "\r"))) > 0 {
				nonBlank++
			}
		}
		if len(msgs) != nonBlank {
			t.Fatalf("%d messages from %d non-blank lines", len(msgs), nonBlank)
		}
		for i, m := range msgs {
			if !json.Valid(m.Body) || !utf8.Valid(m.Body) {
				t.Fatalf("message %d body is not JSON in valid UTF-8: %q", i, m.Body)
			}
			if m.MaxAttempts < 0 || m.MaxAttempts > maxAttemptsCap || m.NotBefore.Before(now) && !m.NotBefore.IsZero() && !envelope {
				t.Fatalf("message %d out of range: %+v", i, m)
			}
		}
	})
}
