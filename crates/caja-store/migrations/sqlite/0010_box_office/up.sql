-- The box office. An event's sections are products (products.event_id names the event):
-- their stock is what is free, their ledger the story of every place. A hold takes places
-- like a tab's item (ledger reason 'hold', with the hold's id); the order it becomes
-- (orders.hold_id) inherits them.
CREATE TABLE ticket_events (
    id             TEXT PRIMARY KEY,
    name           TEXT NOT NULL,
    starts_at      TEXT NOT NULL,
    sale_starts_at TEXT NOT NULL,
    sale_ends_at   TEXT,
    max_per_order  INTEGER NOT NULL CHECK (max_per_order >= 1),
    currency       TEXT NOT NULL,
    status         TEXT NOT NULL CHECK (status IN ('on_sale', 'cancelled')),
    version        INTEGER NOT NULL,
    created_at     TEXT NOT NULL,
    updated_at     TEXT NOT NULL
);

CREATE TABLE event_sections (
    event_id   TEXT NOT NULL REFERENCES ticket_events (id),
    position   INTEGER NOT NULL,
    name       TEXT NOT NULL,
    product_id TEXT NOT NULL UNIQUE REFERENCES products (id),
    price      INTEGER NOT NULL CHECK (price >= 0),
    capacity   INTEGER NOT NULL CHECK (capacity >= 1),
    seated     INTEGER NOT NULL CHECK (seated IN (0, 1)),
    PRIMARY KEY (event_id, position)
);

-- One row per numbered seat: the hold that has it, or none. A seat is never in two holds:
-- it has one row, and a hold takes it only where hold_id IS NULL.
CREATE TABLE seats (
    product_id TEXT NOT NULL REFERENCES products (id),
    position   INTEGER NOT NULL,
    label      TEXT NOT NULL,
    hold_id    TEXT,
    PRIMARY KEY (product_id, label)
);
CREATE INDEX seats_hold ON seats (hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX seats_order ON seats (product_id, position);

CREATE TABLE holds (
    id         TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL REFERENCES ticket_events (id),
    section    TEXT NOT NULL,
    product_id TEXT NOT NULL REFERENCES products (id),
    quantity   INTEGER NOT NULL CHECK (quantity >= 1),
    -- The seats held, as a JSON list (empty for general admission).
    seats      TEXT NOT NULL,
    unit_price INTEGER NOT NULL CHECK (unit_price >= 0),
    currency   TEXT NOT NULL,
    status     TEXT NOT NULL CHECK (status IN ('active', 'ordered', 'expired')),
    expires_at TEXT NOT NULL,
    order_id   TEXT UNIQUE,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
CREATE INDEX holds_due ON holds (expires_at) WHERE status = 'active';
CREATE INDEX holds_event ON holds (event_id, id);

ALTER TABLE products ADD COLUMN event_id TEXT;
ALTER TABLE orders ADD COLUMN hold_id TEXT;
CREATE UNIQUE INDEX orders_hold ON orders (hold_id) WHERE hold_id IS NOT NULL;

-- The ledger learns the reason 'hold' and which hold holds the stock: rebuilt with its rows
-- and ids, as SQLite changes a CHECK.
CREATE TABLE stock_movements_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id  TEXT NOT NULL REFERENCES products (id),
    delta       INTEGER NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock', 'tab', 'hold')),
    note        TEXT,
    order_id    TEXT,
    stock_after INTEGER NOT NULL CHECK (stock_after >= 0),
    created_at  TEXT NOT NULL,
    tab_id      TEXT,
    hold_id     TEXT
);
INSERT INTO stock_movements_new (id, product_id, delta, reason, note, order_id, stock_after, created_at, tab_id)
SELECT id, product_id, delta, reason, note, order_id, stock_after, created_at, tab_id FROM stock_movements;
DROP TABLE stock_movements;
ALTER TABLE stock_movements_new RENAME TO stock_movements;
CREATE INDEX stock_movements_product ON stock_movements (product_id, id);
CREATE INDEX stock_movements_order ON stock_movements (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX stock_movements_tab ON stock_movements (tab_id) WHERE tab_id IS NOT NULL;
CREATE INDEX stock_movements_hold ON stock_movements (hold_id) WHERE hold_id IS NOT NULL;
