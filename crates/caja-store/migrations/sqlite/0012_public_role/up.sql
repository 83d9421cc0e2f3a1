-- Keys learn the role 'public' (a buyer's browser or app): SQLite rebuilds the table to change
-- its CHECK. A hold remembers the buyer's own reference, so that only that buyer can order
-- it through the public role.
CREATE TABLE api_keys_new (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'clerk', 'public')),
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
ALTER TABLE holds ADD COLUMN client_ref TEXT;
