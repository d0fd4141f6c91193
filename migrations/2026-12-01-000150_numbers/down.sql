ALTER TABLE cdrs DROP COLUMN number_id;
DROP TABLE number_events;
DROP TABLE numbers;
DROP TABLE number_orders;
DROP TABLE number_tiers;
