-- How many Checkout Sessions Switchboard has asked the gateway to open for
-- an order: part of each request's idempotency key, so a retry of the same
-- request is answered with the same session and a replacement gets a new one.
ALTER TABLE orders ADD COLUMN checkout_attempt INTEGER NOT NULL DEFAULT 0 CHECK (checkout_attempt >= 0);
