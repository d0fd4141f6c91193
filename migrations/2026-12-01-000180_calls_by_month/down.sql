-- Back to one table each, rows kept.
ALTER TABLE cdrs RENAME TO cdrs_partitioned;
ALTER TABLE calls RENAME TO calls_partitioned;
ALTER SEQUENCE cdrs_id_seq OWNED BY NONE;
ALTER TABLE cdrs_partitioned
    DROP CONSTRAINT cdrs_pkey,
    DROP CONSTRAINT cdrs_record_key,
    DROP CONSTRAINT cdrs_pbx_id_fkey,
    DROP CONSTRAINT cdrs_rate_id_fkey,
    DROP CONSTRAINT cdrs_ledger_transaction_id_fkey,
    DROP CONSTRAINT cdrs_number_id_fkey;
DROP INDEX cdrs_unrated_idx;
DROP INDEX cdrs_number_idx;
ALTER TABLE calls_partitioned DROP CONSTRAINT calls_pkey;
DROP INDEX calls_account_start_idx;

CREATE TABLE cdrs (LIKE cdrs_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
ALTER TABLE cdrs DROP CONSTRAINT cdrs_calldate_whole_seconds;
ALTER SEQUENCE cdrs_id_seq OWNED BY cdrs.id;
ALTER TABLE cdrs
    ADD CONSTRAINT cdrs_pkey PRIMARY KEY (id),
    ADD CONSTRAINT cdrs_record_key UNIQUE (pbx_id, record_key),
    ADD CONSTRAINT cdrs_pbx_id_fkey FOREIGN KEY (pbx_id) REFERENCES pbxes (id),
    ADD CONSTRAINT cdrs_rate_id_fkey FOREIGN KEY (rate_id) REFERENCES rates (id),
    ADD CONSTRAINT cdrs_ledger_transaction_id_fkey
        FOREIGN KEY (ledger_transaction_id) REFERENCES journal_transactions (id),
    ADD CONSTRAINT cdrs_number_id_fkey FOREIGN KEY (number_id) REFERENCES numbers (id);
INSERT INTO cdrs SELECT * FROM cdrs_partitioned;
CREATE INDEX cdrs_unrated_idx ON cdrs (pbx_id) WHERE rating = 'unrated';
CREATE INDEX cdrs_number_idx ON cdrs (number_id, calldate) WHERE number_id IS NOT NULL;
CREATE TRIGGER cdrs_append_only BEFORE UPDATE OR DELETE ON cdrs
    FOR EACH ROW EXECUTE FUNCTION cdrs_keep_what_was_received();
CREATE TRIGGER cdrs_never_truncated BEFORE TRUNCATE ON cdrs
    FOR EACH STATEMENT EXECUTE FUNCTION cdrs_keep_what_was_received();

CREATE TABLE calls (LIKE calls_partitioned INCLUDING DEFAULTS INCLUDING CONSTRAINTS);
INSERT INTO calls SELECT * FROM calls_partitioned;
ALTER TABLE calls ADD CONSTRAINT calls_pkey PRIMARY KEY (pbx_id, call_key);
CREATE INDEX calls_account_start_idx ON calls (account_id, start)
    INCLUDE (pbx_id, direction, extension, status, billsec, cost, unrated);

-- Partitions go with their parents.
DROP TABLE cdrs_partitioned;
DROP TABLE calls_partitioned;
DROP FUNCTION call_months_ready(timestamptz[]);
