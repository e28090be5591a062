-- daguq schema version 5: bodies of acked messages deleted together.
--
-- Freeing a body's page (the freed pages' list, the pointer map, the file
-- header) cost an ack of one message about three WAL pages, more than the
-- rest of the ack. An ack of fewer than bodyTrashMax messages lists the ids
-- here (a JSON array), on the queue's counts row, which every ack writes
-- anyway; the ack that fills the list deletes the bodies on it at once.
ALTER TABLE queue_counts ADD COLUMN body_trash TEXT;
