package queuestore

import (
	"testing"
	"time"
)

func TestPollInterval(t *testing.T) {
	t.Parallel()
	const poll = 200 * time.Millisecond
	for _, tc := range []struct {
		name  string
		ahead int
		want  time.Duration
	}{
		{"head", 0, poll},
		{"next", 1, poll},
		{"third", 2, 2 * poll},
		{"far back", 4, 4 * poll},
		{"capped", 49, 5 * poll},
	} {
		if got := pollInterval(poll, tc.ahead); got != tc.want {
			t.Errorf("%s: %d ahead: %s, want %s", tc.name, tc.ahead, got, tc.want)
		}
	}
}
