-- API keys: only the SHA-256 of each secret is kept.
CREATE TABLE api_keys (
    id           TEXT PRIMARY KEY,
    name         TEXT NOT NULL,
    role         TEXT NOT NULL CHECK (role IN ('admin', 'clerk')),
    key_hash     TEXT NOT NULL UNIQUE,
    rate_limit   TEXT,
    created_at   TEXT NOT NULL,
    last_used_at TEXT,
    revoked_at   TEXT
);

-- One row, written by whichever process first finds the database empty, so that two
-- replicas starting together create one admin key between them.
CREATE TABLE bootstrap (
    id      INTEGER PRIMARY KEY CHECK (id = 1),
    done_at TEXT NOT NULL
);
