-- Every text column compares byte by byte (collation "C"), whatever the database's locale.
-- The text caja compares and indexes is ids, keys, codes, statuses and RFC 3339 timestamps:
-- bytewise order is their order (SQLite's too, so both engines sort alike), and a locale's
-- collation only costs: on a database created with a language's collation, the backends
-- spent about an eighth more CPU per checkout comparing keys in b-trees (BENCHMARKS.md).
-- Changing a column's collation keeps its rows as they are and rebuilds its indexes.
--
-- A contract: a statement an older replica prepared before this ran and that returns one of
-- these columns fails from then on ("cached plan must not change result type"), so older
-- replicas must stop serving. The migrations' own history table is left as it is: every
-- replica reads it (/ready), and it is never on a hot path.
DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT a.attrelid::regclass AS name,
               string_agg(format('ALTER COLUMN %I TYPE text COLLATE "C"', a.attname), ', ') AS changes
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind = 'r'
          AND c.relname <> 'caja_schema_history'
          AND a.attnum > 0
          AND NOT a.attisdropped
          AND a.atttypid = 'text'::regtype
          AND a.attcollation <> 'pg_catalog."C"'::regcollation
        GROUP BY a.attrelid
    LOOP
        EXECUTE format('ALTER TABLE %s %s', t.name, t.changes);
    END LOOP;
END
$$;
