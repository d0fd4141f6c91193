ALTER TABLE audit_log DROP COLUMN after, DROP COLUMN before;
