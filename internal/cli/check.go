package cli

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/executor"
	"github.com/daguq/daguq/queuestore"
)

// exitCheckFailed is check's status when a threshold is crossed.
const exitCheckFailed = 1

type checkFlags struct {
	queues   []string
	maxLag   time.Duration
	maxDead  int64
	maxReady int64
}

func (a *app) newCheckCmd() *cobra.Command {
	var f checkFlags
	cmd := &cobra.Command{
		Use:   "check [--queue QUEUE...] [--max-lag 5m] [--max-dead 0] [--max-ready N]",
		Short: "Exit 1 with a one-line reason when a queue crosses a threshold (for alerting)",
		Long: `Check every queue (or those named by --queue) against thresholds and exit 1
with a one-line reason on stderr naming each queue and threshold crossed, or
exit 0 printing "ok" when none is. Made for a scheduled Dagu DAG whose
handler_on: failure sends the alert (dags/queue-alert.yaml).

  --max-lag    the oldest ready message has waited longer (default 5m; 0: not checked)
  --max-dead   more dead letters than this (default 0: any dead letter; -1: not checked)
  --max-ready  more ready messages than this (default -1: not checked)

A paused queue is checked like any other: its lag grows while it is paused.
A database that does not exist yet passes (and is not created). Exit codes:
0 within thresholds, 1 a threshold crossed, 2 bad flag, 3 database error.`,
		Example: `  daguq check                                  # any dead letter, or a message ready for 5m+
  daguq check --queue orders --max-lag 15m --max-dead 10
  daguq check --max-ready 100000 --max-dead -1`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.check(cmd.Context(), f)
		},
	}
	fl := cmd.Flags()
	fl.StringSliceVar(&f.queues, "queue", nil, "check only this queue (repeat, or comma-separated)")
	fl.DurationVar(&f.maxLag, "max-lag", 5*time.Minute, "fail when the oldest ready message has waited longer than this (0: not checked)")
	fl.Int64Var(&f.maxDead, "max-dead", 0, "fail when a queue has more dead letters than this (-1: not checked)")
	fl.Int64Var(&f.maxReady, "max-ready", -1, "fail when a queue has more ready messages than this (-1: not checked)")
	return cmd
}

func (a *app) check(ctx context.Context, f checkFlags) error {
	if f.maxLag < 0 {
		return usageError("--max-lag must be a duration >= 0 (0: not checked), got %s", f.maxLag)
	}
	if f.maxDead < -1 {
		return usageError("--max-dead must be >= 0 (-1: not checked), got %d", f.maxDead)
	}
	if f.maxReady < -1 {
		return usageError("--max-ready must be >= 0 (-1: not checked), got %d", f.maxReady)
	}
	for _, q := range f.queues {
		if err := queuestore.ValidateQueueName(q); err != nil {
			return usageError("--queue: %v", err)
		}
	}
	st, err := a.openExisting()
	if err != nil {
		return err
	}
	queues := f.queues
	if st != nil {
		defer st.Close()
		if len(queues) == 0 {
			if queues, err = st.Queues(ctx); err != nil {
				return err
			}
		}
	}
	var problems []string
	for _, q := range queues {
		s := queuestore.Stats{Queue: q}
		if st != nil {
			if s, err = st.Stats(ctx, q); err != nil {
				return err
			}
		}
		problems = append(problems, crossed(s, f)...)
	}
	if len(problems) > 0 {
		return &executor.ExitError{Code: exitCheckFailed, Err: errors.New(strings.Join(problems, "; "))}
	}
	fmt.Fprintf(a.stdout, "ok: %d queue(s) within %s\n", len(queues), thresholds(f))
	return nil
}

// crossed lists the thresholds queue s crosses, in words.
func crossed(s queuestore.Stats, f checkFlags) []string {
	var out []string
	paused := ""
	if s.Paused {
		paused = " (paused)"
	}
	if f.maxLag > 0 && s.Ready > 0 && s.OldestReadyAge > f.maxLag {
		out = append(out, fmt.Sprintf("%s%s: the oldest ready message has waited %s, more than --max-lag %s", s.Queue, paused, shortDuration(s.OldestReadyAge.Round(time.Second)), shortDuration(f.maxLag)))
	}
	if f.maxDead >= 0 && s.Dead > f.maxDead {
		out = append(out, fmt.Sprintf("%s%s: %d dead letter(s), more than --max-dead %d", s.Queue, paused, s.Dead, f.maxDead))
	}
	if f.maxReady >= 0 && s.Ready > f.maxReady {
		out = append(out, fmt.Sprintf("%s%s: %d ready, more than --max-ready %d", s.Queue, paused, s.Ready, f.maxReady))
	}
	return out
}

func thresholds(f checkFlags) string {
	var t []string
	if f.maxLag > 0 {
		t = append(t, "--max-lag "+shortDuration(f.maxLag))
	}
	if f.maxDead >= 0 {
		t = append(t, fmt.Sprintf("--max-dead %d", f.maxDead))
	}
	if f.maxReady >= 0 {
		t = append(t, fmt.Sprintf("--max-ready %d", f.maxReady))
	}
	if len(t) == 0 {
		return "no thresholds"
	}
	return strings.Join(t, ", ")
}

// shortDuration prints 5m for 5m0s and 1h for 1h0m0s.
func shortDuration(d time.Duration) string {
	s := d.String()
	if strings.HasSuffix(s, "m0s") {
		s = strings.TrimSuffix(s, "0s")
	}
	if strings.HasSuffix(s, "h0m") {
		s = strings.TrimSuffix(s, "0m")
	}
	return s
}
