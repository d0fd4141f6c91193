ALTER TABLE pbxes DROP COLUMN cdr_source_sealed, DROP COLUMN cdr_pulled_until;
