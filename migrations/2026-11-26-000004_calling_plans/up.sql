-- Rate tables. Every change is a new version taking effect at a moment;
-- versions are never rewritten, so a rated call keeps the price it got.
CREATE TABLE calling_plans (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL UNIQUE CHECK (name <> ''),
    currency TEXT NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    -- what an answered inbound call to a DID costs a minute, if anything
    inbound_per_minute BIGINT CHECK (inbound_per_minute >= 0),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

CREATE TABLE rates (
    id BIGSERIAL PRIMARY KEY,
    calling_plan_id BIGINT NOT NULL REFERENCES calling_plans (id),
    prefix TEXT NOT NULL CHECK (prefix ~ '^[0-9]{1,15}$'),
    description TEXT NOT NULL DEFAULT '',
    per_minute BIGINT NOT NULL CHECK (per_minute >= 0),
    connection_fee BIGINT NOT NULL DEFAULT 0 CHECK (connection_fee >= 0),
    initial_increment INTEGER NOT NULL CHECK (initial_increment BETWEEN 1 AND 3600),
    subsequent_increment INTEGER NOT NULL CHECK (subsequent_increment BETWEEN 1 AND 3600),
    minimum_duration INTEGER NOT NULL DEFAULT 0 CHECK (minimum_duration BETWEEN 0 AND 3600),
    effective_from TIMESTAMPTZ NOT NULL,
    -- a version that takes the prefix out of the table
    removed BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT rates_version_key UNIQUE (calling_plan_id, prefix, effective_from)
);

CREATE FUNCTION rates_are_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'rate versions are never rewritten' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER rates_append_only
    BEFORE UPDATE OR DELETE ON rates
    FOR EACH ROW EXECUTE FUNCTION rates_are_append_only();

ALTER TABLE plans
    ADD CONSTRAINT plans_calling_plan_id_fkey FOREIGN KEY (calling_plan_id) REFERENCES calling_plans (id);
