-- daguq schema version 4: moving queues between databases (`daguq copy`,
-- queuestore.Move).
--
-- store_identity names this database for good, whatever path reaches it: a
-- random id chosen here, once.
CREATE TABLE store_identity (
    only_row INTEGER PRIMARY KEY CHECK (only_row = 1),
    store_id TEXT    NOT NULL
) STRICT;
INSERT INTO store_identity (only_row, store_id) VALUES (1, lower(hex(randomblob(16))));

-- Where moved messages came from: written with the messages a move stores,
-- in the same transaction, and dropped once the source has deleted them. A
-- move killed in between finds its records when run again, and stores
-- those messages no second time.
CREATE TABLE move_origins (
    source     TEXT    NOT NULL, -- the source database's store_id
    source_id  INTEGER NOT NULL, -- the message's id there
    queue      TEXT    NOT NULL,
    message_id INTEGER NOT NULL, -- its id here
    moved_at   INTEGER NOT NULL,
    PRIMARY KEY (source, source_id)
) STRICT, WITHOUT ROWID;
CREATE INDEX move_origins_queue ON move_origins (source, queue, source_id);
