ALTER TABLE orders DROP COLUMN checkout_attempt;
