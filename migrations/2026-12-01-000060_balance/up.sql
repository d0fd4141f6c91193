-- The balance runs the account: standing kept with its time, auto-replenish
-- settings and the saved card's description, top-up orders, recurring items
-- billed once per period, and every standing change recorded with its cause.

ALTER TABLE accounts
    -- when the current standing began: the grace period counts from it
    ADD COLUMN standing_since TIMESTAMPTZ NOT NULL DEFAULT now(),
    -- how often the balance fell below the threshold; names the crossing an
    -- automatic top-up is made for, so two workers make one charge
    ADD COLUMN low_crossings INTEGER NOT NULL DEFAULT 0 CHECK (low_crossings >= 0),
    -- staff were told the account is due for termination (once per power-off)
    ADD COLUMN termination_notice_at TIMESTAMPTZ,
    ADD COLUMN auto_replenish BOOLEAN NOT NULL DEFAULT false,
    ADD COLUMN replenish_amount BIGINT NOT NULL DEFAULT 25000000 CHECK (replenish_amount > 0),
    ADD COLUMN replenish_monthly_cap BIGINT NOT NULL DEFAULT 200000000
        CHECK (replenish_monthly_cap >= 0),
    ADD COLUMN card_brand TEXT,
    ADD COLUMN card_last4 TEXT,
    ADD COLUMN card_exp_month INTEGER,
    ADD COLUMN card_exp_year INTEGER,
    ADD CONSTRAINT accounts_low_balance_threshold_check CHECK (low_balance_threshold >= 0);

-- Every change of standing, with its time and cause, for staff and client.
CREATE TABLE standing_changes (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    at TIMESTAMPTZ NOT NULL,
    from_standing TEXT NOT NULL,
    to_standing TEXT NOT NULL,
    cause TEXT NOT NULL,
    -- the balance when it changed, in micro-units
    balance BIGINT NOT NULL
);
CREATE INDEX standing_changes_account_idx ON standing_changes (account_id, id);

-- Anything billed each period: a PBX's plan now, services and numbers later.
-- Period n runs from anchor + n months to anchor + n + 1 months; the periods
-- before next_period are billed, each by one ledger transaction whose
-- idempotency key names the item and the period.
CREATE TABLE recurring_items (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL CHECK (kind <> ''),
    subject_id BIGINT NOT NULL,
    description TEXT NOT NULL,
    amount BIGINT NOT NULL CHECK (amount >= 0),
    currency TEXT NOT NULL CHECK (currency ~ '^[A-Z]{3}$'),
    anchor TIMESTAMPTZ NOT NULL,
    next_period INTEGER NOT NULL CHECK (next_period >= 0),
    -- the start of period next_period: when the item is next due
    next_due_at TIMESTAMPTZ NOT NULL,
    -- no period starting at or after this is billed
    ends_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (kind, subject_id)
);
CREATE INDEX recurring_items_due_idx ON recurring_items (next_due_at);
CREATE INDEX recurring_items_account_idx ON recurring_items (account_id);

-- An active PBX's plan is billed from the month after activation (the
-- signup paid the first one).
INSERT INTO recurring_items (account_id, kind, subject_id, description, amount, currency, anchor, next_period, next_due_at)
SELECT p.account_id, 'pbx_plan', p.id, pl.name || ' (PBX #' || p.id || ')', pl.monthly_fee, pl.currency,
       coalesce(p.activated_at, p.created_at), 1, coalesce(p.activated_at, p.created_at) + interval '1 month'
FROM pbxes p JOIN plans pl ON pl.id = p.plan_id
WHERE p.state IN ('active', 'calling_suspended', 'powered_off');

-- Adding funds is an order too: paid through the same Checkout and test
-- gateway, credited by the same webhook path.
ALTER TABLE orders DROP CONSTRAINT orders_kind_check;
ALTER TABLE orders ADD CONSTRAINT orders_kind_check CHECK (kind IN ('signup', 'top_up'));

-- Automatic top-ups: one row per attempt, made before the card is charged,
-- so the charge's idempotency key (account, crossing, attempt) is known to
-- every worker and a retry finds the same charge.
CREATE TABLE replenishments (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    crossing INTEGER NOT NULL,
    attempt INTEGER NOT NULL,
    amount BIGINT NOT NULL CHECK (amount > 0),
    currency TEXT NOT NULL,
    gateway TEXT NOT NULL,
    -- the gateway's id of the charge, once it answered
    reference TEXT,
    state TEXT NOT NULL DEFAULT 'pending'
        CHECK (state IN ('pending', 'succeeded', 'declined', 'needs_authentication', 'failed')),
    detail TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL,
    settled_at TIMESTAMPTZ,
    UNIQUE (account_id, crossing, attempt)
);
CREATE UNIQUE INDEX replenishments_reference_key ON replenishments (gateway, reference);
