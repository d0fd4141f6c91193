-- Several PBXs on one balance: a client names each PBX, and orders another
-- one paid from the balance (gateway 'balance', kind 'pbx'), the order form's
-- one-time key making a double submission one order.
ALTER TABLE pbxes ADD COLUMN label TEXT NOT NULL DEFAULT ''
    CHECK (char_length(label) <= 60);

ALTER TABLE orders ADD COLUMN request_key TEXT;
CREATE UNIQUE INDEX orders_request_key_idx ON orders (account_id, request_key)
    WHERE request_key IS NOT NULL;

ALTER TABLE orders DROP CONSTRAINT orders_kind_check;
ALTER TABLE orders ADD CONSTRAINT orders_kind_check
    CHECK (kind IN ('signup', 'top_up', 'pbx'));
ALTER TABLE orders DROP CONSTRAINT orders_gateway_check;
ALTER TABLE orders ADD CONSTRAINT orders_gateway_check
    CHECK (gateway IN ('stripe', 'test', 'balance'));
