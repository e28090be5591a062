package cli

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

// The bar that a terminal gets: a count against the total, a spinner when
// the total is unknown; every report ends its line.
func TestBarProgress(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name  string
		total int64
		unit  string
		says  []string
	}{
		{"bytes of a file", 2 << 20, "bytes", []string{"enqueue q", "100%", "2.1/2.1 MB"}},
		{"messages against a total", 40, "messages", []string{"consume q", "100%", "(40/40", "messages"}},
		{"an unknown total", -1, "messages", []string{"consume q", "(40/-"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			var buf bytes.Buffer
			desc := "consume q"
			if tc.unit == "bytes" {
				desc = "enqueue q"
			}
			b := newBarProgress(&buf, desc)
			b.Start(tc.total, tc.unit)
			done := tc.total
			if done < 0 {
				done = 40
			}
			b.Set(done / 2)
			time.Sleep(150 * time.Millisecond) // past the throttle
			b.Set(done)
			b.Finish()
			b.Finish() // idempotent
			out := buf.String()
			for _, s := range tc.says {
				if !strings.Contains(out, s) {
					t.Errorf("the bar does not say %q:\n%q", s, out)
				}
			}
			if !strings.HasSuffix(out, "\n") || strings.Count(out, "\n") != 1 {
				t.Errorf("want one line ended once:\n%q", out)
			}
		})
	}
}

// A bar only on a terminal: not on a file, a pipe or a buffer, nor with
// TERM=dumb.
func TestIsTerminal(t *testing.T) {
	t.Parallel()
	a := &app{getenv: func(string) string { return "" }}
	f, err := os.CreateTemp(t.TempDir(), "stderr")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	for _, x := range []any{f, w, &bytes.Buffer{}} {
		if a.isTerminal(x.(interface{ Write([]byte) (int, error) })) {
			t.Errorf("%T is taken for a terminal", x)
		}
	}
}
