-- An account may bill its PBXs' calls with a calling plan of its own,
-- overriding its PBXs' plans'; like a plan's, it must be in the account's
-- currency.
ALTER TABLE accounts ADD COLUMN calling_plan_id BIGINT;
ALTER TABLE accounts ADD CONSTRAINT accounts_calling_plan_currency
    FOREIGN KEY (calling_plan_id, currency) REFERENCES calling_plans (id, currency);
CREATE INDEX accounts_calling_plan_id_idx ON accounts (calling_plan_id)
    WHERE calling_plan_id IS NOT NULL;

-- Two-factor sign-in: a TOTP secret (sealed with the secret key), confirmed
-- once its owner has typed a first code, and the last time step accepted, so
-- a code is never taken twice.
ALTER TABLE users ADD COLUMN totp_secret_sealed TEXT;
ALTER TABLE users ADD COLUMN totp_enabled BOOLEAN NOT NULL DEFAULT false;
ALTER TABLE users ADD COLUMN totp_last_step BIGINT;
ALTER TABLE users ADD CONSTRAINT users_totp_enabled_has_a_secret
    CHECK (NOT totp_enabled OR totp_secret_sealed IS NOT NULL);

-- Recovery codes: 80 random bits each, so their SHA-256 is all that is kept.
CREATE TABLE recovery_codes (
    id BIGSERIAL PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    code_hash TEXT NOT NULL,
    used_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX recovery_codes_user_id_idx ON recovery_codes (user_id);

-- A password checked, a second factor still to come: the browser holds a
-- random token, this table its SHA-256.
CREATE TABLE sign_in_challenges (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    next TEXT,
    attempts INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL
);

-- Sign-ins through an OpenID provider under way: the state the browser
-- carries there and back (used once), the nonce the ID token must carry and
-- the PKCE verifier. In the database so any instance can finish one.
CREATE TABLE sso_logins (
    state TEXT PRIMARY KEY,
    nonce TEXT NOT NULL,
    pkce_verifier TEXT NOT NULL,
    next TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Links an admin sends to set a new password: only their SHA-256 is kept.
CREATE TABLE password_resets (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    used_at TIMESTAMPTZ
);
CREATE INDEX password_resets_user_id_idx ON password_resets (user_id);

-- The audit log page filters by actor, subject and kind, newest first.
CREATE INDEX audit_log_actor_idx ON audit_log (actor_user_id, id);
CREATE INDEX audit_log_subject_idx ON audit_log (subject, id);
CREATE INDEX audit_log_action_idx ON audit_log (action, id);
