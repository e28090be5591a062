#!/bin/sh
# A job against the warehouse database, run by the pool steps of the
# warehouse-*.yaml DAGs while they hold slots of the pool "warehouse-db"
# (here it pretends to work, for QUERY_SECONDS, default 2). daguq gives it
# DAGUQ_POOL, DAGUQ_POOL_SLOTS and DAGUQ_POOL_GRANT.
# Usage: warehouse-query.sh WHAT [TABLE]
# stdout: one JSON line {"query", "table", "slots"}, the step's output:.
# Optional: DAGUQ_EXAMPLE_TRACE names a file that gets two lines per job,
#   start <unix ns> <slots> <what> <table>   and   end <unix ns> <slots> <what> <table>
set -eu

what=${1:?usage: warehouse-query.sh WHAT [TABLE]}
table=${2:--}

trace() {
	if [ -n "${DAGUQ_EXAMPLE_TRACE:-}" ]; then
		echo "$1 $(date +%s%N) $DAGUQ_POOL_SLOTS $what $table" >>"$DAGUQ_EXAMPLE_TRACE"
	fi
}

trace start
echo "warehouse-query: $what $table with $DAGUQ_POOL_SLOTS slot(s) of pool $DAGUQ_POOL" >&2
# A real job would run its SQL here, e.g.: psql "$WAREHOUSE_URL" -f "sql/$what.sql"
sleep "${QUERY_SECONDS:-2}"
trace end
printf '{"query":"%s","table":"%s","slots":%s}\n' "$what" "$table" "$DAGUQ_POOL_SLOTS"
