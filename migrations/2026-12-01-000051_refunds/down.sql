ALTER TABLE payments DROP COLUMN refunded;
