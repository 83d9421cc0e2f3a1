-- Keys learn the role 'public' (a buyer's browser or app), and a hold remembers the buyer's
-- own reference, so that only that buyer can order it through the public role.
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('admin', 'clerk', 'public'));
ALTER TABLE holds ADD COLUMN client_ref TEXT;
