package cli_test

import (
	"context"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/daguq/daguq/queuestore"
)

func TestCheck(t *testing.T) {
	t.Parallel()
	e := newEnv(t)
	// No database yet: nothing to alert on, and no file made.
	if r := e.ok(nil, "check"); !strings.HasPrefix(r.Stdout, "ok: 0 queue(s)") {
		t.Errorf("no database: %s", r)
	}
	if _, err := os.Stat(e.db); err == nil {
		t.Errorf("check created the database")
	}

	// orders: 3 ready for an hour; mail: one dead letter; quiet: fresh.
	ctx := context.Background()
	hourAgo := time.Now().Add(-time.Hour)
	st, err := queuestore.Open(e.db, queuestore.Options{Now: func() time.Time { return hourAgo }})
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range []queuestore.NewMessage{{Queue: "orders", Body: []byte(`1`)}, {Queue: "orders", Body: []byte(`2`)},
		{Queue: "orders", Body: []byte(`3`)}, {Queue: "mail", Body: []byte(`4`)}} {
		if _, err := st.Enqueue(ctx, m); err != nil {
			t.Fatal(err)
		}
	}
	lease, err := st.Claim(ctx, queuestore.ClaimOptions{Queue: "mail", Max: 1})
	if err != nil || lease == nil {
		t.Fatal(err)
	}
	if _, err := st.Nack(ctx, lease, queuestore.NackOptions{Error: "smtp down", MaxAttempts: 1}); err != nil {
		t.Fatal(err)
	}
	st.Close()
	e.ok(strings.NewReader("{}\n"), "enqueue", "--queue", "quiet", "--file", "-")

	tests := []struct {
		name  string
		args  []string
		code  int
		says  []string
		never []string
	}{
		{"defaults: lag 5m and any dead letter", nil, 1,
			[]string{"orders: the oldest ready message has waited 1h", "--max-lag 5m", "mail: 1 dead letter(s), more than --max-dead 0"}, []string{"quiet"}},
		{"one queue within", []string{"--queue", "quiet"}, 0, []string{"ok: 1 queue(s) within --max-lag 5m, --max-dead 0"}, nil},
		{"lag raised", []string{"--max-lag", "2h", "--max-dead", "-1"}, 0, []string{"ok: 3 queue(s)"}, nil},
		{"dead allowed", []string{"--queue", "mail", "--max-dead", "1"}, 0, []string{"ok"}, nil},
		{"ready cap", []string{"--max-lag", "0", "--max-dead", "-1", "--max-ready", "2"}, 1, []string{"orders: 3 ready, more than --max-ready 2"}, []string{"quiet", "mail"}},
		{"a queue with nothing", []string{"--queue", "nosuch"}, 0, []string{"ok: 1 queue(s)"}, nil},
		{"bad queue name", []string{"--queue", "a b"}, 2, []string{"--queue"}, nil},
		{"negative lag", []string{"--max-lag", "-1s"}, 2, []string{"--max-lag"}, nil},
		{"bad dead", []string{"--max-dead", "-2"}, 2, []string{"--max-dead"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run(nil, append([]string{"check"}, tt.args...)...)
			out := r.Stdout + r.Stderr
			if r.Code != tt.code {
				t.Fatalf("exit %d, want %d: %s", r.Code, tt.code, r)
			}
			for _, s := range tt.says {
				if !strings.Contains(out, s) {
					t.Errorf("does not say %q: %s", s, r)
				}
			}
			for _, s := range tt.never {
				if strings.Contains(out, s) {
					t.Errorf("says %q: %s", s, r)
				}
			}
			if tt.code == 1 && (strings.Count(strings.TrimSpace(r.Stderr), "\n") != 0 || r.Stdout != "") {
				t.Errorf("want one line on stderr: %s", r)
			}
		})
	}
}
