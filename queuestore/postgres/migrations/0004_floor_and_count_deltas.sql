-- daguq PostgreSQL schema version 4: what keeps claims fast while an old
-- transaction holds vacuum back (docs/postgres.md#vacuum-and-bloat).

-- The ready floor: no committed ready message of the queue has a smaller
-- sort key. Claims walk daguq_messages_ready from it, not from the bottom of
-- the queue's range, past the entries of claimed messages that vacuum may
-- not yet remove. NULL or no row: walk from the bottom. A table apart from
-- the settings: a queue with a floor has no settings for that.
CREATE TABLE daguq_ready_floors (
    queue text COLLATE "C" PRIMARY KEY,
    floor bigint
) WITH (fillfactor = 50);

-- Count changes, one row per transaction, added to daguq_queue_counts every
-- second by a rollup: a transaction inserts a row instead of updating a
-- counts row, whose old versions would pile up, each update walking them,
-- while vacuum is held back.
CREATE TABLE daguq_count_deltas (
    queue            text   COLLATE "C" NOT NULL,
    ready_set        bigint NOT NULL, waiting bigint NOT NULL, waiting_leased bigint NOT NULL,
    dead             bigint NOT NULL, acked   bigint NOT NULL,
    enqueued         bigint NOT NULL, claimed bigint NOT NULL,
    settled_acked    bigint NOT NULL, settled_retried bigint NOT NULL, settled_dead bigint NOT NULL,
    settled_expired  bigint NOT NULL, settled_released bigint NOT NULL,
    redriven         bigint NOT NULL, purged bigint NOT NULL,
    wait_count       bigint NOT NULL, wait_sum_ms bigint NOT NULL,
    w0 bigint NOT NULL, w1 bigint NOT NULL, w2 bigint NOT NULL, w3 bigint NOT NULL,
    w4 bigint NOT NULL, w5 bigint NOT NULL, w6 bigint NOT NULL, w7 bigint NOT NULL,
    w8 bigint NOT NULL, w9 bigint NOT NULL, w10 bigint NOT NULL, w11 bigint NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0.0, autovacuum_vacuum_insert_threshold = 1000,
        autovacuum_vacuum_cost_limit = 2000, autovacuum_vacuum_cost_delay = 1);

-- What readers add up: the rolled-up counts and the changes not yet rolled
-- up, read in one snapshot.
CREATE VIEW daguq_queue_totals AS
SELECT queue, ready_set, waiting, waiting_leased, dead, acked, enqueued, claimed,
       settled_acked, settled_retried, settled_dead, settled_expired, settled_released, redriven, purged,
       wait_count, wait_sum_ms, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11
FROM daguq_queue_counts
UNION ALL
SELECT queue, ready_set, waiting, waiting_leased, dead, acked, enqueued, claimed,
       settled_acked, settled_retried, settled_dead, settled_expired, settled_released, redriven, purged,
       wait_count, wait_sum_ms, w0, w1, w2, w3, w4, w5, w6, w7, w8, w9, w10, w11
FROM daguq_count_deltas;
