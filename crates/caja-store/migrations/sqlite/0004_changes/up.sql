-- The change feed: one row per committed change of a public resource, written in the same
-- transaction as the change. `seq` comes from the `change_seq` counter, whose row lock is
-- held from the moment a transaction takes its numbers until it commits, so events become
-- visible in `seq` order and a reader resuming after N never misses a smaller number that
-- commits later.
CREATE TABLE changes (
    seq         INTEGER PRIMARY KEY,
    type        TEXT NOT NULL,
    resource_id TEXT NOT NULL,
    data        TEXT NOT NULL,
    at          TEXT NOT NULL
);
CREATE INDEX changes_at ON changes (at);
INSERT INTO counters (name, value) VALUES ('change_seq', 0), ('changes_pruned_through', 0);
