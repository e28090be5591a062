package cli

import (
	"errors"
	"fmt"
	"strconv"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/daguq/daguq/queuestore"
)

// maxInFlightLimit is the largest limit SetLimit takes.
const maxInFlightLimit = 1_000_000

func (a *app) newLimitCmd() *cobra.Command {
	var create bool
	cmd := &cobra.Command{
		Use:   "limit QUEUE [N]",
		Short: "Set (or show) how many batches of a queue may be in flight at once, across all consumers",
		Long: `Cap the live leases of a queue across every process and DAG run: a claim
beyond N returns nothing until a lease ends. One lease is one batch being
handled, that is one handler run, which is what a rate-limited service sees.
N = 0 removes the cap. Without N, print the current limit.

A consumer's own concurrency setting caps one step; this limit caps all of
them together.

The queue must be known (have messages or settings), so that a mistyped name
is refused; with --create, N is set on a queue before its first message.`,
		Example: `  daguq limit emails 4     # at most 4 handler runs at once, in all DAGs
  daguq limit emails       # show it
  daguq limit emails 0     # no limit
  daguq limit geocoder 2 --create   # before the first message`,
		Args: func(cmd *cobra.Command, args []string) error {
			if len(args) == 2 {
				return queueArgs("QUEUE", "N")(cmd, args)
			}
			return queueArgs("QUEUE")(cmd, args)
		},
		RunE: func(cmd *cobra.Command, args []string) error {
			limit := -1
			if len(args) == 2 {
				n, err := strconv.Atoi(args[1])
				if err != nil || n < 0 || n > maxInFlightLimit {
					return limitValueError(args[1])
				}
				limit = n
			}
			if limit < 0 && create {
				return usageError("--create applies when setting a limit: give N")
			}
			return a.withQueue(cmd.Context(), args[0], create, "or --create sets the limit of a new queue", func(st queuestore.Backend) error {
				if limit < 0 {
					s, err := st.Stats(cmd.Context(), args[0])
					if err != nil {
						return err
					}
					if s.InFlightLimit == 0 {
						fmt.Fprintf(a.stdout, "%q: no limit (%d messages in flight)\n", args[0], s.InFlight)
					} else {
						fmt.Fprintf(a.stdout, "%q: at most %d batch(es) in flight (%d now)\n", args[0], s.InFlightLimit, s.Leases)
					}
					return nil
				}
				if err := st.SetLimit(cmd.Context(), args[0], limit); err != nil {
					return err
				}
				if limit == 0 {
					fmt.Fprintf(a.stdout, "%q: no limit\n", args[0])
				} else {
					fmt.Fprintf(a.stdout, "%q: at most %d batch(es) in flight\n", args[0], limit)
				}
				return nil
			})
		},
	}
	cmd.Flags().BoolVar(&create, "create", false, "set the limit even when the database does not know the queue yet")
	// A negative N reaches the flag parser as a shorthand flag ("-1"): name
	// the value and the range instead of an unknown flag.
	cmd.SetFlagErrorFunc(func(c *cobra.Command, err error) error {
		var missing *pflag.NotExistError
		if errors.As(err, &missing) && isNumber(missing.GetSpecifiedShortnames()) {
			return limitValueError("-" + missing.GetSpecifiedShortnames())
		}
		return usageError("%v (see %s --help)", err, c.CommandPath())
	})
	return cmd
}

func limitValueError(n string) error {
	return usageError("N argument must be an integer 0..%d (0 = no limit), got %q", maxInFlightLimit, n)
}

// isNumber reports a number without its sign, like "1" or "0.5".
func isNumber(s string) bool {
	if s == "" || s[0] < '0' || s[0] > '9' {
		return false
	}
	if _, err := strconv.ParseFloat(s, 64); err != nil {
		return false
	}
	return true
}
