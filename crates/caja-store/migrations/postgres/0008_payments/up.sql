-- Orders learn 'needs_refund': paid at the provider after they expired (their stock sold to
-- others) or were cancelled. The money is recorded as their payment and owed back.
ALTER TABLE orders DROP CONSTRAINT orders_status_check;
ALTER TABLE orders ADD CONSTRAINT orders_status_check
    CHECK (status IN ('pending_payment', 'paid', 'fulfilled', 'cancelled', 'expired', 'refunded', 'needs_refund'));

-- Every notification a payment provider sent us, as received (after its signature was
-- verified), once per provider event id, with what became of it.
CREATE TABLE provider_events (
    provider     TEXT NOT NULL,
    event_id     TEXT NOT NULL,
    topic        TEXT NOT NULL,
    action       TEXT,
    resource_id  TEXT,
    body         TEXT NOT NULL,
    received_at  TEXT NOT NULL,
    deliveries   BIGINT NOT NULL CHECK (deliveries >= 1),
    status       TEXT NOT NULL CHECK (status IN ('received', 'applied', 'ignored')),
    outcome      TEXT,
    order_id     TEXT,
    processed_at TEXT,
    PRIMARY KEY (provider, event_id)
);
CREATE INDEX provider_events_received ON provider_events (received_at);
