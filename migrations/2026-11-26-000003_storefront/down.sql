DROP TABLE pbxes;
DROP TABLE webhook_events;
DROP TABLE payments;
DROP TABLE order_lines;
DROP TABLE orders;
ALTER TABLE accounts DROP COLUMN stripe_customer_id, DROP COLUMN stripe_payment_method_id;
DROP TABLE plans;
