-- How much of a payment the gateway has refunded so far (Stripe's
-- `amount_refunded`, which only grows): a refund event that says no more
-- than this was taken into account already.
ALTER TABLE payments ADD COLUMN refunded BIGINT NOT NULL DEFAULT 0 CHECK (refunded >= 0);
