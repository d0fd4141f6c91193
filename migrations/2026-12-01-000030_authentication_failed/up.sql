-- A card whose 3-D Secure check failed is not a declined card: the
-- customer is told which of the two happened.
ALTER TABLE payments DROP CONSTRAINT payments_outcome_check;
ALTER TABLE payments ADD CONSTRAINT payments_outcome_check
    CHECK (outcome IN ('succeeded', 'declined', 'needs_authentication', 'authentication_failed'));
