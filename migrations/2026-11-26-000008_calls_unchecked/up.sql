-- `calls` is derived from CDRs: ingestion inserts calls from CDRs stored in
-- the same transaction (whose `pbx_id` is checked against `pbxes`), with the
-- account read from the PBX under the PBX's lock; pricing unrated calls only
-- updates calls already there. Checking both keys again for every
-- call took about half of the time spent writing calls, and a sixth of
-- ingestion's. A PBX or account with CDRs cannot be deleted, so no call can
-- point at one that is gone.
ALTER TABLE calls
    DROP CONSTRAINT calls_pbx_id_fkey,
    DROP CONSTRAINT calls_account_id_fkey;
