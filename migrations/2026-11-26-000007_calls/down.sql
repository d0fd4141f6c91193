CREATE INDEX cdrs_pbx_calldate_idx ON cdrs (pbx_id, calldate DESC);
CREATE INDEX cdrs_unbilled_idx ON cdrs (pbx_id) WHERE rating = 'rated' AND ledger_transaction_id IS NULL AND cost > 0;
DROP TABLE calls;
