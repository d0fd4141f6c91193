DROP TABLE replenishments;
ALTER TABLE orders DROP CONSTRAINT orders_kind_check;
ALTER TABLE orders ADD CONSTRAINT orders_kind_check CHECK (kind IN ('signup'));
DROP TABLE recurring_items;
DROP TABLE standing_changes;
ALTER TABLE accounts
    DROP CONSTRAINT accounts_low_balance_threshold_check,
    DROP COLUMN standing_since,
    DROP COLUMN low_crossings,
    DROP COLUMN termination_notice_at,
    DROP COLUMN auto_replenish,
    DROP COLUMN replenish_amount,
    DROP COLUMN replenish_monthly_cap,
    DROP COLUMN card_brand,
    DROP COLUMN card_last4,
    DROP COLUMN card_exp_month,
    DROP COLUMN card_exp_year;
