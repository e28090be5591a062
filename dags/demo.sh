#!/bin/sh
# make demo: the main job of daguq on the command line, on a fresh SQLite file.
#   1. enqueue a few thousand orders with mixed priorities, and one poison order
#   2. stats before
#   3. drain them in batches of 100, 4 handler processes at once, through
#      dags/handlers/demo-handler.sh
#   4. stats after, and the poison order in the dead letter queue
# Settings: DEMO_MESSAGES (default 3000), DEMO_DIR (default dags/.demo),
# DAGUQ (default bin/daguq).
set -eu
cd "$(dirname "$0")/.."

DAGUQ=${DAGUQ:-./bin/daguq}
DEMO_DIR=${DEMO_DIR:-./dags/.demo}
N=${DEMO_MESSAGES:-3000}
HANDLER=./dags/handlers/demo-handler.sh

if [ ! -x "$DAGUQ" ]; then
	echo "demo: $DAGUQ not found: run 'make demo' (it builds it first)" >&2
	exit 1
fi
rm -rf "$DEMO_DIR"
mkdir -p "$DEMO_DIR"
# The database is one SQLite file; every daguq command below finds it here.
DAGUQ_DB="$DEMO_DIR/demo.db"
export DAGUQ_DB

step() { printf '\n== %s\n' "$*"; }
# show prints a command the way one would type it, then runs it.
show() {
	printf '$'
	for arg in "$@"; do
		case $arg in
		"$DAGUQ") arg=daguq ;;
		*[!A-Za-z0-9_./=:,-]*) arg="'$arg'" ;;
		esac
		printf ' %s' "$arg"
	done
	printf '\n'
	"$@"
}

step "1. enqueue $N orders (every 10th priority 10, every 3rd priority 5) and one poison order"
# JSON Lines envelopes: the body, and a priority per message. All N in one
# transaction: all or none.
awk -v n="$N" 'BEGIN {
	for (i = 1; i <= n; i++) {
		p = (i % 10 == 0) ? 10 : (i % 3 == 0) ? 5 : 0
		printf "{\"body\":{\"order\":%d,\"amount\":%d.%02d},\"priority\":%d}\n", i, i % 97, i % 100, p
	}
}' >"$DEMO_DIR/orders.jsonl"
show "$DAGUQ" enqueue --queue orders --file "$DEMO_DIR/orders.jsonl" --envelope >"$DEMO_DIR/enqueued.json"
sed 's/^\(.\{90\}\).*/\1 .../' "$DEMO_DIR/enqueued.json"
show "$DAGUQ" enqueue --queue orders --message '{"order":"poison","poison":true}' --max-attempts 3

step "2. stats before"
show "$DAGUQ" stats orders
echo
echo "Next in line (claim order: highest priority first):"
"$DAGUQ" peek orders --limit 5

step "3. drain: batches of 100, 4 handler processes at once, failed messages retried after 200ms"
show "$DAGUQ" consume --queue orders --batch-size 100 --concurrency 4 \
	--max-attempts 3 --backoff 200ms --mode watch --idle-timeout 1s --poll-interval 100ms \
	-- "$HANDLER"

step "4. stats after: the orders are gone, the poison order is dead"
show "$DAGUQ" stats orders

step "5. the dead letter queue"
show "$DAGUQ" dlq list orders
echo
echo "Redrive it with: DAGUQ_DB=$DAGUQ_DB bin/daguq dlq redrive orders"
