ALTER TABLE pbxes DROP COLUMN dialling_rules;
