-- What a staff or admin action changed: the subject as it was and as it
-- became, as JSON text (never a secret).
ALTER TABLE audit_log ADD COLUMN before TEXT, ADD COLUMN after TEXT;
