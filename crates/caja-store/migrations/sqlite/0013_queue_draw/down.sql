DROP INDEX queue_tickets_place;
ALTER TABLE queue_tickets DROP COLUMN place;
ALTER TABLE waiting_rooms DROP COLUMN drawn;
