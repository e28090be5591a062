package executor_test

import (
	"context"
	"fmt"
	"os"
	"path/filepath"

	"github.com/daguq/daguq/executor"
)

// An enqueue step as Dagu runs it: the factory, then SetStdout, SetStderr
// and Run. The summary on stdout is what Dagu's `output:` captures.
func ExampleNew() {
	dir, _ := os.MkdirTemp("", "daguq-example-")
	defer os.RemoveAll(dir)
	step, err := executor.New(executor.KindEnqueue, executor.Spec{
		Name: "produce",
		Config: map[string]any{
			"queue":    "emails",
			"messages": []any{map[string]any{"to": "a@example.com"}, map[string]any{"to": "b@example.com"}},
			"priority": "5", // text, as after ${VAR} expansion
			"db":       filepath.Join(dir, "daguq.db"),
		},
	})
	if err != nil {
		fmt.Println(err)
		return
	}
	step.SetStdout(os.Stdout)
	step.SetStderr(os.Stderr)
	if err := step.Run(context.Background()); err != nil {
		fmt.Println(err)
	}
	// Output: {"queue":"emails","enqueued":2,"duplicates":0,"ids":[1,2]}
}

// Validate is Dagu's step validator: the error names the key and the
// allowed values.
func ExampleValidate() {
	err := executor.Validate(executor.KindQueue, map[string]any{"queue": "emails", "run": "./send.sh", "batch_size": 0})
	fmt.Println(err)
	// Output: batch_size must be 1..10000, got 0
}

// ExitCode maps a Run error to the step's exit status.
func ExampleExitCode() {
	_, err := executor.New(executor.KindQueue, executor.Spec{Config: map[string]any{"queue": "emails", "mode": "sometimes", "run": "true"}})
	fmt.Println(executor.ExitCode(err))
	fmt.Println(err)
	// Output:
	// 2
	// exit status 2: mode must be one of drain, once, watch, got "sometimes"
}
