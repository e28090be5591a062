-- daguq schema version 2: a ready set that claims walk alone, in one key.
--
-- state 0 is now "ready" only: the claim index holds nothing else, so a
-- claim never walks past delayed or leased messages. Delayed, retrying and
-- leased messages wait in state 1 until visible_at; a claim first moves the
-- due ones into the ready set (messages_waiting finds them).
--
-- sort_key orders the ready set, lowest first:
--     sort_key = visible_at - priority * step
-- step is the queue's aging interval in milliseconds, or 2^42 ms (about 139
-- years) when the queue has none: then priority decides and the time a
-- message became ready breaks ties. With aging, a message that has waited
-- one interval longer ranks like one priority level higher, whether or not
-- claims happened meanwhile.

CREATE TEMP TABLE daguq_keep_sequence AS
    SELECT seq FROM sqlite_sequence WHERE name = 'messages';

CREATE TABLE messages_v2 (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT    NOT NULL,
    state        INTEGER NOT NULL,           -- 0 ready, 1 waiting (delayed or leased), 2 dead, 3 acked
    priority     INTEGER NOT NULL,           -- as enqueued; higher first
    sort_key     INTEGER NOT NULL,           -- claim order of the ready set, lowest first
    visible_at   INTEGER NOT NULL,           -- ready from: not-before, retry time or lease end
    lease_id     INTEGER,                    -- the lease that holds or last held it
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,           -- the limit that applies (a consumer's override once it applied)
    group_key    TEXT,
    dedupe_key   TEXT,
    enqueued_at  INTEGER NOT NULL,
    finished_at  INTEGER,                    -- when it became dead or acked
    last_error   TEXT,
    size         INTEGER NOT NULL DEFAULT 0, -- body bytes, for claims with a byte limit
    enqueued_by  TEXT,                       -- the Dagu DAG run that enqueued it: "dag/run-id"
    claimed_by   TEXT                        -- the Dagu DAG run of its last claim
) STRICT;

-- Every live message waits in state 1 first: the next claim sorts the due
-- ones into the ready set with the queue's step.
INSERT INTO messages_v2 (id, queue, state, priority, sort_key, visible_at, lease_id, attempts, max_attempts,
                         group_key, dedupe_key, enqueued_at, finished_at, last_error, size)
SELECT m.id, m.queue, CASE m.state WHEN 0 THEN 1 ELSE m.state END, m.priority, 0, m.visible_at, m.lease_id,
       m.attempts, m.max_attempts, m.group_key, m.dedupe_key, m.enqueued_at, m.finished_at, m.last_error,
       coalesce(length(CAST(b.body AS BLOB)), 0)
FROM messages m LEFT JOIN bodies b ON b.id = m.id;

DROP TABLE messages;
ALTER TABLE messages_v2 RENAME TO messages;

-- Message ids are never reused, also across this rebuild.
UPDATE sqlite_sequence SET seq = max(seq, coalesce((SELECT seq FROM daguq_keep_sequence), 0))
WHERE name = 'messages';
INSERT INTO sqlite_sequence (name, seq)
    SELECT 'messages', seq FROM daguq_keep_sequence
    WHERE NOT EXISTS (SELECT 1 FROM sqlite_sequence WHERE name = 'messages');
DROP TABLE daguq_keep_sequence;

-- The claim walks this index in order: no sort, no delayed or leased rows.
CREATE INDEX messages_ready ON messages (queue, sort_key, id) WHERE state = 0;
-- Due waiting messages, earliest first, for the move into the ready set;
-- lease_id lets stats count the due ones from the index alone.
CREATE INDEX messages_waiting ON messages (queue, visible_at, lease_id) WHERE state = 1;
CREATE INDEX messages_lease ON messages (lease_id) WHERE lease_id IS NOT NULL;
CREATE UNIQUE INDEX messages_dedupe ON messages (queue, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state <> 3;
CREATE INDEX messages_finished ON messages (queue, state, finished_at) WHERE state >= 2;

-- Leases are rows only for queues with an in-flight limit, which counts
-- them; the fencing token comes from the queue's claim counter
-- (queue_counts.claimed), so a claim writes no row of its own otherwise.
CREATE TABLE leases_v2 (
    id         INTEGER PRIMARY KEY, -- the fencing token
    queue      TEXT    NOT NULL,
    consumer   TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
INSERT INTO leases_v2 (id, queue, consumer, claimed_at, expires_at)
SELECT id, queue, consumer, claimed_at, expires_at FROM leases;
DROP TABLE leases;
ALTER TABLE leases_v2 RENAME TO leases;
CREATE INDEX leases_queue ON leases (queue, expires_at);

-- Per-queue state counts and counters, changed in the transaction that
-- changes what they count: stats and metrics read them instead of counting
-- rows (docs/serve.md).
CREATE TABLE queue_counts (
    queue            TEXT PRIMARY KEY,
    ready_set        INTEGER NOT NULL DEFAULT 0, -- state 0
    waiting          INTEGER NOT NULL DEFAULT 0, -- state 1
    waiting_leased   INTEGER NOT NULL DEFAULT 0, -- state 1 with a lease
    dead             INTEGER NOT NULL DEFAULT 0, -- state 2
    acked            INTEGER NOT NULL DEFAULT 0, -- state 3 (retained acks)
    enqueued         INTEGER NOT NULL DEFAULT 0, -- counters from here on
    claimed          INTEGER NOT NULL DEFAULT 0,
    settled_acked    INTEGER NOT NULL DEFAULT 0,
    settled_retried  INTEGER NOT NULL DEFAULT 0,
    settled_dead     INTEGER NOT NULL DEFAULT 0,
    settled_expired  INTEGER NOT NULL DEFAULT 0,
    settled_released INTEGER NOT NULL DEFAULT 0,
    redriven         INTEGER NOT NULL DEFAULT 0,
    purged           INTEGER NOT NULL DEFAULT 0,
    wait_count       INTEGER NOT NULL DEFAULT 0, -- enqueue-to-ack waits of acked messages
    wait_sum_ms      INTEGER NOT NULL DEFAULT 0,
    -- waits per bucket of WaitBuckets (not cumulative): w0 up to 0.1 s, w1
    -- up to 0.5 s, ... w11 up to 1 day; longer ones only in wait_count
    w0 INTEGER NOT NULL DEFAULT 0, w1 INTEGER NOT NULL DEFAULT 0, w2 INTEGER NOT NULL DEFAULT 0,
    w3 INTEGER NOT NULL DEFAULT 0, w4 INTEGER NOT NULL DEFAULT 0, w5 INTEGER NOT NULL DEFAULT 0,
    w6 INTEGER NOT NULL DEFAULT 0, w7 INTEGER NOT NULL DEFAULT 0, w8 INTEGER NOT NULL DEFAULT 0,
    w9 INTEGER NOT NULL DEFAULT 0, w10 INTEGER NOT NULL DEFAULT 0, w11 INTEGER NOT NULL DEFAULT 0
) STRICT;
INSERT INTO queue_counts (queue, waiting, waiting_leased, dead, acked)
SELECT queue, sum(state = 1), sum(state = 1 AND lease_id IS NOT NULL), sum(state = 2), sum(state = 3)
FROM messages GROUP BY queue;
-- New lease ids (claimed << 24 | ...) must not meet a schema 1 id that a
-- message still carries: start the claim counters above them.
UPDATE queue_counts SET claimed = (SELECT coalesce(max(lease_id), 0) FROM messages) / 16777216 + 1;

-- Aging is a property of the queue (the key depends on it); aged_at was the
-- last pass of the old per-claim aging.
ALTER TABLE queues ADD COLUMN aging_ms INTEGER NOT NULL DEFAULT 0;
ALTER TABLE queues DROP COLUMN aged_at;

-- Samples of each queue's counts over time, for the dashboard's charts
-- (Store.RecordHistory, Store.History).
CREATE TABLE history (
    queue        TEXT    NOT NULL,
    at           INTEGER NOT NULL,
    ready        INTEGER NOT NULL,
    delayed      INTEGER NOT NULL,
    in_flight    INTEGER NOT NULL,
    dead         INTEGER NOT NULL,
    enqueued     INTEGER NOT NULL, -- counter totals at that time
    acked        INTEGER NOT NULL,
    oldest_ready INTEGER NOT NULL, -- ms
    PRIMARY KEY (queue, at)
) STRICT, WITHOUT ROWID;
