package cli

import (
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/daguq/daguq/executor"
)

func (a *app) newEnqueueCmd() *cobra.Command {
	var flags *configFlags
	cmd := &cobra.Command{
		Use:   "enqueue --queue QUEUE (--message JSON | --messages JSON_ARRAY | --file FILE | --file -) [flags]",
		Short: "Add messages to a queue (the enqueue step)",
		Long: `Add messages to a queue, exactly as the Dagu step "type: enqueue" does: the
flags are its with: keys in kebab-case (dedupe_key is --dedupe-key).

The messages: one JSON value in --message (repeat it for several, enqueued in
the order given), a JSON array in --messages, or JSON Lines (one message per
line, blank lines skipped) in the file named by --file, or on stdin with
--file - (also taken when no message flag is given and stdin is a pipe or a
file). With --raw the text is stored as a JSON string: --message's whole text,
or each line of the file. With --envelope each line is
{"body", "priority", "dedupe_key", "group", "delay", "not_before",
"max_attempts"}. All the messages of one call are enqueued in one transaction:
all or none.

Text must be valid UTF-8, JSON or --raw alike: a message, a file line, a
--group or --dedupe-key with another encoding is refused (exit status 2,
naming the line and the byte offset of the first bad byte), never altered.

A JSON summary goes to stdout: {"queue", "enqueued", "duplicates", "ids"}.
When stderr is a terminal, reading --file draws a progress bar there (bytes
read of the file's size; a running count when the size is unknown).`,
		Example: `  daguq enqueue --queue emails --message '{"to":"a@example.com"}'
  daguq enqueue --queue emails --message '{"to":"a@example.com"}' --message '{"to":"b@example.com"}'
  daguq enqueue --queue emails --file batch.jsonl --priority 10
  printf '{"n":1}\n{"n":2}\n' | daguq enqueue --queue numbers --file -
  ls *.csv | daguq enqueue --queue files --raw
  daguq enqueue --queue reports --message '{"day":"today"}' --not-before '0 9 * * *'
  daguq enqueue --queue emails --message '{"to":"a@example.com"}' --dedupe-key welcome-a`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			config, err := flags.config()
			if err != nil {
				return err
			}
			if msgs := flags.values("message"); len(msgs) > 1 {
				// Every --message, in order, in one transaction: the
				// messages key of the step, each text read as --message's.
				if flags.set("messages") {
					return usageError("--message given %d times and --messages: give the messages one way", len(msgs))
				}
				delete(config, "message")
				config["messages"] = anyList(msgs)
				flags.flagOf["messages"] = "message"
			}
			_, hasMessage := config["message"]
			_, hasMessages := config["messages"]
			_, hasFile := config["file"]
			if !hasMessage && !hasMessages && !hasFile {
				if !stdinHasData(a.stdin) {
					return usageError("nothing to enqueue: give --message, --messages or --file, or pipe JSON Lines to --file -")
				}
				config["file"] = "-"
			}
			var stdin io.Reader
			if config["file"] == "-" {
				stdin = a.stdin
			}
			return a.runExecutor("daguq enqueue", executor.KindEnqueue, flags, config, stdin)
		},
	}
	flags = addConfigFlags(cmd.Flags(), executor.KindEnqueue, "db")
	message := cmd.Flags().Lookup("message")
	message.Usage += " Repeat --message for several messages: they are enqueued in the order given, in one transaction."
	return cmd
}

// stdinHasData reports whether stdin is a pipe or a regular file (not a
// terminal, not /dev/null), so that enqueue may read it without being told.
func stdinHasData(r io.Reader) bool {
	f, ok := r.(*os.File)
	if !ok {
		return r != nil
	}
	info, err := f.Stat()
	if err != nil {
		return false
	}
	mode := info.Mode()
	return mode&os.ModeNamedPipe != 0 || mode.IsRegular() || mode&os.ModeSocket != 0
}
