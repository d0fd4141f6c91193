-- Accounts pay; users sign in. A wholesale account may own retail sub-accounts.
CREATE TABLE accounts (
    id BIGSERIAL PRIMARY KEY,
    name TEXT NOT NULL CHECK (name <> ''),
    kind TEXT NOT NULL CHECK (kind IN ('retail', 'wholesale')),
    parent_id BIGINT REFERENCES accounts (id),
    draws_on_parent BOOLEAN NOT NULL DEFAULT false,
    currency TEXT NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    standing TEXT NOT NULL DEFAULT 'good'
        CHECK (standing IN ('good', 'low', 'calling_suspended', 'powered_off')),
    turned_off BOOLEAN NOT NULL DEFAULT false,
    low_balance_threshold BIGINT NOT NULL DEFAULT 5000000,
    credit_limit BIGINT NOT NULL DEFAULT 0 CHECK (credit_limit >= 0),
    time_zone TEXT NOT NULL DEFAULT 'UTC',
    contact_name TEXT NOT NULL DEFAULT '',
    company TEXT NOT NULL DEFAULT '',
    email TEXT NOT NULL DEFAULT '',
    phone TEXT NOT NULL DEFAULT '',
    address TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CHECK (parent_id IS NULL OR parent_id <> id)
);
CREATE INDEX accounts_parent_id_idx ON accounts (parent_id);
CREATE INDEX accounts_lower_name_idx ON accounts (lower(name));

CREATE TABLE users (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    email TEXT NOT NULL,
    password_hash TEXT NOT NULL,
    role TEXT NOT NULL CHECK (role IN ('client', 'reseller', 'staff', 'admin')),
    account_id BIGINT REFERENCES accounts (id),
    must_change_password BOOLEAN NOT NULL DEFAULT false,
    disabled BOOLEAN NOT NULL DEFAULT false,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_sign_in_at TIMESTAMPTZ,
    -- clients and resellers belong to an account; staff and admins to the company
    CONSTRAINT users_account_matches_role
        CHECK ((role IN ('client', 'reseller')) = (account_id IS NOT NULL))
);
CREATE UNIQUE INDEX users_username_key ON users (lower(username));
CREATE UNIQUE INDEX users_email_key ON users (lower(email));
CREATE INDEX users_account_id_idx ON users (account_id);

-- The cookie holds a random token; only its SHA-256 is stored, so a copy of
-- this table signs nobody in.
CREATE TABLE sessions (
    token_hash TEXT PRIMARY KEY,
    user_id BIGINT NOT NULL REFERENCES users (id) ON DELETE CASCADE,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    last_seen_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    expires_at TIMESTAMPTZ NOT NULL,
    ip TEXT NOT NULL DEFAULT '',
    user_agent TEXT NOT NULL DEFAULT ''
);
CREATE INDEX sessions_user_id_idx ON sessions (user_id);
CREATE INDEX sessions_expires_at_idx ON sessions (expires_at);

CREATE TABLE sign_in_attempts (
    id BIGSERIAL PRIMARY KEY,
    username TEXT NOT NULL,
    ip TEXT NOT NULL,
    succeeded BOOLEAN NOT NULL,
    at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX sign_in_attempts_username_idx ON sign_in_attempts (username, at);
CREATE INDEX sign_in_attempts_ip_idx ON sign_in_attempts (ip, at);

CREATE TABLE audit_log (
    id BIGSERIAL PRIMARY KEY,
    at TIMESTAMPTZ NOT NULL DEFAULT now(),
    actor_user_id BIGINT REFERENCES users (id),
    actor TEXT NOT NULL,
    action TEXT NOT NULL,
    subject TEXT NOT NULL DEFAULT '',
    detail TEXT NOT NULL DEFAULT '',
    ip TEXT NOT NULL DEFAULT ''
);
CREATE INDEX audit_log_at_idx ON audit_log (at);

-- The ledger. A ledger account is either a customer account's balance or one
-- of the company's books (cash received, revenue, adjustments), per currency.
CREATE TABLE ledger_accounts (
    id BIGSERIAL PRIMARY KEY,
    code TEXT NOT NULL UNIQUE,
    account_id BIGINT UNIQUE REFERENCES accounts (id),
    currency TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    -- cache of the sum of this ledger account's entries, kept by ledger::post
    balance BIGINT NOT NULL DEFAULT 0
);

CREATE TABLE journal_transactions (
    id BIGSERIAL PRIMARY KEY,
    idempotency_key TEXT NOT NULL CHECK (idempotency_key <> ''),
    kind TEXT NOT NULL,
    memo TEXT NOT NULL DEFAULT '',
    currency TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    posted_by BIGINT REFERENCES users (id),
    posted_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    CONSTRAINT journal_transactions_idempotency_key_key UNIQUE (idempotency_key)
);

CREATE TABLE journal_entries (
    id BIGSERIAL PRIMARY KEY,
    transaction_id BIGINT NOT NULL REFERENCES journal_transactions (id),
    ledger_account_id BIGINT NOT NULL REFERENCES ledger_accounts (id),
    amount BIGINT NOT NULL CHECK (amount <> 0)
);
CREATE INDEX journal_entries_ledger_account_idx ON journal_entries (ledger_account_id, id);
CREATE INDEX journal_entries_transaction_idx ON journal_entries (transaction_id);

-- Second line of defence behind ledger::post: at commit, every transaction
-- that gained entries must sum to zero, and entries are never rewritten.
CREATE FUNCTION journal_transaction_balances() RETURNS trigger AS $$
BEGIN
    IF (SELECT coalesce(sum(amount), 0) FROM journal_entries
        WHERE transaction_id = NEW.transaction_id) <> 0 THEN
        RAISE EXCEPTION 'journal transaction % does not sum to zero', NEW.transaction_id
            USING ERRCODE = 'check_violation';
    END IF;
    RETURN NULL;
END;
$$ LANGUAGE plpgsql;

CREATE CONSTRAINT TRIGGER journal_entries_balance
    AFTER INSERT ON journal_entries
    DEFERRABLE INITIALLY DEFERRED
    FOR EACH ROW EXECUTE FUNCTION journal_transaction_balances();

CREATE FUNCTION journal_is_append_only() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'the journal is append-only' USING ERRCODE = 'insufficient_privilege';
END;
$$ LANGUAGE plpgsql;

CREATE TRIGGER journal_entries_append_only
    BEFORE UPDATE OR DELETE ON journal_entries
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();
CREATE TRIGGER journal_transactions_append_only
    BEFORE UPDATE OR DELETE ON journal_transactions
    FOR EACH ROW EXECUTE FUNCTION journal_is_append_only();

-- Jobs are rows: the scheduler enqueues, a runner claims them with
-- FOR UPDATE SKIP LOCKED, so several instances never run one job twice at once.
CREATE TABLE background_jobs (
    id BIGSERIAL PRIMARY KEY,
    job_type TEXT NOT NULL,
    data TEXT NOT NULL DEFAULT '{}',
    dedupe_key TEXT UNIQUE,
    attempts INTEGER NOT NULL DEFAULT 0,
    last_error TEXT,
    run_after TIMESTAMPTZ NOT NULL DEFAULT now(),
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX background_jobs_run_after_idx ON background_jobs (run_after);
