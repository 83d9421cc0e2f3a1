-- Locations: the branches stock is kept and sold from. Every database starts with one, the
-- main location (a fixed id), which holds all the stock there was before. Nothing an older
-- replica reads changes meaning: products.stock stays the total, and the new column holds
-- only the shares of the other locations (the main one has the rest), so a sale written by
-- an older replica still lands at the main location, where its ledger row says it did.
CREATE TABLE locations (
    id         TEXT PRIMARY KEY,
    code       TEXT NOT NULL UNIQUE,
    name       TEXT NOT NULL,
    version    BIGINT NOT NULL,
    created_at TEXT NOT NULL,
    updated_at TEXT NOT NULL
);
INSERT INTO locations (id, code, name, version, created_at, updated_at)
VALUES ('loc_00000000000000000000000000', 'main', 'Main', 1,
        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'),
        to_char(now() AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24:MI:SS.US"Z"'));

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
    quantity      BIGINT NOT NULL CHECK (quantity >= 1),
    note          TEXT,
    status        TEXT NOT NULL CHECK (status IN ('in_transit', 'received')),
    created_at    TEXT NOT NULL,
    received_at   TEXT,
    CHECK (from_location <> to_location)
);
CREATE INDEX transfers_in_transit ON transfers (product_id) WHERE status = 'in_transit';

-- The ledger names the location of every movement and learns the reasons of transfers and
-- hand-overs.
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_reason_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_reason_check
    CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock', 'tab', 'hold', 'transfer_out', 'transfer_in', 'handover'));
ALTER TABLE stock_movements ADD COLUMN location_id TEXT NOT NULL DEFAULT 'loc_00000000000000000000000000';
ALTER TABLE stock_movements ADD COLUMN transfer_id TEXT;
CREATE INDEX stock_movements_transfer ON stock_movements (transfer_id) WHERE transfer_id IS NOT NULL;
