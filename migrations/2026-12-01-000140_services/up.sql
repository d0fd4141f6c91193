-- Additional services: a catalogue of add-ons staff keep (extra extensions,
-- call recording storage, fax to email …), and the services clients order
-- from it. An ordered service is paid from the balance when ordered (its
-- one-time fee and its first month), then monthly through a recurring item
-- of kind `service`; it waits for staff when they must act on it, and a
-- cancelled one runs to the end of the period already paid.
CREATE TABLE services (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL CHECK (length(name) BETWEEN 1 AND 80),
    description TEXT NOT NULL DEFAULT '' CHECK (length(description) <= 1000),
    currency TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    one_time_fee BIGINT NOT NULL CHECK (one_time_fee BETWEEN 0 AND 1000000000000),
    monthly_fee BIGINT NOT NULL CHECK (monthly_fee BETWEEN 0 AND 1000000000000),
    -- what an order of it names: one of the account's PBXs, or the account
    attaches_to TEXT NOT NULL CHECK (attaches_to IN ('pbx', 'account')),
    -- staff must do something before it works (an order waits for them)
    needs_staff BOOLEAN NOT NULL,
    -- clients can order it; withdrawn ones keep running where ordered
    offered BOOLEAN NOT NULL DEFAULT true,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    updated_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE UNIQUE INDEX services_name_key ON services (lower(name), currency);

-- A service an account ordered. Name and fees are kept as bought: a later
-- change to the catalogue changes what new orders pay, not this one.
CREATE TABLE service_orders (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    service_id BIGINT NOT NULL REFERENCES services (id),
    pbx_id BIGINT REFERENCES pbxes (id),
    ordered_by BIGINT NOT NULL REFERENCES users (id),
    -- the order form's one-time value: submitting it twice orders once
    request_key TEXT NOT NULL CHECK (request_key <> ''),
    name TEXT NOT NULL,
    currency TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    one_time_fee BIGINT NOT NULL CHECK (one_time_fee >= 0),
    monthly_fee BIGINT NOT NULL CHECK (monthly_fee >= 0),
    state TEXT NOT NULL CHECK (state IN ('awaiting_staff', 'active')),
    ordered_at TIMESTAMPTZ NOT NULL,
    -- when it became active: at once, or when staff marked it done
    completed_at TIMESTAMPTZ,
    completed_by BIGINT REFERENCES users (id),
    cancelled_at TIMESTAMPTZ,
    -- the end of the period paid when it was cancelled
    ends_at TIMESTAMPTZ,
    CHECK ((state = 'active') = (completed_at IS NOT NULL)),
    CHECK ((cancelled_at IS NULL) = (ends_at IS NULL))
);
CREATE UNIQUE INDEX service_orders_request_key_idx ON service_orders (account_id, request_key);
CREATE INDEX service_orders_account_idx ON service_orders (account_id, id);
CREATE INDEX service_orders_state_idx ON service_orders (state, id);
