-- Calls are not truncated, as CDRs are not. The day totals (`call_days`)
-- follow every INSERT, UPDATE and DELETE of calls through statement
-- triggers; a TRUNCATE fires none of them and would leave the totals
-- behind, and the calls out of step with the CDRs they are made from.
-- Deleting calls keeps the totals right.
CREATE FUNCTION calls_keep_their_day_totals() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'calls are not truncated: their day totals would be left behind (delete them instead)'
        USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

-- The guard a month's table of `parent` needs of its own: a statement's
-- trigger on the partitioned table fires for a TRUNCATE of that table, not
-- of one month's table.
CREATE FUNCTION call_month_guarded(parent text, part text) RETURNS void AS $$
BEGIN
    IF parent = 'cdrs' THEN
        EXECUTE format('CREATE TRIGGER cdrs_never_truncated BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION cdrs_keep_what_was_received()',
                       part);
    ELSIF parent = 'calls' THEN
        EXECUTE format('CREATE TRIGGER calls_never_truncated BEFORE TRUNCATE ON %I '
                       'FOR EACH STATEMENT EXECUTE FUNCTION calls_keep_their_day_totals()',
                       part);
    END IF;
END;
$$ LANGUAGE plpgsql;

-- As in 2026-12-01-000180_calls_by_month, each new month's table now
-- guarded by `call_month_guarded`.
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
            PERFORM call_month_guarded(parent, part);
            made := made + 1;
        END LOOP;
    END LOOP;
    RETURN made;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER calls_never_truncated BEFORE TRUNCATE ON calls
    FOR EACH STATEMENT EXECUTE FUNCTION calls_keep_their_day_totals();
SELECT call_month_guarded('calls', inhrelid::regclass::text)
FROM pg_inherits WHERE inhparent = 'calls'::regclass;
