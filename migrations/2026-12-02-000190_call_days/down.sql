DROP TRIGGER call_days_after_delete ON calls;
DROP TRIGGER call_days_after_update ON calls;
DROP TRIGGER call_days_after_insert ON calls;
DROP FUNCTION call_days_follow_calls();
DROP TABLE call_days;
