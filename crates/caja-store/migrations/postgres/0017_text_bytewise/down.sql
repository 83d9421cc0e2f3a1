DO $$
DECLARE
    t record;
BEGIN
    FOR t IN
        SELECT a.attrelid::regclass AS name,
               string_agg(format('ALTER COLUMN %I TYPE text COLLATE pg_catalog."default"', a.attname), ', ') AS changes
        FROM pg_attribute a
        JOIN pg_class c ON c.oid = a.attrelid
        WHERE c.relnamespace = current_schema()::regnamespace
          AND c.relkind = 'r'
          AND c.relname <> 'caja_schema_history'
          AND a.attnum > 0
          AND NOT a.attisdropped
          AND a.atttypid = 'text'::regtype
          AND a.attcollation = 'pg_catalog."C"'::regcollation
        GROUP BY a.attrelid
    LOOP
        EXECUTE format('ALTER TABLE %s %s', t.name, t.changes);
    END LOOP;
END
$$;
