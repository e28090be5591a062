package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newDLQCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "dlq",
		Short: "List, redrive or purge dead letters (messages out of attempts)",
		Long: `A message that failed max_attempts deliveries goes to the dead letter state:
it stays in its queue, is never claimed again, and keeps its last error. These
commands list such messages, put them back to ready with their attempts reset
(redrive), or delete them (purge). An unknown queue (no messages, no settings)
is refused.`,
		Example: `  daguq dlq list emails
  daguq dlq redrive emails --id 42 --id 43
  daguq dlq purge emails --yes`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return usageError("missing subcommand: list, redrive or purge (see daguq dlq --help)")
		},
	}
	cmd.AddCommand(a.newDLQListCmd(), a.newDLQRedriveCmd(), a.newDLQPurgeCmd())
	return cmd
}

func (a *app) newDLQListCmd() *cobra.Command {
	var (
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "list QUEUE",
		Short: "List dead letters of a queue, newest first, with their last error",
		Long: `List the dead letters of a queue, newest first, with the attempts they used and
the last error their handler reported. --json prints every message in full as
one JSON object per line.`,
		Example: `  daguq dlq list emails
  daguq dlq list emails --json --limit 1000 > dead.jsonl`,
		Args: queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if limit < 1 || limit > queuestore.MaxClaim {
				return usageError("--limit must be 1..%d, got %d", queuestore.MaxClaim, limit)
			}
			return a.withQueue(cmd.Context(), args[0], false, "", func(st queuestore.Backend) error {
				msgs, err := st.Peek(cmd.Context(), args[0], queuestore.PeekOptions{State: queuestore.StateDead, Limit: limit})
				if err != nil {
					return err
				}
				return printMessages(a.stdout, msgs, asJSON, true)
			})
		},
	}
	cmd.Flags().IntVar(&limit, "limit", 100, fmt.Sprintf("list at most this many (1..%d)", queuestore.MaxClaim))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message, bodies in full")
	return cmd
}

func (a *app) newDLQRedriveCmd() *cobra.Command {
	var ids []int64
	cmd := &cobra.Command{
		Use:   "redrive QUEUE",
		Short: "Put dead letters back to ready, attempts reset",
		Long: `Put the dead letters of a queue (all of them, or those named by --id) back to
ready with their attempt count reset, so consumers take them again. Prints how
many moved; ids that are not dead letters of the queue are skipped.`,
		Example: `  daguq dlq redrive emails
  daguq dlq redrive emails --id 42 --id 43`,
		Args: queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withQueue(cmd.Context(), args[0], false, "", func(st queuestore.Backend) error {
				n, err := st.Redrive(cmd.Context(), args[0], ids...)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "redrove %d dead letter(s) of %q\n", n, args[0])
				return nil
			})
		},
	}
	cmd.Flags().Int64SliceVar(&ids, "id", nil, "redrive only this message id (repeat, or comma-separated)")
	return cmd
}

func (a *app) newDLQPurgeCmd() *cobra.Command {
	var (
		ids []int64
		yes bool
	)
	cmd := &cobra.Command{
		Use:   "purge QUEUE --yes",
		Short: "Delete dead letters of a queue (asks for --yes)",
		Long: `Delete the dead letters of a queue (all of them, or those named by --id). This
cannot be undone, so it refuses to run without --yes. Live messages are not
touched.`,
		Example: `  daguq dlq purge emails --yes
  daguq dlq purge emails --id 42 --yes`,
		Args: queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			if !yes {
				return usageError("refusing to delete dead letters of %q without --yes", args[0])
			}
			return a.withQueue(cmd.Context(), args[0], false, "", func(st queuestore.Backend) error {
				n, err := st.PurgeDead(cmd.Context(), args[0], ids...)
				if err != nil {
					return err
				}
				fmt.Fprintf(a.stdout, "deleted %d dead letter(s) of %q\n", n, args[0])
				return nil
			})
		},
	}
	cmd.Flags().Int64SliceVar(&ids, "id", nil, "delete only this message id (repeat, or comma-separated)")
	cmd.Flags().BoolVar(&yes, "yes", false, "confirm the deletion")
	return cmd
}
