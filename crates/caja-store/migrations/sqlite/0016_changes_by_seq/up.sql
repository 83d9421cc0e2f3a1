-- The feed is pruned in seq order (events are stamped in commit order, so the old ones are
-- its oldest seqs), so nothing reads it by `at` any more, and every event written no longer
-- pays for an index entry on it.
DROP INDEX changes_at;
