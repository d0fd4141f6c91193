-- What the storefront sells.
CREATE TABLE plans (
    id BIGSERIAL PRIMARY KEY,
    slug TEXT NOT NULL UNIQUE CHECK (slug ~ '^[a-z0-9][a-z0-9-]*$'),
    name TEXT NOT NULL CHECK (name <> ''),
    description TEXT NOT NULL DEFAULT '',
    currency TEXT NOT NULL DEFAULT 'USD' CHECK (currency ~ '^[A-Z]{3}$'),
    setup_fee BIGINT NOT NULL CHECK (setup_fee >= 0),
    monthly_fee BIGINT NOT NULL CHECK (monthly_fee >= 0),
    included_extensions INTEGER NOT NULL CHECK (included_extensions > 0),
    -- the rate table calls are billed with; calling plans arrive with call rating
    calling_plan_id BIGINT,
    active BOOLEAN NOT NULL DEFAULT true,
    position INTEGER NOT NULL DEFAULT 0,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);

-- Saved card for automatic top-ups.
ALTER TABLE accounts
    ADD COLUMN stripe_customer_id TEXT,
    ADD COLUMN stripe_payment_method_id TEXT;

CREATE TABLE orders (
    id BIGSERIAL PRIMARY KEY,
    -- random, for addresses and the gateway: ids are not guessable
    public_id TEXT NOT NULL UNIQUE,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    kind TEXT NOT NULL CHECK (kind IN ('signup')),
    plan_id BIGINT REFERENCES plans (id),
    state TEXT NOT NULL DEFAULT 'awaiting_payment'
        CHECK (state IN ('awaiting_payment', 'paid', 'fulfilling', 'fulfilled', 'failed', 'refunded')),
    currency TEXT NOT NULL,
    total BIGINT NOT NULL CHECK (total >= 0),
    gateway TEXT NOT NULL CHECK (gateway IN ('stripe', 'test')),
    gateway_session_id TEXT,
    -- the checkout form's one-time token: submitting it twice finds this order
    checkout_token TEXT UNIQUE,
    paid_at TIMESTAMPTZ,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now()
);
CREATE INDEX orders_account_id_idx ON orders (account_id);

CREATE TABLE order_lines (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    kind TEXT NOT NULL,
    description TEXT NOT NULL,
    amount BIGINT NOT NULL
);
CREATE INDEX order_lines_order_id_idx ON order_lines (order_id);

-- Payment attempts as the gateways reported them.
CREATE TABLE payments (
    id BIGSERIAL PRIMARY KEY,
    order_id BIGINT NOT NULL REFERENCES orders (id),
    gateway TEXT NOT NULL,
    reference TEXT NOT NULL,
    amount BIGINT NOT NULL,
    currency TEXT NOT NULL,
    outcome TEXT NOT NULL CHECK (outcome IN ('succeeded', 'declined', 'needs_authentication')),
    detail TEXT NOT NULL DEFAULT '',
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    UNIQUE (gateway, reference)
);
CREATE INDEX payments_order_id_idx ON payments (order_id);

-- Webhook deliveries already handled, by the gateway's event id.
CREATE TABLE webhook_events (
    gateway TEXT NOT NULL,
    event_id TEXT NOT NULL,
    event_type TEXT NOT NULL,
    received_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    PRIMARY KEY (gateway, event_id)
);

CREATE TABLE pbxes (
    id BIGSERIAL PRIMARY KEY,
    account_id BIGINT NOT NULL REFERENCES accounts (id),
    plan_id BIGINT NOT NULL REFERENCES plans (id),
    order_id BIGINT UNIQUE REFERENCES orders (id),
    -- sent with every create command: a retry after a lost answer is the same PBX
    request_id TEXT NOT NULL UNIQUE,
    controller_id TEXT,
    hostname TEXT,
    -- sealed with the secret key (keys::SecretKey::encrypt, purpose "pbx.gui_password")
    gui_password_sealed TEXT NOT NULL,
    state TEXT NOT NULL DEFAULT 'provisioning'
        CHECK (state IN ('provisioning', 'active', 'calling_suspended', 'powered_off', 'failed', 'cancelled')),
    last_error TEXT,
    created_at TIMESTAMPTZ NOT NULL DEFAULT now(),
    activated_at TIMESTAMPTZ
);
CREATE INDEX pbxes_account_id_idx ON pbxes (account_id);
