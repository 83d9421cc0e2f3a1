-- Fails (the CHECK below) while a public key exists: revoke and delete those first.
ALTER TABLE holds DROP COLUMN client_ref;
ALTER TABLE api_keys DROP CONSTRAINT api_keys_role_check;
ALTER TABLE api_keys ADD CONSTRAINT api_keys_role_check CHECK (role IN ('admin', 'clerk'));
