-- Each PBX's calls and their cost by the day (UTC) they started, kept by
-- the database itself as calls are written, so that a month's usage per PBX
-- reads a row per PBX and day instead of every call: the client home and
-- the statements sum whole days from here and read from `calls` only the
-- hours at either end of a range that are not whole days in UTC (a month in
-- New York starts at 05:00 UTC). Days in UTC serve every time zone that
-- way, and a change of an account's zone changes nothing here.
--
-- The rows follow `calls` through statement triggers: every statement that
-- inserts, updates or deletes calls adds what it added and takes away what
-- it took, grouped, in the same transaction, so a day's row is always the
-- sum of its calls as the transaction sees them. Writers of one PBX's calls
-- take the PBX's turn first (ingestion and pricing), so two transactions
-- never wait on each other's rows here. The triggers sit on the
-- partitioned table and see the rows of every month's table, a call moved
-- into an earlier month's table included.
--
-- Not partitioned: a row per PBX and day is small (two thousand PBXs make
-- under a million rows a year) and every read is by account and days.
CREATE TABLE call_days (
    account_id bigint NOT NULL,
    day date NOT NULL,
    pbx_id bigint NOT NULL,
    calls bigint NOT NULL,
    cost bigint NOT NULL,
    -- The totals ride in the key's index, so a month is read from the index
    -- alone once vacuum has seen its days.
    PRIMARY KEY (account_id, day, pbx_id) INCLUDE (calls, cost)
);

CREATE FUNCTION call_days_follow_calls() RETURNS trigger AS $$
BEGIN
    IF TG_OP = 'INSERT' THEN
        INSERT INTO call_days AS d (account_id, day, pbx_id, calls, cost)
        SELECT account_id, (start AT TIME ZONE 'UTC')::date, pbx_id, count(*), sum(cost)::bigint
        FROM new_calls
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (account_id, day, pbx_id) DO UPDATE
            SET calls = d.calls + EXCLUDED.calls, cost = d.cost + EXCLUDED.cost;
    ELSIF TG_OP = 'UPDATE' THEN
        INSERT INTO call_days AS d (account_id, day, pbx_id, calls, cost)
        SELECT account_id, day, pbx_id, sum(calls)::bigint, sum(cost)::bigint
        FROM (
            SELECT account_id, (start AT TIME ZONE 'UTC')::date AS day, pbx_id, 1 AS calls, cost
            FROM new_calls
            UNION ALL
            SELECT account_id, (start AT TIME ZONE 'UTC')::date, pbx_id, -1, -cost
            FROM old_calls
        ) changed
        GROUP BY 1, 2, 3
        HAVING sum(calls) <> 0 OR sum(cost) <> 0
        ORDER BY 1, 2, 3
        ON CONFLICT (account_id, day, pbx_id) DO UPDATE
            SET calls = d.calls + EXCLUDED.calls, cost = d.cost + EXCLUDED.cost;
    ELSIF TG_OP = 'DELETE' THEN
        INSERT INTO call_days AS d (account_id, day, pbx_id, calls, cost)
        SELECT account_id, (start AT TIME ZONE 'UTC')::date, pbx_id, -count(*), -sum(cost)::bigint
        FROM old_calls
        GROUP BY 1, 2, 3
        ORDER BY 1, 2, 3
        ON CONFLICT (account_id, day, pbx_id) DO UPDATE
            SET calls = d.calls + EXCLUDED.calls, cost = d.cost + EXCLUDED.cost;
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER call_days_after_insert AFTER INSERT ON calls
    REFERENCING NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION call_days_follow_calls();
CREATE TRIGGER call_days_after_update AFTER UPDATE ON calls
    REFERENCING OLD TABLE AS old_calls NEW TABLE AS new_calls
    FOR EACH STATEMENT EXECUTE FUNCTION call_days_follow_calls();
CREATE TRIGGER call_days_after_delete AFTER DELETE ON calls
    REFERENCING OLD TABLE AS old_calls
    FOR EACH STATEMENT EXECUTE FUNCTION call_days_follow_calls();

-- The calls already held. Creating the triggers took a lock that holds
-- off every writer of calls until this migration commits, so the calls
-- summed here and those the triggers see from then on are the same calls.
INSERT INTO call_days (account_id, day, pbx_id, calls, cost)
SELECT account_id, (start AT TIME ZONE 'UTC')::date, pbx_id, count(*), sum(cost)::bigint
FROM calls
GROUP BY 1, 2, 3;
