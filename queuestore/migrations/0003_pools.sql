-- daguq schema version 3: pools (docs/pools.md).
--
-- A pool has a capacity in slots. A step holds some of them while its
-- command runs (a grant) or waits for them in line (a waiter). Both are rows
-- with an end time that their process pushes forward while it lives: when a
-- process dies, its rows stop counting at that time and the next write of
-- the pool deletes them. Times are integer milliseconds since the Unix
-- epoch, UTC.

CREATE TABLE pools (
    name       TEXT    PRIMARY KEY,
    capacity   INTEGER NOT NULL, -- slots
    updated_at INTEGER NOT NULL
) STRICT;

-- Who holds or waits: the Dagu DAG, run and step (from the step's
-- environment) and the process.
CREATE TABLE pool_grants (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- with secret: the fencing token of a release
    secret     TEXT    NOT NULL,
    pool       TEXT    NOT NULL,
    slots      INTEGER NOT NULL,
    priority   INTEGER NOT NULL,
    dag        TEXT    NOT NULL,
    run_id     TEXT    NOT NULL,
    step       TEXT    NOT NULL,
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    arrived_at INTEGER NOT NULL, -- when it asked
    granted_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL  -- the lease: counts until then unless extended
) STRICT;
-- Covers the sum of live slots of a pool.
CREATE INDEX pool_grants_live ON pool_grants (pool, expires_at, slots);

CREATE TABLE pool_waiters (
    id         INTEGER PRIMARY KEY AUTOINCREMENT, -- arrival order
    secret     TEXT    NOT NULL,
    pool       TEXT    NOT NULL,
    slots      INTEGER NOT NULL,
    priority   INTEGER NOT NULL, -- higher first, then arrival
    dag        TEXT    NOT NULL,
    run_id     TEXT    NOT NULL,
    step       TEXT    NOT NULL,
    host       TEXT    NOT NULL,
    pid        INTEGER NOT NULL,
    arrived_at INTEGER NOT NULL,
    expires_at INTEGER NOT NULL  -- the registration: in line until then unless refreshed
) STRICT;
-- The line of a pool in serving order.
CREATE INDEX pool_waiters_line ON pool_waiters (pool, priority DESC, id);
