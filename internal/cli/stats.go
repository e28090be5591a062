package cli

import (
	"context"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/internal/storeopen"
	"github.com/daguq/daguq/queuestore"
)

// statsReport is the --json form of stats.
type statsReport struct {
	DB            string             `json:"db"`
	DBSource      string             `json:"db_source"`      // flag, DAGUQ_DB, DAGU_HOME or XDG
	SchemaVersion int                `json:"schema_version"` // of the database (opening migrates it to this build's)
	Daguq         buildInfo          `json:"daguq"`          // this binary's version and VCS revision
	Queues        []queuestore.Stats `json:"queues"`
}

func (a *app) newStatsCmd() *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "stats [QUEUE...]",
		Short: "Show message counts per queue, and which database file was used",
		Long: `Show, for every queue (or the queues named), how many messages are ready,
delayed (not before a time, or waiting for a retry), in flight (leased by a
consumer), dead (out of attempts) and acked (kept only with an ack retention),
the age of the oldest ready message, the live leases against the queue's
in-flight limit, and whether the queue is paused.

The first line names the database file and the rule that chose it: the --db
flag, $DAGUQ_DB, $DAGU_HOME or the XDG data directory; the second its schema
version and this daguq's version and VCS revision. A database that does
not exist yet is reported empty and is not created. A queue named that the
database does not know (no messages, no settings) is refused.`,
		Example: `  daguq stats
  daguq stats emails invoices
  daguq stats --json | jq '.queues[] | select(.dead > 0)'`,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, q := range args {
				if err := checkQueueArg(q); err != nil {
					return err
				}
			}
			return a.stats(cmd.Context(), args, asJSON)
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, `print one JSON object: {"db", "db_source", "schema_version", "daguq": {"version", "revision", ...}, "queues": [...]}`)
	return cmd
}

func (a *app) stats(ctx context.Context, queues []string, asJSON bool) error {
	path, source := a.dbPath()
	report := statsReport{DB: storeopen.Redact(path), DBSource: source, SchemaVersion: storeopen.SchemaVersion(path),
		Daguq: readBuildInfo(), Queues: []queuestore.Stats{}}
	st, err := a.openExisting()
	if err != nil {
		return err
	}
	if st != nil {
		defer st.Close()
	}
	if len(queues) > 0 {
		if err := a.requireQueues(ctx, st, "", queues...); err != nil {
			return err
		}
	} else if st != nil {
		if queues, err = st.Queues(ctx); err != nil {
			return err
		}
	}
	if st != nil {
		for _, q := range queues {
			s, err := st.Stats(ctx, q)
			if err != nil {
				return err
			}
			report.Queues = append(report.Queues, s)
		}
	}
	return a.writeReport(report, asJSON, path, source, func() error { return a.statsTable(report, st != nil) })
}

// statsTable prints the schema and build line, then a row per queue.
func (a *app) statsTable(report statsReport, opened bool) error {
	fmt.Fprintf(a.stdout, "schema version %d, daguq %s\n", report.SchemaVersion, report.Daguq)
	if !opened {
		fmt.Fprintln(a.stdout, "(no database file yet: nothing was enqueued here)")
		return nil
	}
	if len(report.Queues) == 0 {
		fmt.Fprintln(a.stdout, "(no queues)")
		return nil
	}
	tw := newTable(a.stdout)
	fmt.Fprintln(tw, "QUEUE\tREADY\tDELAYED\tIN_FLIGHT\tDEAD\tACKED\tOLDEST_READY\tLEASES\tLIMIT\tPAUSED")
	for _, s := range report.Queues {
		limit := "-"
		if s.InFlightLimit > 0 {
			limit = fmt.Sprint(s.InFlightLimit)
		}
		paused := "no"
		if s.Paused {
			paused = "yes"
		}
		fmt.Fprintf(tw, "%s\t%d\t%d\t%d\t%d\t%d\t%s\t%d\t%s\t%s\n", printable(s.Queue), s.Ready, s.Delayed, s.InFlight,
			s.Dead, s.Acked, age(s.OldestReadyAge, s.Ready), s.Leases, limit, paused)
	}
	return tw.Flush()
}

// age prints a duration rounded for a table: "-" when nothing is ready.
func age(d time.Duration, ready int64) string {
	if ready == 0 {
		return "-"
	}
	switch {
	case d < time.Second:
		return d.Round(time.Millisecond).String()
	case d < time.Minute:
		return d.Round(100 * time.Millisecond).String()
	default:
		return d.Round(time.Second).String()
	}
}
