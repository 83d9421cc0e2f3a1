DO $$
DECLARE
    stray text;
BEGIN
    SELECT string_agg(format('%s.%I', a.attrelid::regclass, a.attname), ', ') INTO stray
    FROM pg_attribute a
    JOIN pg_class c ON c.oid = a.attrelid
    WHERE c.relnamespace = current_schema()::regnamespace
      AND c.relkind = 'r'
      AND c.relname <> 'caja_schema_history'
      AND a.attnum > 0
      AND NOT a.attisdropped
      AND a.atttypid = 'text'::regtype
      AND a.attcollation <> 'pg_catalog."C"'::regcollation;
    IF stray IS NOT NULL THEN
        RAISE EXCEPTION 'text columns not collated "C": %', stray;
    END IF;
END
$$;
