-- Asterisk writes a CDR row when the call ends, so rows are pulled by their
-- end (calldate + duration), not their start: `cdr_pull_from` is the end
-- time from which rows may not all have been read yet. Existing PBXs start a
-- day before their old start-time watermark, so long calls an earlier pull
-- stepped over are read now (records already held are recognised).
ALTER TABLE pbxes ADD COLUMN cdr_pull_from TIMESTAMPTZ;
UPDATE pbxes SET cdr_pull_from = cdr_pulled_until - interval '1 day'
WHERE cdr_pulled_until IS NOT NULL;
ALTER TABLE pbxes DROP COLUMN cdr_pulled_until;
