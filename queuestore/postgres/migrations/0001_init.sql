-- daguq PostgreSQL schema version 1: the same model as the SQLite store's
-- schema 2 (queuestore/migrations), in PostgreSQL's types.
--
-- Times are integer milliseconds since the Unix epoch, UTC, from the
-- store's clock (Options.Now), as in SQLite. Names compare byte by byte
-- (COLLATE "C"), as in SQLite.

CREATE TABLE daguq_queues (
    name          text COLLATE "C" PRIMARY KEY,
    paused        boolean NOT NULL DEFAULT false,
    max_in_flight integer NOT NULL DEFAULT 0, -- live leases at once; 0: no limit
    aging_ms      bigint  NOT NULL DEFAULT 0  -- the aging interval the sort keys use; 0: none
);

-- The small row a claim rewrites. state:
--   0 ready: in the ready set, ordered by sort_key (= visible_at - priority * step)
--   1 waiting: delayed, retrying or leased until visible_at
--   2 dead, 3 acked (kept for Options.AckRetention)
CREATE TABLE daguq_messages (
    id           bigint   PRIMARY KEY,          -- from daguq_message_ids: never reused
    queue        text     COLLATE "C" NOT NULL,
    state        smallint NOT NULL,
    priority     bigint   NOT NULL,             -- as enqueued; higher first
    sort_key     bigint   NOT NULL,             -- claim order of the ready set, lowest first
    visible_at   bigint   NOT NULL,             -- ready from: not-before, retry time or lease end
    lease_id     bigint,                        -- the lease that holds or last held it
    attempts     integer  NOT NULL DEFAULT 0,
    max_attempts integer  NOT NULL,             -- the limit that applies
    group_key    text     COLLATE "C",
    dedupe_key   text     COLLATE "C",
    enqueued_at  bigint   NOT NULL,
    finished_at  bigint,                        -- when it became dead or acked
    last_error   text,
    size         bigint   NOT NULL DEFAULT 0    -- body bytes, for claims with a byte limit
) WITH (
    -- Every claim, extend and finish leaves a dead row version behind:
    -- vacuum after 1% of the rows changed (the default waits for 20%), and
    -- let it work without the default cost pauses (docs/postgres.md).
    autovacuum_vacuum_scale_factor = 0.01,
    autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_insert_scale_factor = 0.01,
    autovacuum_analyze_scale_factor = 0.02,
    autovacuum_vacuum_cost_limit = 2000,
    autovacuum_vacuum_cost_delay = 1,
    -- Room in each page for the new versions of its rows.
    fillfactor = 90
);
CREATE SEQUENCE daguq_message_ids AS bigint OWNED BY daguq_messages.id;

-- The claim walks this index in order, and only ready messages are in it:
-- no sort, no delayed or leased rows.
CREATE INDEX daguq_messages_ready ON daguq_messages (queue, sort_key, id) WHERE state = 0;
-- Live messages by state and time: due waiting ones, earliest first, for the
-- move into the ready set; the oldest ready one and the due counts for stats.
CREATE INDEX daguq_messages_live ON daguq_messages (queue, state, visible_at, lease_id) WHERE state < 2;
CREATE INDEX daguq_messages_lease ON daguq_messages (lease_id) WHERE lease_id IS NOT NULL;
-- Dedupe: a key is taken while its message is not acked.
CREATE UNIQUE INDEX daguq_messages_dedupe ON daguq_messages (queue, dedupe_key)
    WHERE dedupe_key IS NOT NULL AND state <> 3;
CREATE INDEX daguq_messages_finished ON daguq_messages (queue, state, finished_at) WHERE state >= 2;

-- Bodies apart: written once at enqueue, deleted once at ack, never
-- rewritten by a claim.
CREATE TABLE daguq_bodies (
    id   bigint PRIMARY KEY, -- daguq_messages.id
    body bytea  NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_insert_scale_factor = 0.01,
        autovacuum_vacuum_cost_limit = 2000, autovacuum_vacuum_cost_delay = 1);

-- A lease per claim. The id is the fencing token and the token a claim
-- prints: nextval(daguq_lease_ids) << 8 | 8 random bits, the sequence value
-- taken after the claim has locked its messages, so a later claim of a
-- message always has a larger id; the random bits make a mistyped token
-- rarely name a live lease. An identifier, not a secret.
CREATE TABLE daguq_leases (
    id         bigint PRIMARY KEY,
    queue      text   COLLATE "C" NOT NULL,
    consumer   text   NOT NULL,
    claimed_at bigint NOT NULL,
    expires_at bigint NOT NULL
) WITH (autovacuum_vacuum_scale_factor = 0.01, autovacuum_vacuum_threshold = 1000,
        autovacuum_vacuum_cost_limit = 2000, autovacuum_vacuum_cost_delay = 1, fillfactor = 80);
CREATE SEQUENCE daguq_lease_ids AS bigint OWNED BY daguq_leases.id;
CREATE INDEX daguq_leases_queue ON daguq_leases (queue, expires_at);

-- Per-queue state counts and counters, changed in the transaction that
-- changes what they count: stats and metrics read them instead of counting
-- rows. Each queue has up to 8 rows (shards): a transaction adds to the
-- shard of its server process, so that concurrent transactions rarely wait
-- for one another's row; readers add the shards up.
CREATE TABLE daguq_queue_counts (
    queue            text     COLLATE "C" NOT NULL,
    shard            smallint NOT NULL,
    ready_set        bigint NOT NULL DEFAULT 0, -- state 0
    waiting          bigint NOT NULL DEFAULT 0, -- state 1
    waiting_leased   bigint NOT NULL DEFAULT 0, -- state 1 with a lease
    dead             bigint NOT NULL DEFAULT 0, -- state 2
    acked            bigint NOT NULL DEFAULT 0, -- state 3 (retained acks)
    enqueued         bigint NOT NULL DEFAULT 0, -- counters from here on
    claimed          bigint NOT NULL DEFAULT 0,
    settled_acked    bigint NOT NULL DEFAULT 0,
    settled_retried  bigint NOT NULL DEFAULT 0,
    settled_dead     bigint NOT NULL DEFAULT 0,
    settled_expired  bigint NOT NULL DEFAULT 0,
    settled_released bigint NOT NULL DEFAULT 0,
    redriven         bigint NOT NULL DEFAULT 0,
    purged           bigint NOT NULL DEFAULT 0,
    wait_count       bigint NOT NULL DEFAULT 0, -- enqueue-to-ack waits of acked messages
    wait_sum_ms      bigint NOT NULL DEFAULT 0,
    -- waits per bucket of queuestore.WaitBuckets (not cumulative)
    w0 bigint NOT NULL DEFAULT 0, w1 bigint NOT NULL DEFAULT 0, w2 bigint NOT NULL DEFAULT 0,
    w3 bigint NOT NULL DEFAULT 0, w4 bigint NOT NULL DEFAULT 0, w5 bigint NOT NULL DEFAULT 0,
    w6 bigint NOT NULL DEFAULT 0, w7 bigint NOT NULL DEFAULT 0, w8 bigint NOT NULL DEFAULT 0,
    w9 bigint NOT NULL DEFAULT 0, w10 bigint NOT NULL DEFAULT 0, w11 bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (queue, shard)
) WITH (
    -- Updated by every transaction: small rows, rewritten in place (HOT) as
    -- long as the page has room.
    fillfactor = 50,
    autovacuum_vacuum_scale_factor = 0.0, autovacuum_vacuum_threshold = 1000,
    autovacuum_vacuum_cost_limit = 2000, autovacuum_vacuum_cost_delay = 1
);

-- Samples of each queue's counts over time (RecordHistory, History).
CREATE TABLE daguq_history (
    queue        text   COLLATE "C" NOT NULL,
    at           bigint NOT NULL,
    ready        bigint NOT NULL,
    delayed      bigint NOT NULL,
    in_flight    bigint NOT NULL,
    dead         bigint NOT NULL,
    enqueued     bigint NOT NULL, -- counter totals at that time
    acked        bigint NOT NULL,
    oldest_ready bigint NOT NULL, -- ms
    PRIMARY KEY (queue, at)
);
