-- Webhooks to merchants: each subscription reads the change feed after its own after_seq and
-- delivers the events it asks for, in seq order, at least once. One replica at a time
-- holds a subscription's lease; the cursor moves only after a delivery succeeded, under
-- that lease.
CREATE TABLE webhook_subscriptions (
    id              TEXT PRIMARY KEY,
    url             TEXT NOT NULL,
    -- A JSON list of event types: exact, a family (order.*), or *.
    event_types     TEXT NOT NULL,
    secret          TEXT NOT NULL,
    description     TEXT,
    status          TEXT NOT NULL CHECK (status IN ('active', 'disabled')),
    disabled_reason TEXT,
    after_seq       INTEGER NOT NULL CHECK (after_seq >= 0),
    -- The current failure streak: when it began, how many attempts, how many 410s in a row.
    failing_since   TEXT,
    attempts        INTEGER NOT NULL CHECK (attempts >= 0),
    gone            INTEGER NOT NULL CHECK (gone >= 0),
    next_attempt_at TEXT,
    lease_owner     TEXT,
    lease_until     TEXT,
    created_at      TEXT NOT NULL,
    updated_at      TEXT NOT NULL
);

-- The delivery log: one row per event per subscription, updated by every attempt.
CREATE TABLE webhook_deliveries (
    id              TEXT PRIMARY KEY,
    subscription_id TEXT NOT NULL REFERENCES webhook_subscriptions (id) ON DELETE CASCADE,
    seq             INTEGER NOT NULL,
    event_type      TEXT NOT NULL,
    attempts        INTEGER NOT NULL CHECK (attempts >= 1),
    status          TEXT NOT NULL CHECK (status IN ('failing', 'delivered', 'abandoned')),
    response_status INTEGER,
    error           TEXT,
    first_attempt_at TEXT NOT NULL,
    last_attempt_at TEXT NOT NULL,
    UNIQUE (subscription_id, seq)
);
CREATE INDEX webhook_deliveries_subscription ON webhook_deliveries (subscription_id, seq);
