-- The draw of a waiting room, done once at opening: each ticket that joined before it gets
-- its place in the line (its rank's order), so nothing counts ranks on every read.
ALTER TABLE waiting_rooms ADD COLUMN drawn BIGINT NOT NULL DEFAULT 0 CHECK (drawn IN (0, 1));
ALTER TABLE queue_tickets ADD COLUMN place BIGINT;
CREATE UNIQUE INDEX queue_tickets_place ON queue_tickets (event_id, place) WHERE place IS NOT NULL;
