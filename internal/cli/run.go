package cli

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"

	"github.com/daguq/daguq/executor"
)

// runExecutor runs one executor of kind the way Dagu does: factory, streams,
// Run, and Kill from another goroutine when SIGTERM or SIGINT arrives (Run
// returns soon after; the context is not cancelled, as in Dagu). A second
// SIGTERM or SIGINT is Kill(SIGKILL): the stop without grace.
func (a *app) runExecutor(name, kind string, flags *configFlags, config map[string]any, stdin io.Reader) error {
	// The database: --db, else with: db (--with), else the environment. An
	// empty with: db stays for Validate to refuse, unless --db overrides it.
	given, ok := config["db"].(string)
	if ok && a.db == "" {
		a.db = given
	}
	if !ok || a.db != given || strings.TrimSpace(given) != "" {
		config["db"], _ = a.dbPath()
	}
	if err := executor.Validate(kind, config); err != nil {
		return withHint(err, flags)
	}
	// Open the database here first: a path that cannot be used is reported
	// like every other command does, naming the rule that chose it.
	st, err := a.openStore()
	if err != nil {
		return err
	}
	st.Close()
	dir, err := os.Getwd()
	if err != nil {
		dir = ""
	}
	exe, err := executor.New(kind, executor.Spec{Name: name, Config: config, Env: os.Environ(), Dir: dir})
	if err != nil {
		return withHint(err, flags)
	}
	exe.SetStdout(a.stdout)
	exe.SetStderr(a.stderr)
	if ps, ok := exe.(executor.ProgressSetter); ok && a.isTerminal(a.stderr) {
		ps.SetProgress(newBarProgress(a.stderr, progressDesc(kind, config)))
	}
	if stdin != nil {
		s, ok := exe.(executor.StdinSetter)
		if !ok {
			return usageError("this executor cannot read stdin")
		}
		s.SetStdin(stdin)
	}

	signals := make(chan os.Signal, 4)
	signal.Notify(signals, syscall.SIGTERM, syscall.SIGINT)
	done := make(chan struct{})
	defer func() {
		signal.Stop(signals)
		close(done)
	}()
	go func() {
		for n := 0; ; n++ {
			select {
			case sig := <-signals:
				if n > 0 {
					// A second SIGTERM or SIGINT (^C again): no more grace,
					// the handlers get SIGKILL and their batches are
					// released at once.
					fmt.Fprintf(a.stderr, "daguq: %s again: killing the handlers now\n", sig)
					sig = syscall.SIGKILL
				}
				_ = exe.Kill(sig)
			case <-done:
				return
			}
		}
	}()
	return runResult(exe.Run(context.Background()), flags)
}

// runResult is Run's error, with the flag named in a usage error.
func runResult(err error, flags *configFlags) error {
	return withHint(err, flags)
}

// withHint keeps err's exit status (executor.ExitCode) and, for refused
// input, names the config keys as the flags that gave them.
func withHint(err error, flags *configFlags) error {
	code := executor.ExitCode(err)
	if err == nil || code != exitUsage {
		return err
	}
	var ee *executor.ExitError
	if errors.As(err, &ee) && ee.Err != nil {
		err = ee.Err
	}
	return usageError("%s", executor.Text(err, flags))
}

// progressDesc names the work of a progress bar: "enqueue orders",
// "consume orders".
func progressDesc(kind string, config map[string]any) string {
	verb := "enqueue"
	if kind == executor.KindQueue {
		verb = "consume"
	}
	q, _ := config["queue"].(string)
	return verb + " " + q
}
