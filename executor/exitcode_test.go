package executor

import (
	"context"
	"testing"
)

// Dagu asks an executor for ExitCode() before it parses the error text.
func TestExitCodeReportsTheLastRun(t *testing.T) {
	t.Parallel()
	te := setup(t)
	te.enqueueN("q", 1)
	te.script("h.sh", "exit 3\n")
	tests := []struct {
		name   string
		kind   string
		config map[string]any
		want   int
	}{
		{"consume acked", KindQueue, map[string]any{"queue": "empty", "run": "./h.sh"}, ExitOK},
		{"fail_on dead", KindQueue, map[string]any{"queue": "q", "run": "./h.sh", "max_attempts": 1, "fail_on": "dead"}, ExitHandlerFailed},
		{"enqueue into a directory", KindEnqueue, map[string]any{"queue": "q", "message": 1, "db": te.dir}, ExitStore},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exec, err := New(tt.kind, te.spec(tt.config))
			if err != nil {
				t.Fatal(err)
			}
			coder, ok := exec.(interface{ ExitCode() int })
			if !ok {
				t.Fatalf("%T has no ExitCode method", exec)
			}
			r := runExecutor(t, exec, context.Background())
			if got := coder.ExitCode(); got != tt.want || got != ExitCode(r.err) {
				t.Fatalf("ExitCode() = %d, Run error %v, want %d", got, r.err, tt.want)
			}
		})
	}
}
