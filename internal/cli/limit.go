package cli

import (
	"fmt"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newLimitCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "limit QUEUE [N]",
		Short: "Set (or show) how many batches of a queue may be in flight at once, across all consumers",
		Long: `Cap the live leases of a queue across every process and DAG run: a claim
beyond N returns nothing until a lease ends. One lease is one batch being
handled, that is one handler run, which is what a rate-limited service sees.
N = 0 removes the cap. Without N, print the current limit.

A consumer's own concurrency setting caps one step; this limit caps all of
them together.`,
		Example: `  daguq limit emails 4     # at most 4 handler runs at once, in all DAGs
  daguq limit emails       # show it
  daguq limit emails 0     # no limit`,
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
				if err != nil || n < 0 || n > 1_000_000 {
					return usageError("N argument must be an integer 0..1000000 (0: no limit), got %q", args[1])
				}
				limit = n
			}
			var st queuestore.Backend
			var err error
			if limit < 0 {
				st, err = a.openExisting()
			} else {
				st, err = a.openStore()
			}
			if err != nil {
				return err
			}
			if st == nil {
				fmt.Fprintf(a.stdout, "%q: no limit\n", args[0])
				return nil
			}
			defer st.Close()
			if limit < 0 {
				s, err := st.Stats(cmd.Context(), args[0])
				if err != nil {
					return storeError(err)
				}
				if s.InFlightLimit == 0 {
					fmt.Fprintf(a.stdout, "%q: no limit (%d in flight)\n", args[0], s.Leases)
				} else {
					fmt.Fprintf(a.stdout, "%q: at most %d batch(es) in flight (%d now)\n", args[0], s.InFlightLimit, s.Leases)
				}
				return nil
			}
			if err := st.SetLimit(cmd.Context(), args[0], limit); err != nil {
				return storeError(err)
			}
			if limit == 0 {
				fmt.Fprintf(a.stdout, "%q: no limit\n", args[0])
			} else {
				fmt.Fprintf(a.stdout, "%q: at most %d batch(es) in flight\n", args[0], limit)
			}
			return nil
		},
	}
}
