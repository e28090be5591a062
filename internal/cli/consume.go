package cli

import (
	"github.com/spf13/cobra"

	"github.com/daguq/daguq/executor"
)

func (a *app) newConsumeCmd() *cobra.Command {
	var flags *configFlags
	cmd := &cobra.Command{
		Use:   "consume --queue QUEUE [flags] -- HANDLER [ARG...]",
		Short: "Claim batches from a queue and run a handler per batch (the queue step)",
		Long: `Claim batches of messages from a queue and run the handler once per batch,
exactly as the Dagu step "type: queue" does: the flags are its with: keys in
kebab-case (batch_size is --batch-size).

The handler is the command after "--", run directly with its arguments (no
shell), or a command line in --run, or a script body in --script. A batch
arrives as JSON Lines on the handler's stdin, one object per message
{"id", "queue", "priority", "attempt", "group", "enqueued_at", "body"}, and in
the file named by $DAGUQ_BATCH_FILE; $DAGUQ_QUEUE, $DAGUQ_BATCH_ID,
$DAGUQ_BATCH_SIZE and $DAGUQ_ATTEMPT are set. Exit 0 acks the batch; any other
exit nacks it (retry with backoff, dead letter after max attempts). To fail
only some messages, write their ids, one per line, to $DAGUQ_RESULT_FILE and
exit 0: the rest are acked.

While the handler runs, its lease is extended by a heartbeat. When the
handler exits, whatever it left running is killed. SIGTERM or SIGINT stops
claiming, passes the signal to running handlers (SIGKILL after --grace), and
gives the leases of unfinished batches back (ready again, no attempt spent);
a second SIGTERM or SIGINT kills the handlers at once. daguq exits within
--grace + 1.5 s of the first signal (1.5 s of the second) even when the
database does not answer: what it could not ack or release by then stays
leased and is delivered again after --lease, and stderr says how many.

A JSON summary goes to stdout ({"queue", "batches", "messages", "acked",
"retried", "dead", ...}); progress and handler output go to stderr. On a
terminal the progress is a bar (messages acked or dead against the queue's
ready and in-flight count at the start; a spinner with --mode watch); else a
line every --progress-interval (0s: neither).

--action claim leases one batch and prints it as JSON (with its lease token)
instead of running a handler, for a fan-out in Dagu; --action ack or
--action nack with --token finishes it (--ids: only some messages).`,
		Example: `  # drain "emails" in batches of 50, four handlers at once
  daguq consume --queue emails --batch-size 50 --concurrency 4 -- ./send.sh

  # keep polling until stopped, at most one batch in 5 s of lingering
  daguq consume --queue emails --mode watch --max-wait 5s -- python3 send.py

  # one batch at most, a handler script body run by sh
  daguq consume --queue emails --mode once --script 'wc -l'

  # lease one batch, handle it elsewhere, then ack it by its token
  daguq consume --queue emails --action claim --batch-size 20 > batch.json
  daguq consume --queue emails --action ack --token "$(jq -r .token batch.json)"`,
		RunE: func(cmd *cobra.Command, args []string) error {
			config, err := flags.config()
			if err != nil {
				return err
			}
			dash := cmd.ArgsLenAtDash()
			if dash < 0 && len(args) > 0 || dash > 0 {
				return usageError("unexpected argument %q: put the handler after \"--\" (daguq consume --queue Q -- ./handler.sh)", args[0])
			}
			if dash == 0 {
				if len(args) == 0 {
					return usageError("no handler after \"--\"")
				}
				_, hasRun := config["run"]
				_, hasScript := config["script"]
				if hasRun || hasScript {
					return usageError("give the handler once: after \"--\", or with --run, or with --script")
				}
				config["run"] = anyList(args)
			}
			return a.runExecutor("daguq consume", executor.KindQueue, flags, config, nil)
		},
	}
	flags = addConfigFlags(cmd.Flags(), executor.KindQueue, "db")
	return cmd
}
