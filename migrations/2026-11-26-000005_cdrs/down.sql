DROP TABLE cdr_rejects;
DROP TABLE cdrs;
ALTER TABLE pbxes DROP COLUMN cdr_token_hash, DROP COLUMN time_zone;
