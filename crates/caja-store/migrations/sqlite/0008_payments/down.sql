-- Fails (the CHECK below) while any order needs a refund: that money must not vanish.
DROP TABLE provider_events;
CREATE TABLE orders_new (
    id             TEXT PRIMARY KEY,
    number         INTEGER NOT NULL UNIQUE,
    status         TEXT NOT NULL CHECK (status IN ('pending_payment', 'paid', 'fulfilled', 'cancelled', 'expired', 'refunded')),
    subtotal       INTEGER NOT NULL CHECK (subtotal >= 0),
    tip            INTEGER NOT NULL CHECK (tip >= 0),
    total          INTEGER NOT NULL CHECK (total >= 0),
    currency       TEXT NOT NULL,
    note           TEXT,
    customer_name  TEXT,
    customer_email TEXT,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL,
    expires_at     TEXT NOT NULL,
    tab_id         TEXT,
    time_minutes   INTEGER,
    time_rate      INTEGER,
    time_amount    INTEGER
);
INSERT INTO orders_new (id, number, status, subtotal, tip, total, currency, note, customer_name, customer_email, created_at, updated_at, expires_at, tab_id, time_minutes, time_rate, time_amount)
SELECT id, number, status, subtotal, tip, total, currency, note, customer_name, customer_email, created_at, updated_at, expires_at, tab_id, time_minutes, time_rate, time_amount FROM orders;
DROP TABLE orders;
ALTER TABLE orders_new RENAME TO orders;
CREATE INDEX orders_status ON orders (status, id);
CREATE INDEX orders_due ON orders (expires_at) WHERE status = 'pending_payment';
CREATE UNIQUE INDEX orders_tab ON orders (tab_id) WHERE tab_id IS NOT NULL;
