-- Switches the whole deployment shares, such as maintenance mode: one row each, read at
-- start and re-read by every replica when the change feed says one changed.
-- Expand: older binaries never read it.
CREATE TABLE flags (
    name       TEXT PRIMARY KEY,
    value      TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
