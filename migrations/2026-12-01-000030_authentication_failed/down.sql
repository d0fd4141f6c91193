UPDATE payments SET outcome = 'declined' WHERE outcome = 'authentication_failed';
ALTER TABLE payments DROP CONSTRAINT payments_outcome_check;
ALTER TABLE payments ADD CONSTRAINT payments_outcome_check
    CHECK (outcome IN ('succeeded', 'declined', 'needs_authentication'));
