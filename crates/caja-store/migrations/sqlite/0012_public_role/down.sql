-- Fails (the CHECK below) while a public key exists: revoke and delete those first.
ALTER TABLE holds DROP COLUMN client_ref;
CREATE TABLE api_keys_new (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'clerk')),
    key_hash     TEXT NOT NULL UNIQUE,
    rate_limit   TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);
INSERT INTO api_keys_new (id, name, role, key_hash, rate_limit, created_at, last_used_at, revoked_at)
SELECT id, name, role, key_hash, rate_limit, created_at, last_used_at, revoked_at FROM api_keys;
DROP TABLE api_keys;
ALTER TABLE api_keys_new RENAME TO api_keys;
