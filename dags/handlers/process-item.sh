#!/bin/sh
# Processes one message of a fan-out (dags/fanout-item.yaml): the message id
# is $1, its body (JSON) is in $MESSAGE_BODY. A body with "fail": true fails.
# Optional: DAGUQ_EXAMPLE_TRACE names a file that gets "item <id>" per success.
set -eu

id=$1
case $MESSAGE_BODY in
*'"fail":true'* | *'"fail": true'*)
	echo "process-item: message $id failed" >&2
	exit 1
	;;
esac
echo "process-item: message $id done: $MESSAGE_BODY" >&2
if [ -n "${DAGUQ_EXAMPLE_TRACE:-}" ]; then
	echo "item $id" >>"$DAGUQ_EXAMPLE_TRACE"
fi
