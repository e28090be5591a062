-- daguq PostgreSQL schema version 3: moving queues between databases
-- (`daguq copy`, queuestore.Move), as the SQLite store's schema 4.
--
-- daguq_store names this database (and schema) for good, whatever URL
-- reaches it: a random id chosen here, once.
CREATE TABLE daguq_store (
    only_row boolean PRIMARY KEY DEFAULT true CHECK (only_row),
    store_id text    NOT NULL
);
INSERT INTO daguq_store (store_id) VALUES (replace(gen_random_uuid()::text, '-', ''));

-- Where moved messages came from: written with the messages a move stores,
-- in the same transaction, and dropped once the source has deleted them. A
-- move killed in between finds its records when run again, and stores
-- those messages no second time.
CREATE TABLE daguq_move_origins (
    source     text   COLLATE "C" NOT NULL, -- the source database's store_id
    source_id  bigint NOT NULL,             -- the message's id there
    queue      text   COLLATE "C" NOT NULL,
    message_id bigint NOT NULL,             -- its id here
    moved_at   bigint NOT NULL,
    PRIMARY KEY (source, source_id)
);
CREATE INDEX daguq_move_origins_queue ON daguq_move_origins (source, queue, source_id);
