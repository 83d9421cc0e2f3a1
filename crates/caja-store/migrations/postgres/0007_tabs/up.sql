-- Tabs: coworking sessions and open checks. An item's stock is held by the tab from the
-- moment it is added (ledger reason 'tab', with the tab's id); closing the tab creates one
-- order that inherits that stock, named by orders.tab_id.
CREATE TABLE tabs (
    id              TEXT PRIMARY KEY,
    label           TEXT NOT NULL,
    resource        TEXT,
    status          TEXT NOT NULL CHECK (status IN ('open', 'closed', 'void')),
    rate            BIGINT NOT NULL CHECK (rate >= 0),
    currency        TEXT NOT NULL,
    unit_minutes    BIGINT NOT NULL CHECK (unit_minutes >= 1),
    minimum_minutes BIGINT NOT NULL CHECK (minimum_minutes >= 0),
    grace_minutes   BIGINT NOT NULL CHECK (grace_minutes >= 0),
    customer_name   TEXT,
    customer_email  TEXT,
    note            TEXT,
    -- The clock: a JSON list of {"started_at", "ended_at"} periods, written whole with the row.
    periods         TEXT NOT NULL,
    order_id        TEXT UNIQUE,
    void_reason     TEXT,
    version         BIGINT NOT NULL,
    opened_at       TEXT NOT NULL,
    closed_at       TEXT,
    updated_at      TEXT NOT NULL
);
-- A desk or table is held by at most one open tab, whatever the code above says.
CREATE UNIQUE INDEX tabs_open_resource ON tabs (resource) WHERE status = 'open' AND resource IS NOT NULL;
CREATE INDEX tabs_status ON tabs (status, id);

CREATE TABLE tab_items (
    id         TEXT PRIMARY KEY,
    tab_id     TEXT NOT NULL REFERENCES tabs (id),
    product_id TEXT NOT NULL REFERENCES products (id),
    sku        TEXT NOT NULL,
    name       TEXT NOT NULL,
    quantity   BIGINT NOT NULL CHECK (quantity > 0),
    unit_price BIGINT NOT NULL CHECK (unit_price >= 0),
    note       TEXT,
    added_at   TEXT NOT NULL,
    removed_at TEXT
);
CREATE INDEX tab_items_tab ON tab_items (tab_id, id);

-- The order a tab closed into, and its time line.
ALTER TABLE orders ADD COLUMN tab_id TEXT;
ALTER TABLE orders ADD COLUMN time_minutes BIGINT;
ALTER TABLE orders ADD COLUMN time_rate BIGINT;
ALTER TABLE orders ADD COLUMN time_amount BIGINT;
CREATE UNIQUE INDEX orders_tab ON orders (tab_id) WHERE tab_id IS NOT NULL;

-- The ledger learns the reason 'tab' and which tab holds the stock.
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_reason_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_reason_check
    CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock', 'tab'));
ALTER TABLE stock_movements ADD COLUMN tab_id TEXT;
CREATE INDEX stock_movements_tab ON stock_movements (tab_id) WHERE tab_id IS NOT NULL;
