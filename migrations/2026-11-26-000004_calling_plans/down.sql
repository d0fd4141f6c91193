ALTER TABLE plans DROP CONSTRAINT plans_calling_plan_id_fkey;
DROP TABLE rates;
DROP FUNCTION rates_are_append_only();
DROP TABLE calling_plans;
