-- A PBX pushes its CDRs with a bearer token; only its SHA-256 is kept.
ALTER TABLE pbxes
    ADD COLUMN cdr_token_hash TEXT UNIQUE,
    -- the zone the PBX writes local times in (Master.csv)
    ADD COLUMN time_zone TEXT NOT NULL DEFAULT 'UTC';

-- Call detail records: Asterisk's fields as received, and what Switchboard
-- derives. (pbx_id, record_key) makes re-ingesting a record harmless.
CREATE TABLE cdrs (
    id BIGSERIAL PRIMARY KEY,
    pbx_id BIGINT NOT NULL REFERENCES pbxes (id),
    record_key TEXT NOT NULL,
    source TEXT NOT NULL CHECK (source IN ('pull', 'csv', 'push')),
    calldate TIMESTAMPTZ NOT NULL,
    clid TEXT NOT NULL DEFAULT '',
    src TEXT NOT NULL DEFAULT '',
    dst TEXT NOT NULL DEFAULT '',
    dcontext TEXT NOT NULL DEFAULT '',
    channel TEXT NOT NULL DEFAULT '',
    dstchannel TEXT NOT NULL DEFAULT '',
    lastapp TEXT NOT NULL DEFAULT '',
    lastdata TEXT NOT NULL DEFAULT '',
    duration INTEGER NOT NULL,
    billsec INTEGER NOT NULL,
    disposition TEXT NOT NULL,
    amaflags INTEGER NOT NULL DEFAULT 0,
    accountcode TEXT NOT NULL DEFAULT '',
    uniqueid TEXT NOT NULL DEFAULT '',
    userfield TEXT NOT NULL DEFAULT '',
    linkedid TEXT,
    sequence INTEGER,
    did TEXT,
    recordingfile TEXT,
    cnum TEXT,
    cnam TEXT,
    outbound_cnum TEXT,
    outbound_cnam TEXT,
    dst_cnam TEXT,
    peeraccount TEXT,
    -- derived
    direction TEXT NOT NULL CHECK (direction IN ('inbound', 'outbound', 'internal')),
    extension TEXT,
    status TEXT NOT NULL,
    call_key TEXT NOT NULL,
    helper_leg BOOLEAN NOT NULL,
    -- free: costs nothing by rule; rated: priced; unrated: should cost and no rate matched
    rating TEXT NOT NULL CHECK (rating IN ('free', 'rated', 'unrated')),
    billed_seconds INTEGER NOT NULL DEFAULT 0,
    rate_id BIGINT REFERENCES rates (id),
    cost BIGINT NOT NULL DEFAULT 0,
    ledger_transaction_id BIGINT REFERENCES journal_transactions (id),
    ingested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT cdrs_record_key UNIQUE (pbx_id, record_key)
);
CREATE INDEX cdrs_pbx_calldate_idx ON cdrs (pbx_id, calldate DESC);
CREATE INDEX cdrs_unbilled_idx ON cdrs (pbx_id) WHERE rating = 'rated' AND ledger_transaction_id IS NULL AND cost > 0;
CREATE INDEX cdrs_unrated_idx ON cdrs (pbx_id) WHERE rating = 'unrated';

-- Records that could not be read, kept with the reason for staff.
CREATE TABLE cdr_rejects (
    id BIGSERIAL PRIMARY KEY,
    pbx_id BIGINT NOT NULL REFERENCES pbxes (id),
    source TEXT NOT NULL,
    raw TEXT NOT NULL,
    reason TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX cdr_rejects_pbx_idx ON cdr_rejects (pbx_id, received_at);
