-- Per-minute prices in nano-units (10^-9 of the currency's unit), so the
-- seven and eight decimals carriers write are kept as written; a call's
-- cost is still rounded once, to a micro-unit.
ALTER TABLE rates DISABLE TRIGGER rates_append_only;
ALTER TABLE rates RENAME COLUMN per_minute TO per_minute_nanos;
UPDATE rates SET per_minute_nanos = per_minute_nanos * 1000;
ALTER TABLE rates ENABLE TRIGGER rates_append_only;
-- 10,000 a minute: above any real price, and far enough below the largest
-- amount that a week-long call's cost still fits.
ALTER TABLE rates ADD CONSTRAINT rates_per_minute_nanos_sane
    CHECK (per_minute_nanos <= 10000000000000);

ALTER TABLE calling_plans RENAME COLUMN inbound_per_minute TO inbound_per_minute_nanos;
UPDATE calling_plans SET inbound_per_minute_nanos = inbound_per_minute_nanos * 1000;
ALTER TABLE calling_plans ADD CONSTRAINT calling_plans_inbound_sane
    CHECK (inbound_per_minute_nanos <= 10000000000000);
-- Rate tables held in memory were read in the old unit: move every plan's
-- version on so each instance reads its tables again.
UPDATE calling_plans SET rates_version = rates_version + 1;
