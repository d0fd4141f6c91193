-- CDRs and calls kept in one table per month (UTC) of their start
-- (declarative partitioning), so that a page or a report reads one or two
-- months however long the history grows.
--
-- A partitioned table's unique keys must hold its partition key. A record's
-- key already names its start to the second (`calls::cdr::record_key`), so
-- records are stored with their start to the second (as Asterisk writes it;
-- only a push could carry a fraction) and the key becomes (PBX, record key,
-- start): the same record, however it arrives, has the same start and lands
-- on the same row. A call is keyed (PBX, call key, start), its start being
-- its earliest leg's; a leg that arrives later and started earlier moves
-- the call into the leg's month (ingestion finds a call's row among the
-- calls that started within the longest call of its legs).
--
-- Nothing refers to CDRs or calls by a foreign key, so widening their keys
-- changes no other table.

-- Makes the months holding `months` that do not exist yet, for both tables;
-- returns how many tables it made. Ingestion calls it for the months of a
-- batch, a daily job for this month and the next ones. A month is made as a
-- table of its own and then attached, which takes only a SHARE UPDATE
-- EXCLUSIVE lock on the parent (reads and writes go on). Instances making
-- months take turns on that same lock, taken first: it conflicts with
-- itself, and taking a table lock makes the waiter see the tables the other
-- made (an advisory lock would not: the name lookups after it could still
-- miss a table committed while it waited), so the second finds them made.
CREATE FUNCTION call_months_ready(months timestamptz[]) RETURNS integer AS $$
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

-- The tables as they were, moved aside without their keys and indexes
-- (whose names the new tables take).
ALTER TABLE cdrs RENAME TO cdrs_unpartitioned;
ALTER TABLE cdrs_unpartitioned
    DROP CONSTRAINT cdrs_pkey,
    DROP CONSTRAINT cdrs_record_key,
    DROP CONSTRAINT cdrs_pbx_id_fkey,
    DROP CONSTRAINT cdrs_rate_id_fkey,
    DROP CONSTRAINT cdrs_ledger_transaction_id_fkey,
    DROP CONSTRAINT cdrs_number_id_fkey;
DROP INDEX cdrs_unrated_idx;
DROP INDEX cdrs_number_idx;
DROP TRIGGER cdrs_append_only ON cdrs_unpartitioned;
DROP TRIGGER cdrs_never_truncated ON cdrs_unpartitioned;
ALTER TABLE calls RENAME TO calls_unpartitioned;
ALTER TABLE calls_unpartitioned DROP CONSTRAINT calls_pkey;
DROP INDEX calls_account_start_idx;
ALTER SEQUENCE cdrs_id_seq OWNED BY NONE;

CREATE TABLE cdrs (LIKE cdrs_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (calldate);
ALTER SEQUENCE cdrs_id_seq OWNED BY cdrs.id;
ALTER TABLE cdrs
    ADD CONSTRAINT cdrs_pkey PRIMARY KEY (id, calldate),
    ADD CONSTRAINT cdrs_record_key UNIQUE (pbx_id, record_key, calldate),
    -- to the second: the record key speaks of the second, so must the row
    ADD CONSTRAINT cdrs_calldate_whole_seconds
        CHECK (calldate = date_trunc('second', calldate AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'),
    ADD CONSTRAINT cdrs_pbx_id_fkey FOREIGN KEY (pbx_id) REFERENCES pbxes (id),
    ADD CONSTRAINT cdrs_rate_id_fkey FOREIGN KEY (rate_id) REFERENCES rates (id),
    ADD CONSTRAINT cdrs_ledger_transaction_id_fkey
        FOREIGN KEY (ledger_transaction_id) REFERENCES journal_transactions (id),
    ADD CONSTRAINT cdrs_number_id_fkey FOREIGN KEY (number_id) REFERENCES numbers (id);
CREATE INDEX cdrs_unrated_idx ON cdrs (pbx_id) WHERE rating = 'unrated';
CREATE INDEX cdrs_number_idx ON cdrs (number_id, calldate) WHERE number_id IS NOT NULL;
CREATE TRIGGER cdrs_append_only BEFORE UPDATE OR DELETE ON cdrs
    FOR EACH ROW EXECUTE FUNCTION cdrs_keep_what_was_received();
CREATE TRIGGER cdrs_never_truncated BEFORE TRUNCATE ON cdrs
    FOR EACH STATEMENT EXECUTE FUNCTION cdrs_keep_what_was_received();

CREATE TABLE calls (LIKE calls_unpartitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS)
    PARTITION BY RANGE (start);
ALTER TABLE calls ADD CONSTRAINT calls_pkey PRIMARY KEY (pbx_id, call_key, start);
-- The home's last calls and the month report: an index-only scan of one
-- account's month.
CREATE INDEX calls_account_start_idx ON calls (account_id, start)
    INCLUDE (pbx_id, direction, extension, status, billsec, cost, unrated);

-- The months held, and this one and the next two.
-- (Months are cut in UTC whatever the session's time zone.)
SELECT call_months_ready(array(
    SELECT DISTINCT date_trunc('month', calldate AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    FROM cdrs_unpartitioned
    UNION SELECT DISTINCT date_trunc('month', start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC'
    FROM calls_unpartitioned
    UNION SELECT (date_trunc('month', now() AT TIME ZONE 'UTC') + n * interval '1 month') AT TIME ZONE 'UTC'
    FROM generate_series(0, 2) AS n));

-- Times to the second, as record keys have them.
INSERT INTO cdrs (id, pbx_id, record_key, source, calldate, clid, src, dst, dcontext, channel,
                  dstchannel, lastapp, lastdata, duration, billsec, disposition, amaflags,
                  accountcode, uniqueid, userfield, linkedid, sequence, did, recordingfile, cnum,
                  cnam, outbound_cnum, outbound_cnam, dst_cnam, peeraccount, direction, extension,
                  status, call_key, helper_leg, rating, billed_seconds, rate_id, cost,
                  ledger_transaction_id, ingested_at, number_id)
SELECT id, pbx_id, record_key, source,
       date_trunc('second', calldate AT TIME ZONE 'UTC') AT TIME ZONE 'UTC', clid, src, dst,
       dcontext, channel, dstchannel, lastapp, lastdata, duration, billsec, disposition,
       amaflags, accountcode, uniqueid, userfield, linkedid, sequence, did, recordingfile, cnum,
       cnam, outbound_cnum, outbound_cnam, dst_cnam, peeraccount, direction, extension, status,
       call_key, helper_leg, rating, billed_seconds, rate_id, cost, ledger_transaction_id,
       ingested_at, number_id
FROM cdrs_unpartitioned;
INSERT INTO calls (pbx_id, call_key, account_id, start, lead_answered, lead_calldate, lead_key,
                   src, dst, direction, extension, status, duration, billsec, cost, legs, rated,
                   unrated, billed_seconds)
SELECT pbx_id, call_key, account_id,
       date_trunc('second', start AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       lead_answered, date_trunc('second', lead_calldate AT TIME ZONE 'UTC') AT TIME ZONE 'UTC',
       lead_key, src, dst, direction, extension, status, duration, billsec, cost, legs, rated,
       unrated, billed_seconds
FROM calls_unpartitioned;
DROP TABLE cdrs_unpartitioned;
DROP TABLE calls_unpartitioned;
