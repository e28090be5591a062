#!/bin/sh
# The handler of `make demo`. daguq runs it once per batch, with the batch on
# stdin as JSON Lines, one message per line, "id" first:
#   {"id":17,"queue":"orders","priority":5,"attempt":1,...,"body":{"order":17,...}}
# It "processes" each order. An order whose body has "poison":true always
# fails: its id goes to the file named by $DAGUQ_RESULT_FILE, which tells
# daguq to retry that message (and dead-letter it after max attempts) while
# acking the rest of the batch. Plain POSIX sh: no jq needed.
set -eu

count=0
while IFS= read -r line || [ -n "$line" ]; do
	count=$((count + 1))
	case $line in
	*'"poison":true'* | *'"poison": true'*)
		id=${line#*\"id\":}
		id=${id%%[!0-9]*}
		attempt=${line#*\"attempt\":}
		attempt=${attempt%%[!0-9]*}
		echo "$id" >>"$DAGUQ_RESULT_FILE"
		echo "demo-handler: message $id is poison (attempt $attempt): failing it" >&2
		;;
	esac
done

# Pretend each order takes a moment, so that concurrent batches overlap.
sleep 0.05
