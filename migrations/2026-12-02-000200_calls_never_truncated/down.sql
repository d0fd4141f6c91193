-- New months are made as 2026-12-01-000180_calls_by_month made them, and
-- the months' tables of calls lose their guard.
CREATE OR REPLACE FUNCTION call_months_ready(months timestamptz[]) RETURNS integer AS $$
DECLARE
    first_day timestamp;
    parent text;
    part text;
    made integer := 0;
    locked boolean := false;
BEGIN
    FOR first_day IN
        SELECT DISTINCT date_trunc('month', m AT TIME ZONE 'UTC') FROM unnest(months) AS m
        ORDER BY 1
    LOOP
        FOREACH parent IN ARRAY ARRAY['cdrs', 'calls'] LOOP
            part := parent || to_char(first_day, '"_y"YYYY"m"MM');
            CONTINUE WHEN to_regclass(part) IS NOT NULL;
            IF NOT locked THEN
                LOCK TABLE ONLY cdrs, calls IN SHARE UPDATE EXCLUSIVE MODE;
                locked := true;
                -- Another instance may have made it while this one waited.
                CONTINUE WHEN to_regclass(part) IS NOT NULL;
            END IF;
            EXECUTE format('CREATE TABLE %I (LIKE %I INCLUDING DEFAULTS INCLUDING CONSTRAINTS)',
                           part, parent);
            EXECUTE format('ALTER TABLE %I ATTACH PARTITION %I FOR VALUES FROM (%L) TO (%L)',
                           parent, part,
                           first_day AT TIME ZONE 'UTC',
                           (first_day + interval '1 month') AT TIME ZONE 'UTC');
            IF parent = 'cdrs' THEN
                -- Row triggers pass to partitions; a statement's do not.
                EXECUTE format('CREATE TRIGGER cdrs_never_truncated BEFORE TRUNCATE ON %I '
                               'FOR EACH STATEMENT EXECUTE FUNCTION cdrs_keep_what_was_received()',
                               part);
            END IF;
            made := made + 1;
        END LOOP;
    END LOOP;
    RETURN made;
END;
$$ LANGUAGE plpgsql;

DO $$
DECLARE
    part text;
BEGIN
    FOR part IN SELECT inhrelid::regclass::text FROM pg_inherits
                WHERE inhparent = 'calls'::regclass LOOP
        EXECUTE format('DROP TRIGGER IF EXISTS calls_never_truncated ON %I', part);
    END LOOP;
END;
$$;
DROP TRIGGER calls_never_truncated ON calls;
DROP FUNCTION call_month_guarded(text, text);
DROP FUNCTION calls_keep_their_day_totals();
