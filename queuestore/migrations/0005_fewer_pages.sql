-- daguq schema version 5: fewer pages written per message.
--
-- No index of every leased message: messages_lease took a write in every
-- claim and every ack (about one WAL page per message at batch 1). Finishes
-- find messages by id, which they always have, and check the lease on the row. A lease's messages in flight
-- are in messages_waiting (state 1, which carries lease_id): LeaseByToken
-- and the count of live leases walk it. What is left is a lease that ran out
-- and whose messages a claim moved back into the ready set, where no index
-- holds lease_id: messages_lapsed keeps those until another claim takes
-- them, which the common claim and ack never write.
DROP INDEX messages_lease;
CREATE INDEX messages_lapsed ON messages (lease_id) WHERE state = 0 AND lease_id IS NOT NULL;

-- Bodies of acked messages waiting to be deleted together (a JSON array of
-- ids, at most bodyTrashMax): freeing a body's page costs an ack at batch 1
-- more WAL pages than the rest of the ack, and the queue's counts row, which
-- every ack writes anyway, carries the list for free.
ALTER TABLE queue_counts ADD COLUMN body_trash TEXT;
