-- Every email is a row before it is anything else: the business write and the
-- message commit together, and a job delivers it, retrying while the mail
-- server is away.
CREATE TABLE emails (
    id BIGSERIAL PRIMARY KEY,
    -- the same notice queued twice (a retried request, a job run twice) is one email
    dedupe_key TEXT UNIQUE,
    to_address TEXT NOT NULL,
    subject TEXT NOT NULL,
    text_body TEXT NOT NULL,
    html_body TEXT NOT NULL,
    -- bodies that carry a credential are sealed with the secret key
    sealed BOOLEAN NOT NULL DEFAULT false,
    state TEXT NOT NULL DEFAULT 'queued' CHECK (state IN ('queued', 'sent', 'failed')),
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    next_attempt_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    sent_at TIMESTAMPTZ
);
CREATE INDEX emails_due_idx ON emails (next_attempt_at) WHERE state = 'queued';
CREATE INDEX emails_created_at_idx ON emails (created_at);
