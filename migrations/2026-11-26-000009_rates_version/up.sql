-- Ingestion prices every batch with its calling plan's whole rate table.
-- Rates are append-only, so a table loaded once stays right until rates are
-- added: each insert into `rates` moves its plans' version on, in the same
-- transaction, and a table kept in memory is used only while its version is
-- the plan's. (Restoring the database under a running Switchboard can bring
-- back a version number with other rates: restart it after a restore.)
ALTER TABLE calling_plans ADD COLUMN rates_version BIGINT NOT NULL DEFAULT 0;

CREATE FUNCTION rates_move_version() RETURNS trigger AS $$
BEGIN
    UPDATE calling_plans SET rates_version = rates_version + 1
    WHERE id IN (SELECT DISTINCT calling_plan_id FROM added);
    RETURN NULL;
END
$$ LANGUAGE plpgsql;

CREATE TRIGGER rates_move_version AFTER INSERT ON rates
    REFERENCING NEW TABLE AS added
    FOR EACH STATEMENT EXECUTE FUNCTION rates_move_version();

-- Emptying the table would bypass the version too; versions are never
-- rewritten, so it is refused like an update or a delete.
CREATE TRIGGER rates_never_truncated BEFORE TRUNCATE ON rates
    FOR EACH STATEMENT EXECUTE FUNCTION rates_are_append_only();
