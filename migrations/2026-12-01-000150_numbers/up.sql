-- Phone numbers (DIDs): an inventory staff load from carriers' rate-center
-- files, ordered by clients for one of their PBXs, released into a
-- quarantine before they are sold again.

-- A tier prices every number that names it and has no prices of its own.
CREATE TABLE number_tiers (
    name TEXT PRIMARY KEY CHECK (length(name) BETWEEN 1 AND 40),
    setup_fee BIGINT NOT NULL CHECK (setup_fee >= 0),
    monthly_fee BIGINT NOT NULL CHECK (monthly_fee >= 0),
    currency TEXT NOT NULL,
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- One order of one or several numbers for one PBX, paid from the balance.
-- The form's one-time value makes ordering twice one order.
CREATE TABLE number_orders (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    pbx_id BIGINT NOT NULL REFERENCES pbxes (id),
    ordered_by BIGINT REFERENCES users (id),
    request_key TEXT NOT NULL,
    total BIGINT NOT NULL CHECK (total >= 0),
    currency TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (account_id, request_key)
);

CREATE TABLE numbers (
    id BIGSERIAL PRIMARY KEY,
    -- `+` and 8 to 15 digits.
    e164 TEXT NOT NULL UNIQUE CHECK (e164 ~ '^\+[1-9][0-9]{7,14}$'),
    npa TEXT NOT NULL,
    nxx TEXT NOT NULL,
    rate_center TEXT NOT NULL,
    state TEXT NOT NULL,
    city TEXT,
    lata TEXT,
    carrier TEXT,
    tier TEXT REFERENCES number_tiers (name),
    -- The tier's prices, copied, and followed while the number is available.
    priced_by_tier BOOLEAN NOT NULL DEFAULT false,
    setup_fee BIGINT NOT NULL CHECK (setup_fee >= 0),
    monthly_fee BIGINT NOT NULL CHECK (monthly_fee >= 0),
    currency TEXT NOT NULL,
    status TEXT NOT NULL DEFAULT 'available'
        CHECK (status IN ('available', 'ordered', 'active', 'quarantined')),
    account_id BIGINT REFERENCES accounts (id),
    pbx_id BIGINT REFERENCES pbxes (id),
    order_id BIGINT REFERENCES number_orders (id),
    -- The monthly fee of the current holder.
    recurring_item_id BIGINT REFERENCES recurring_items (id),
    ordered_at TIMESTAMPTZ,
    activated_at TIMESTAMPTZ,
    -- Available again from then on.
    quarantined_until TIMESTAMPTZ,
    -- The last complaint of the controller about assigning it, for staff.
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK ((status IN ('ordered', 'active')) = (account_id IS NOT NULL AND pbx_id IS NOT NULL)),
    CHECK ((status = 'quarantined') = (quarantined_until IS NOT NULL))
);
CREATE INDEX numbers_browse_idx ON numbers (state, rate_center, id);
CREATE INDEX numbers_npa_idx ON numbers (npa, id);
CREATE INDEX numbers_status_idx ON numbers (status, id);
CREATE INDEX numbers_account_idx ON numbers (account_id) WHERE account_id IS NOT NULL;

-- Each number's history: imported, ordered, assigned, failed, activated,
-- released, … with who and what.
CREATE TABLE number_events (
    id BIGSERIAL PRIMARY KEY,
    number_id BIGINT NOT NULL REFERENCES numbers (id),
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    kind TEXT NOT NULL,
    account_id BIGINT REFERENCES accounts (id),
    pbx_id BIGINT REFERENCES pbxes (id),
    actor TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT ''
);
CREATE INDEX number_events_number_idx ON number_events (number_id, id);

-- The number an inbound call reached, recognized when it was stored.
ALTER TABLE cdrs ADD COLUMN number_id BIGINT REFERENCES numbers (id);
CREATE INDEX cdrs_number_idx ON cdrs (number_id, calldate) WHERE number_id IS NOT NULL;
