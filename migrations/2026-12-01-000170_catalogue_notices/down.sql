DROP TRIGGER plans_announce_change ON plans;
DROP FUNCTION announce_catalogue_change();
