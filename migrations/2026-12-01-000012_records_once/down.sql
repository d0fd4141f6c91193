DROP TRIGGER cdrs_never_truncated ON cdrs;
DROP TRIGGER cdrs_append_only ON cdrs;
DROP FUNCTION cdrs_keep_what_was_received();
ALTER TABLE calls DROP CONSTRAINT calls_cost_not_negative;
ALTER TABLE cdrs DROP CONSTRAINT cdrs_cost_not_negative;
ALTER TABLE calls DROP COLUMN billed_seconds;
ALTER TABLE cdr_rejects DROP CONSTRAINT cdr_rejects_once, DROP COLUMN raw_digest;
