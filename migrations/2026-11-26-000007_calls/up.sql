-- One row per call, kept at ingest from its legs (the CDRs sharing a call
-- key), so the client home and the reports read calls instead of folding
-- legs at read time. The lead leg speaks for the call: its first answered
-- leg, or its first leg when none was answered (ties, such as the legs of a
-- ring group starting in the same second, go to the smaller record key).
CREATE TABLE calls (
    pbx_id BIGINT NOT NULL REFERENCES pbxes (id),
    call_key TEXT NOT NULL,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    -- the earliest leg's start
    start TIMESTAMPTZ NOT NULL,
    lead_answered BOOLEAN NOT NULL,
    lead_calldate TIMESTAMPTZ NOT NULL,
    lead_key TEXT NOT NULL,
    src TEXT NOT NULL,
    dst TEXT NOT NULL,
    direction TEXT NOT NULL,
    extension TEXT,
    status TEXT NOT NULL,
    duration INTEGER NOT NULL,
    -- the longest answered leg's seconds
    billsec INTEGER NOT NULL,
    -- the sum of the legs' costs
    cost BIGINT NOT NULL,
    legs INTEGER NOT NULL,
    -- some leg was priced; some leg should cost money and matched no rate
    rated BOOLEAN NOT NULL,
    unrated BOOLEAN NOT NULL,
    PRIMARY KEY (pbx_id, call_key)
);
-- The home's last calls and the month report: an index-only scan of one
-- account's month.
CREATE INDEX calls_account_start_idx ON calls (account_id, start)
    INCLUDE (pbx_id, direction, extension, status, billsec, cost, unrated);

INSERT INTO calls
SELECT c.pbx_id, c.call_key, min(p.account_id), min(c.calldate),
       bool_or(c.status = 'answered'),
       (array_agg(c.calldate ORDER BY (c.status = 'answered') DESC, c.calldate, c.record_key COLLATE "C"))[1],
       (array_agg(c.record_key ORDER BY (c.status = 'answered') DESC, c.calldate, c.record_key COLLATE "C"))[1],
       (array_agg(c.src ORDER BY (c.status = 'answered') DESC, c.calldate, c.record_key COLLATE "C"))[1],
       (array_agg(c.dst ORDER BY (c.status = 'answered') DESC, c.calldate, c.record_key COLLATE "C"))[1],
       (array_agg(c.direction ORDER BY (c.status = 'answered') DESC, c.calldate, c.record_key COLLATE "C"))[1],
       (array_agg(c.extension ORDER BY (c.status = 'answered') DESC, c.calldate, c.record_key COLLATE "C"))[1],
       (array_agg(c.status ORDER BY (c.status = 'answered') DESC, c.calldate, c.record_key COLLATE "C"))[1],
       (array_agg(c.duration ORDER BY (c.status = 'answered') DESC, c.calldate, c.record_key COLLATE "C"))[1],
       max(CASE WHEN c.status = 'answered' THEN c.billsec ELSE 0 END),
       sum(c.cost)::bigint,
       count(*),
       bool_or(c.rating = 'rated'),
       bool_or(c.rating = 'unrated')
FROM cdrs c JOIN pbxes p ON p.id = c.pbx_id
WHERE NOT c.helper_leg
GROUP BY c.pbx_id, c.call_key;

-- Usage is posted as calls are stored, so no call waits to be billed; and
-- reads of calls by time go to `calls`, so CDRs need no index by time.
DROP INDEX cdrs_unbilled_idx;
DROP INDEX cdrs_pbx_calldate_idx;
