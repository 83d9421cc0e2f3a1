-- The stock ledger: every movement of every product, with the stock it left behind.
CREATE TABLE stock_movements (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id  TEXT NOT NULL REFERENCES products (id),
    delta       INTEGER NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock')),
    note        TEXT,
    order_id    TEXT,
    stock_after INTEGER NOT NULL CHECK (stock_after >= 0),
    created_at  TEXT NOT NULL
);
CREATE INDEX stock_movements_product ON stock_movements (product_id, id);
CREATE INDEX stock_movements_order ON stock_movements (order_id) WHERE order_id IS NOT NULL;

-- Products created before the ledger existed start it with their stock.
INSERT INTO stock_movements (product_id, delta, reason, stock_after, created_at)
SELECT id, stock, 'initial', stock, created_at FROM products WHERE stock > 0;

-- Gapless counters (order numbers): one row each, bumped inside the transaction that uses it.
CREATE TABLE counters (
    name  TEXT PRIMARY KEY,
    value INTEGER NOT NULL
);
INSERT INTO counters (name, value) VALUES ('order_number', 0);

CREATE TABLE orders (
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
    expires_at     TEXT NOT NULL
);
CREATE INDEX orders_status ON orders (status, id);
CREATE INDEX orders_due ON orders (expires_at) WHERE status = 'pending_payment';

CREATE TABLE order_lines (
    order_id   TEXT NOT NULL REFERENCES orders (id),
    line_no    INTEGER NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    sku        TEXT NOT NULL,
    name       TEXT NOT NULL,
    quantity   INTEGER NOT NULL CHECK (quantity > 0),
    unit_price INTEGER NOT NULL,
    line_total INTEGER NOT NULL,
    PRIMARY KEY (order_id, line_no)
);

-- At most one payment per order, enforced by the database itself.
CREATE TABLE payments (
    id         TEXT PRIMARY KEY,
    order_id   TEXT NOT NULL UNIQUE REFERENCES orders (id),
    method     TEXT NOT NULL CHECK (method IN ('cash', 'card', 'transfer', 'provider')),
    amount     INTEGER NOT NULL,
    reference  TEXT,
    created_at TEXT NOT NULL
);

-- Idempotency: the response to each (API key, Idempotency-Key), written in the same
-- transaction as the effect it describes.
CREATE TABLE idempotency_keys (
    key_id      TEXT NOT NULL,
    key         TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    status      INTEGER NOT NULL,
    headers     TEXT NOT NULL,
    body        TEXT NOT NULL,
    created_at  TEXT NOT NULL,
    PRIMARY KEY (key_id, key)
);
CREATE INDEX idempotency_keys_created ON idempotency_keys (created_at);
