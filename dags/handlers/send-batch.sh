#!/bin/sh
# Handler of a daguq batch: daguq runs it once per batch with the batch on
# stdin as JSON Lines, one message per line, "id" first:
#   {"id":17,"queue":"emails","priority":0,"attempt":1,"group":"","enqueued_at":"...","body":{...}}
# Exit 0 acks the batch. To fail only some messages, write their ids to the
# file named by $DAGUQ_RESULT_FILE and exit 0: those are retried (and
# dead-lettered after max_attempts), the rest acked. Any other exit status
# fails the whole batch.
#
# This example "sends" each message (a line on stderr, which Dagu keeps in the
# step's log) and fails every message whose body has "fail": true.
# Optional: SEND_SECONDS (default 0) sleeps per batch, like a slow service;
# DAGUQ_EXAMPLE_TRACE names a file that gets one line per message:
#   <queue> <batch id> <message id> <priority> <attempt>
# (Message bodies never go on a command line: they stay on stdin.)
set -eu

while IFS= read -r line || [ -n "$line" ]; do
	id=${line#*\"id\":}
	id=${id%%[!0-9]*}
	priority=${line#*\"priority\":}
	priority=${priority%%[!0-9-]*}
	attempt=${line#*\"attempt\":}
	attempt=${attempt%%[!0-9]*}
	case $line in
	*'"fail":true'* | *'"fail": true'*)
		echo "$id" >>"$DAGUQ_RESULT_FILE"
		echo "send-batch: message $id failed (attempt $attempt)" >&2
		;;
	*)
		echo "send-batch: sent message $id (priority $priority)" >&2
		;;
	esac
	if [ -n "${DAGUQ_EXAMPLE_TRACE:-}" ]; then
		echo "$DAGUQ_QUEUE $DAGUQ_BATCH_ID $id $priority $attempt" >>"$DAGUQ_EXAMPLE_TRACE"
	fi
done

sleep "${SEND_SECONDS:-0}"
