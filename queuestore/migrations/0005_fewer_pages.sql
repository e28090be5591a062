-- daguq schema version 5: fewer pages written per message.
--
-- No index of every leased message: messages_lease took a write in every
-- claim and every ack (about one WAL page per message at batch 1). Finishes
-- find messages by id, which they always have, and check the lease on the
-- row. messages_waiting is split in two, so that a lease's messages in
-- flight can be found without walking the delayed ones: messages_delayed
-- (state 1 without a lease: delayed, retrying, released) and
-- messages_leased (state 1 with a lease: in flight, or ran out and not yet
-- moved). A claim and an ack write messages_leased where they wrote
-- messages_waiting. LeaseByToken, the count of live leases and the drop of a
-- lease row walk messages_leased. What is left is a lease that ran out and
-- whose messages a claim moved back into the ready set, where no index holds
-- lease_id: messages_lapsed keeps those until another claim takes them,
-- which the common claim and ack never write.
DROP INDEX messages_lease;
DROP INDEX messages_waiting;
CREATE INDEX messages_delayed ON messages (queue, visible_at) WHERE state = 1 AND lease_id IS NULL;
CREATE INDEX messages_leased ON messages (queue, visible_at, lease_id) WHERE state = 1 AND lease_id IS NOT NULL;
CREATE INDEX messages_lapsed ON messages (lease_id) WHERE state = 0 AND lease_id IS NOT NULL;

-- Bodies of acked messages waiting to be deleted together (a JSON array of
-- ids, at most bodyTrashMax). Freeing a body's page (the freed pages' list,
-- the pointer map, the file header) cost an ack of one message about three
-- WAL pages, more than the rest of the ack; the queue's counts row, which
-- every ack writes anyway, carries the list for free, and the ack that
-- fills it deletes the bodies on it at once.
ALTER TABLE queue_counts ADD COLUMN body_trash TEXT;
