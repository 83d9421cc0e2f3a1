-- Fails (the CHECK below) once stock was transferred or handed over: those ledger rows
-- cannot be dropped without breaking "stock equals the sum of its ledger". Stock sold at
-- other locations stays in the total, which is all the older schema knows.
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
INSERT INTO stock_movements_new (id, product_id, delta, reason, note, order_id, stock_after, created_at, tab_id, hold_id)
SELECT id, product_id, delta, reason, note, order_id, stock_after, created_at, tab_id, hold_id FROM stock_movements;
DROP TABLE stock_movements;
ALTER TABLE stock_movements_new RENAME TO stock_movements;
CREATE INDEX stock_movements_product ON stock_movements (product_id, id);
CREATE INDEX stock_movements_order ON stock_movements (order_id) WHERE order_id IS NOT NULL;
CREATE INDEX stock_movements_tab ON stock_movements (tab_id) WHERE tab_id IS NOT NULL;
CREATE INDEX stock_movements_hold ON stock_movements (hold_id) WHERE hold_id IS NOT NULL;
DROP TABLE transfers;
ALTER TABLE api_keys DROP COLUMN location_id;
ALTER TABLE tabs DROP COLUMN location_id;
ALTER TABLE orders DROP COLUMN handovers;
ALTER TABLE orders DROP COLUMN location_id;
ALTER TABLE products DROP COLUMN stock_elsewhere;
DROP TABLE locations;
