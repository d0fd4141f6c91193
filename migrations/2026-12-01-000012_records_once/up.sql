-- Every call billed once and right.
--
-- 1. A record's key is the same whichever way it arrived (pull, Master.csv,
--    push) and different for different records: its uniqueid and a digest
--    of the columns every source carries alike (see `calls::cdr::record_key`,
--    which computes the same). Records already held get their new key; two
--    rows that turn out to be one record (pulled and imported before this
--    change) both stay, the later one marked, so what was billed stays
--    explained.
CREATE TEMPORARY TABLE rekeyed ON COMMIT DROP AS
SELECT id, pbx_id, record_key AS old_key,
       uniqueid || '#' || substr(encode(sha256(convert_to(concat_ws(E'\x1f',
           uniqueid,
           to_char(calldate AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS"Z"'),
           channel, dstchannel, disposition, duration::text, billsec::text, src, dst),
           'UTF8')), 'hex'), 1, 16) AS new_key
FROM cdrs;
UPDATE rekeyed r SET new_key = r.new_key || ':held-twice:' || r.id
FROM (SELECT id, row_number() OVER (PARTITION BY pbx_id, new_key ORDER BY id) AS n FROM rekeyed) d
WHERE d.id = r.id AND d.n > 1;
ALTER TABLE cdrs DROP CONSTRAINT cdrs_record_key;
UPDATE cdrs c SET record_key = r.new_key FROM rekeyed r WHERE r.id = c.id;
ALTER TABLE cdrs ADD CONSTRAINT cdrs_record_key UNIQUE (pbx_id, record_key);
UPDATE calls c SET lead_key = r.new_key
FROM rekeyed r WHERE r.pbx_id = c.pbx_id AND r.old_key = c.lead_key;

-- 2. A record that could not be read is kept once, however often it is
--    sent: rejects are known by a digest of their text.
ALTER TABLE cdr_rejects ADD COLUMN raw_digest TEXT;
UPDATE cdr_rejects SET raw_digest = encode(sha256(convert_to(raw, 'UTF8')), 'hex');
DELETE FROM cdr_rejects r USING cdr_rejects o
WHERE r.pbx_id = o.pbx_id AND r.raw_digest = o.raw_digest AND r.id > o.id;
ALTER TABLE cdr_rejects
    ALTER COLUMN raw_digest SET NOT NULL,
    ADD CONSTRAINT cdr_rejects_once UNIQUE (pbx_id, raw_digest);

-- 3. A call's seconds are its answered legs' seconds added up (a transfer's
--    two halves both talked and were both billed), and it carries the
--    seconds its legs were billed for.
ALTER TABLE calls ADD COLUMN billed_seconds INTEGER NOT NULL DEFAULT 0;
UPDATE calls c SET billsec = s.billsec, billed_seconds = s.billed
FROM (SELECT pbx_id, call_key,
             sum(CASE WHEN status = 'answered' THEN billsec ELSE 0 END)::int AS billsec,
             sum(billed_seconds)::int AS billed
      FROM cdrs WHERE NOT helper_leg GROUP BY pbx_id, call_key) s
WHERE s.pbx_id = c.pbx_id AND s.call_key = c.call_key;

-- 4. Costs are never negative.
ALTER TABLE cdrs ADD CONSTRAINT cdrs_cost_not_negative CHECK (cost >= 0);
ALTER TABLE calls ADD CONSTRAINT calls_cost_not_negative CHECK (cost >= 0);

-- 5. A CDR is kept as received: only the columns pricing fills in
--    (`calls::price_unrated`) may change, and nothing is deleted.
CREATE FUNCTION cdrs_keep_what_was_received() RETURNS trigger AS $$
DECLARE
    priced CONSTANT text[] := ARRAY['rating', 'billed_seconds', 'rate_id', 'cost', 'ledger_transaction_id'];
BEGIN
    IF TG_OP <> 'UPDATE' THEN
        RAISE EXCEPTION 'call records are never deleted' USING ERRCODE = 'insufficient_privilege';
    END IF;
    IF (to_jsonb(NEW) - priced) IS DISTINCT FROM (to_jsonb(OLD) - priced) THEN
        RAISE EXCEPTION 'a call record is kept as received; only its pricing may change'
            USING ERRCODE = 'insufficient_privilege';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER cdrs_append_only BEFORE UPDATE OR DELETE ON cdrs
    FOR EACH ROW EXECUTE FUNCTION cdrs_keep_what_was_received();
CREATE TRIGGER cdrs_never_truncated BEFORE TRUNCATE ON cdrs
    FOR EACH STATEMENT EXECUTE FUNCTION cdrs_keep_what_was_received();
