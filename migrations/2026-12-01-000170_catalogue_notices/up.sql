-- Instances keep the plans on sale in memory; every change to the table,
-- whoever makes it, is announced on this channel once committed, and each
-- instance listening forgets its copy.
CREATE FUNCTION announce_catalogue_change() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN
    PERFORM pg_notify('switchboard_catalogue', TG_TABLE_NAME);
    RETURN NULL;
END
$$;

CREATE TRIGGER plans_announce_change
    AFTER INSERT OR UPDATE OR DELETE OR TRUNCATE ON plans
    FOR EACH STATEMENT EXECUTE FUNCTION announce_catalogue_change();
