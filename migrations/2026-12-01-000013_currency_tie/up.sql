-- A calling plan prices calls in its currency, so only a plan in that
-- currency may bill with it, and only an account in the plan's currency may
-- have a PBX on that plan: a call is never priced in one currency and
-- charged in another.
DO $$
DECLARE
    wrong text;
BEGIN
    SELECT string_agg(format('plan %s (%s) bills with calling plan %s (%s)', p.slug, p.currency, c.name, c.currency), '; ')
    INTO wrong
    FROM plans p JOIN calling_plans c ON c.id = p.calling_plan_id
    WHERE p.currency <> c.currency;
    IF wrong IS NOT NULL THEN
        RAISE EXCEPTION 'plans bill calls in another currency than their own: %; give them a calling plan in their currency first', wrong;
    END IF;
END;
$$;
ALTER TABLE calling_plans ADD CONSTRAINT calling_plans_id_currency UNIQUE (id, currency);
ALTER TABLE plans DROP CONSTRAINT plans_calling_plan_id_fkey;
ALTER TABLE plans ADD CONSTRAINT plans_calling_plan_currency
    FOREIGN KEY (calling_plan_id, currency) REFERENCES calling_plans (id, currency);

CREATE FUNCTION pbxes_in_the_accounts_currency() RETURNS trigger AS $$
BEGIN
    IF (SELECT currency FROM accounts WHERE id = NEW.account_id)
       IS DISTINCT FROM (SELECT currency FROM plans WHERE id = NEW.plan_id) THEN
        RAISE EXCEPTION 'a PBX''s plan must be in its account''s currency'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'pbxes_in_the_accounts_currency';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER pbxes_in_the_accounts_currency BEFORE INSERT OR UPDATE OF account_id, plan_id ON pbxes
    FOR EACH ROW EXECUTE FUNCTION pbxes_in_the_accounts_currency();
-- A plan that has PBXs keeps its currency.
CREATE FUNCTION plans_keep_their_currency() RETURNS trigger AS $$
BEGIN
    IF NEW.currency <> OLD.currency AND EXISTS (SELECT 1 FROM pbxes WHERE plan_id = NEW.id) THEN
        RAISE EXCEPTION 'a plan with PBXs keeps its currency'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'plans_keep_their_currency';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER plans_keep_their_currency BEFORE UPDATE OF currency ON plans
    FOR EACH ROW EXECUTE FUNCTION plans_keep_their_currency();
CREATE FUNCTION accounts_keep_their_currency() RETURNS trigger AS $$
BEGIN
    IF NEW.currency <> OLD.currency AND EXISTS (SELECT 1 FROM pbxes WHERE account_id = NEW.id) THEN
        RAISE EXCEPTION 'an account with PBXs keeps its currency'
            USING ERRCODE = 'check_violation', CONSTRAINT = 'accounts_keep_their_currency';
    END IF;
    RETURN NEW;
END;
$$ LANGUAGE plpgsql;
CREATE TRIGGER accounts_keep_their_currency BEFORE UPDATE OF currency ON accounts
    FOR EACH ROW EXECUTE FUNCTION accounts_keep_their_currency();

-- Plan fees are at most 1,000,000 a month, so a first payment (setup and
-- the first month) always fits in an amount.
ALTER TABLE plans ADD CONSTRAINT plans_fees_bounded
    CHECK (setup_fee <= 1000000000000 AND monthly_fee <= 1000000000000);
