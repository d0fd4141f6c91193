ALTER TABLE calling_plans DROP CONSTRAINT calling_plans_inbound_sane;
UPDATE calling_plans SET inbound_per_minute_nanos = inbound_per_minute_nanos / 1000;
ALTER TABLE calling_plans RENAME COLUMN inbound_per_minute_nanos TO inbound_per_minute;
ALTER TABLE rates DROP CONSTRAINT rates_per_minute_nanos_sane;
ALTER TABLE rates DISABLE TRIGGER rates_append_only;
UPDATE rates SET per_minute_nanos = per_minute_nanos / 1000;
ALTER TABLE rates RENAME COLUMN per_minute_nanos TO per_minute;
ALTER TABLE rates ENABLE TRIGGER rates_append_only;
UPDATE calling_plans SET rates_version = rates_version + 1;
