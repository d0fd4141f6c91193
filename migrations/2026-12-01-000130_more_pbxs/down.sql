ALTER TABLE orders DROP CONSTRAINT orders_gateway_check;
ALTER TABLE orders ADD CONSTRAINT orders_gateway_check CHECK (gateway IN ('stripe', 'test'));
ALTER TABLE orders DROP CONSTRAINT orders_kind_check;
ALTER TABLE orders ADD CONSTRAINT orders_kind_check CHECK (kind IN ('signup', 'top_up'));
DROP INDEX orders_request_key_idx;
ALTER TABLE orders DROP COLUMN request_key;
ALTER TABLE pbxes DROP COLUMN label;
