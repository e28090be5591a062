package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/queuestore"
)

func (a *app) newPeekCmd() *cobra.Command {
	var (
		state  string
		limit  int
		asJSON bool
	)
	cmd := &cobra.Command{
		Use:   "peek QUEUE",
		Short: "List messages of a queue without leasing them",
		Long: `List messages of a queue without claiming them: nothing changes, no attempt
is counted.

--state picks which messages: ready (the default, in the order a claim would
take them), delayed or in_flight (both: by the time they become claimable),
dead or acked (newest first; acked messages are kept only with an ack
retention). The table cuts bodies; --json prints every message in full as one
JSON object per line. An unknown queue (no messages, no settings) is refused.`,
		Example: `  daguq peek emails
  daguq peek emails --state delayed --limit 50
  daguq peek emails --json | jq -c .body`,
		Args: queueArgs("QUEUE"),
		RunE: func(cmd *cobra.Command, args []string) error {
			switch queuestore.State(state) {
			case queuestore.StateReady, queuestore.StateDelayed, queuestore.StateInFlight, queuestore.StateDead, queuestore.StateAcked:
			default:
				return usageError("--state must be ready, delayed, in_flight, dead or acked, got %q", state)
			}
			if limit < 1 || limit > queuestore.MaxClaim {
				return usageError("--limit must be 1..%d, got %d", queuestore.MaxClaim, limit)
			}
			return a.withQueue(cmd.Context(), args[0], false, "", func(st queuestore.Backend) error {
				msgs, err := st.Peek(cmd.Context(), args[0], queuestore.PeekOptions{State: queuestore.State(state), Limit: limit})
				if err != nil {
					return err
				}
				return printMessages(a.stdout, msgs, asJSON, state == string(queuestore.StateDead))
			})
		},
	}
	cmd.Flags().StringVar(&state, "state", "ready", "which messages: ready, delayed, in_flight, dead or acked")
	cmd.Flags().IntVar(&limit, "limit", 10, fmt.Sprintf("list at most this many (1..%d)", queuestore.MaxClaim))
	cmd.Flags().BoolVar(&asJSON, "json", false, "print one JSON object per message, bodies in full")
	return cmd
}
