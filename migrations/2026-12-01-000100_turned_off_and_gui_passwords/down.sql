DROP TABLE pbx_password_changes;
ALTER TABLE accounts
    DROP CONSTRAINT accounts_turned_off_has_a_time,
    DROP COLUMN turned_off_at,
    DROP COLUMN turned_off_reason;
