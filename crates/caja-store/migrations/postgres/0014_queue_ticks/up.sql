-- How many admissions of a waiting room the change feed has announced: one aggregated
-- queue.advanced event per tick in which the count moved, from whichever replica claims it.
ALTER TABLE waiting_rooms ADD COLUMN announced BIGINT NOT NULL DEFAULT 0 CHECK (announced >= 0);
