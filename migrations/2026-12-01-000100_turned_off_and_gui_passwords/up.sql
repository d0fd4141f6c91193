-- An admin turns an account off by hand, with a reason its users see; the
-- switch overrides standing until it is turned on again. While off, no
-- recurring period that starts after turned_off_at is billed.
ALTER TABLE accounts
    ADD COLUMN turned_off_reason TEXT,
    ADD COLUMN turned_off_at TIMESTAMPTZ,
    ADD CONSTRAINT accounts_turned_off_has_a_time CHECK (NOT turned_off OR turned_off_at IS NOT NULL);

-- A new GUI password for a PBX, on its way to the controller. The PBX's
-- stored password changes only when the controller confirmed this one, so
-- until then (and for ever, when it failed) the old one is in force.
CREATE TABLE pbx_password_changes (
    id BIGSERIAL PRIMARY KEY,
    pbx_id BIGINT NOT NULL REFERENCES pbxes (id),
    -- the new password, sealed as the PBX's own is
    password_sealed TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'done', 'failed', 'superseded')),
    -- the controller's latest complaint, passwords redacted
    last_error TEXT,
    requested_by BIGINT REFERENCES users (id),
    requested_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- when it took effect (done) or was given up (failed, superseded)
    settled_at TIMESTAMPTZ
);
CREATE INDEX pbx_password_changes_pbx_idx ON pbx_password_changes (pbx_id, id);
