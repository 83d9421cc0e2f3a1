-- Locations: the branches stock is kept and sold from. Every database starts with one, the
-- main location (a fixed id), which holds all the stock there was before. Nothing an older
-- replica reads changes meaning: products.stock stays the total, and the new column holds
-- only the shares of the other locations (the main one has the rest), so a sale written by
-- an older replica still lands at the main location, where its ledger row says it did.
CREATE TABLE locations (
    id         TEXT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    version    INTEGER NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO locations (id, code, name, version, created_at, updated_at)
VALUES ('loc_00000000000000000000000000', 'main', 'Main', 1,
        strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'), strftime('%Y-%m-%dT%H:%M:%f000Z', 'now'));

-- {"loc_…": units, …} for every location but the main one that has some; NULL for none.
ALTER TABLE products ADD COLUMN stock_elsewhere TEXT;
-- Where an order's stock is held, and each time it moved ([{from, to, at}], NULL for never).
ALTER TABLE orders ADD COLUMN location_id TEXT NOT NULL DEFAULT 'loc_00000000000000000000000000';
ALTER TABLE orders ADD COLUMN handovers TEXT;
ALTER TABLE tabs ADD COLUMN location_id TEXT NOT NULL DEFAULT 'loc_00000000000000000000000000';
-- A key bound to a location sells there (a till belongs to a branch).
ALTER TABLE api_keys ADD COLUMN location_id TEXT;

-- Stock sent from one location to another: out of `from_location` when created, into
-- `to_location` when received (at once, or later for one sent in transit).
CREATE TABLE transfers (
    id            TEXT PRIMARY KEY,
    product_id    TEXT NOT NULL REFERENCES products (id),
    from_location TEXT NOT NULL REFERENCES locations (id),
    to_location   TEXT NOT NULL REFERENCES locations (id),
    quantity      INTEGER NOT NULL CHECK (quantity >= 1),
    note          TEXT,
    status        TEXT NOT NULL CHECK (status IN ('in_transit', 'received')),
    created_at    TEXT NOT NULL,
    received_at   TEXT,
    CHECK (from_location <> to_location)
);
CREATE INDEX transfers_in_transit ON transfers (product_id) WHERE status = 'in_transit';

-- The ledger names the location of every movement and learns the reasons of transfers and
-- hand-overs: rebuilt with its rows and ids, as SQLite changes a CHECK.
CREATE TABLE stock_movements_new (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id  TEXT NOT NULL REFERENCES products (id),
    delta       INTEGER NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock', 'tab', 'hold', 'transfer_out', 'transfer_in', 'handover')),
    note        TEXT,
    order_id    TEXT,
    stock_after INTEGER NOT NULL CHECK (stock_after >= 0),
    created_at  TEXT NOT NULL,
    tab_id      TEXT,
    hold_id     TEXT,
    location_id TEXT NOT NULL DEFAULT 'loc_00000000000000000000000000',
    transfer_id TEXT
);
INSERT INTO stock_movements_new (id, product_id, delta, reason, note, order_id, stock_after, created_at, tab_id, hold_id)
SELECT id, product_id, delta, reason, note, order_id, stock_after, created_at, tab_id, hold_id FROM stock_movements;
DROP TABLE stock_movements;
ALTER TABLE stock_movements_new RENAME TO stock_movements;
CREATE INDEX stock_movements_product ON stock_movements (product_id, id);
CREATE INDEX stock_movements_order ON stock_movements (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX stock_movements_tab ON stock_movements (tab_id) WHERE tab_id IS NOT NULL;
CREATE INDEX stock_movements_hold ON stock_movements (hold_id) WHERE hold_id IS NOT NULL;
CREATE INDEX stock_movements_transfer ON stock_movements (transfer_id) WHERE transfer_id IS NOT NULL;
