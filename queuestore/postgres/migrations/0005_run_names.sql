-- daguq PostgreSQL schema version 5: the Dagu runs that enqueued and last
-- claimed each message ("dag/run-id"), as the SQLite store keeps them, for
-- the dashboard's links to Dagu. Nullable columns without a default: adding
-- them rewrites no row.
ALTER TABLE daguq_messages ADD COLUMN enqueued_by text, ADD COLUMN claimed_by text;
