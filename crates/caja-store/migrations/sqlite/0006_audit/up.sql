-- The audit log: every admin action (keys, catalog edits, archives, stock corrections,
-- refunds, maintenance, restores) with who did it, the request, and the resource before and
-- after. Written in the same transaction as the action it records. Never pruned by caja.
CREATE TABLE audit (
    id         TEXT PRIMARY KEY,
    at         TEXT NOT NULL,
    actor      TEXT NOT NULL,
    request_id TEXT,
    action     TEXT NOT NULL,
    target     TEXT,
    before     TEXT,
    after      TEXT
);
CREATE INDEX audit_action ON audit (action, id);
CREATE INDEX audit_target ON audit (target, id);
