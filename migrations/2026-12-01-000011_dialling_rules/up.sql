-- A PBX's dialling rules (country code, national and international
-- prefixes, outside-line digit, area code, emergency and service numbers,
-- trunks), as `calls::dialling::DiallingRules` writes them; NULL for North
-- America's defaults with trunks guessed from channel names.
ALTER TABLE pbxes ADD COLUMN dialling_rules JSONB
    CHECK (dialling_rules IS NULL OR jsonb_typeof(dialling_rules) = 'object');
