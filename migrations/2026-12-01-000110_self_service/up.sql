-- Clients help themselves: forgotten passwords and new email addresses.

-- Requests for a recovery link, counted per address and per email (the
-- user's email when the login names a user, else what was typed,
-- lowercased), whether or not they named anyone.
CREATE TABLE password_recovery_requests (
    id BIGSERIAL PRIMARY KEY,
    ip TEXT NOT NULL,
    email TEXT NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX password_recovery_requests_ip_at ON password_recovery_requests (ip, at);
CREATE INDEX password_recovery_requests_email_at ON password_recovery_requests (email, at);

-- A new email address waiting for the link sent to it: only the token's
-- SHA-256 is kept, with the address it replaces, so a link followed after
-- the address changed again is refused.
CREATE TABLE email_changes (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    from_email TEXT NOT NULL,
    new_email TEXT NOT NULL,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX email_changes_user_id_idx ON email_changes (user_id);
