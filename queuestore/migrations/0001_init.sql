-- daguq schema version 1.
--
-- The claim touches only the small row in messages; the body lives in
-- bodies and is written once at enqueue and deleted once at ack.
-- Times are integer milliseconds since the Unix epoch, UTC.

CREATE TABLE queues (
    name          TEXT PRIMARY KEY,
    paused        INTEGER NOT NULL DEFAULT 0,
    max_in_flight INTEGER NOT NULL DEFAULT 0, -- live leases at once; 0: no limit
    aged_at       INTEGER NOT NULL DEFAULT 0  -- last aging pass
) STRICT;

CREATE TABLE messages (
    id           INTEGER PRIMARY KEY AUTOINCREMENT,
    queue        TEXT    NOT NULL,
    state        INTEGER NOT NULL DEFAULT 0, -- 0 live (ready, delayed or leased), 2 dead, 3 acked
    priority     INTEGER NOT NULL,           -- as enqueued; higher first
    rank         INTEGER NOT NULL,           -- priority plus aging; the claim orders by it
    visible_at   INTEGER NOT NULL,           -- claimable from: not-before, retry time or lease end
    lease_id     INTEGER,                    -- the lease that holds or last held it
    attempts     INTEGER NOT NULL DEFAULT 0,
    max_attempts INTEGER NOT NULL,
    group_key    TEXT,
    dedupe_key   TEXT,
    enqueued_at  INTEGER NOT NULL,
    finished_at  INTEGER,                    -- when it became dead or acked
    last_error   TEXT
) STRICT;

-- Matches the claim's WHERE and ORDER BY exactly: no sort step per claim.
CREATE INDEX messages_claim ON messages (queue, rank DESC, visible_at, id) WHERE state = 0;
CREATE INDEX messages_lease ON messages (lease_id) WHERE lease_id IS NOT NULL;
CREATE UNIQUE INDEX messages_dedupe ON messages (queue, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state <> 3;
CREATE INDEX messages_finished ON messages (queue, state, finished_at) WHERE state <> 0;

CREATE TABLE bodies (
    id   INTEGER PRIMARY KEY, -- messages.id
    body BLOB NOT NULL
) STRICT;

CREATE TABLE leases (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- the fencing token: grows with every claim
    secret     TEXT    NOT NULL,
    queue      TEXT    NOT NULL,
    consumer   TEXT    NOT NULL,
    claimed_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL
) STRICT;
CREATE INDEX leases_queue ON leases (queue, expires_at);
