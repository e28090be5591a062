#!/bin/sh
# Handler that calls one rate-limited service once per batch (here: it
# pretends to, for CALL_SECONDS, default 1). The queue's in-flight limit
# ("daguq limit QUEUE N") caps how many of these run at once across every
# DAG and process that consumes the queue.
# Optional: DAGUQ_EXAMPLE_TRACE names a file that gets two lines per call,
#   start <unix ns> <batch id> <batch size>   and   end <unix ns> <batch id> <batch size>
set -eu

trace() {
	if [ -n "${DAGUQ_EXAMPLE_TRACE:-}" ]; then
		echo "$1 $(date +%s%N) $DAGUQ_BATCH_ID $DAGUQ_BATCH_SIZE" >>"$DAGUQ_EXAMPLE_TRACE"
	fi
}

trace start
# The batch is on stdin as JSON Lines; a real handler would send it in one
# request, e.g.: curl --data-binary @"$DAGUQ_BATCH_FILE" https://api.example.com/geocode
count=$(wc -l <"$DAGUQ_BATCH_FILE")
echo "call-service: batch $DAGUQ_BATCH_ID ($count messages, attempt $DAGUQ_ATTEMPT)" >&2
sleep "${CALL_SECONDS:-1}"
trace end
