ALTER TABLE pbxes ADD COLUMN cdr_pulled_until TIMESTAMPTZ;
UPDATE pbxes SET cdr_pulled_until = cdr_pull_from;
ALTER TABLE pbxes DROP COLUMN cdr_pull_from;
