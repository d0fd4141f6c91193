-- Where a PBX's Asterisk CDR table is (a mysql:// URL, sealed with the
-- secret key: it holds a password), and how far it has been read.
ALTER TABLE pbxes
    ADD COLUMN cdr_source_sealed TEXT,
    ADD COLUMN cdr_pulled_until TIMESTAMPTZ;
