DROP TRIGGER rates_never_truncated ON rates;
DROP TRIGGER rates_move_version ON rates;
DROP FUNCTION rates_move_version();
ALTER TABLE calling_plans DROP COLUMN rates_version;
