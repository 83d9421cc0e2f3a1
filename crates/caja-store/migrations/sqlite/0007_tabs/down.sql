-- Fails (the CHECK below) once tabs have moved stock: their ledger rows cannot be dropped
-- without breaking "stock equals the sum of its ledger".
CREATE TABLE stock_movements_old (
    id          INTEGER PRIMARY KEY AUTOINCREMENT,
    product_id  TEXT NOT NULL REFERENCES products (id),
    delta       INTEGER NOT NULL,
    reason      TEXT NOT NULL CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock')),
    note        TEXT,
    order_id    TEXT,
    stock_after INTEGER NOT NULL CHECK (stock_after >= 0),
    created_at  TEXT NOT NULL
);
INSERT INTO stock_movements_old (id, product_id, delta, reason, note, order_id, stock_after, created_at)
SELECT id, product_id, delta, reason, note, order_id, stock_after, created_at FROM stock_movements;
DROP TABLE stock_movements;
ALTER TABLE stock_movements_old RENAME TO stock_movements;
CREATE INDEX stock_movements_product ON stock_movements (product_id, id);
CREATE INDEX stock_movements_order ON stock_movements (order_id) WHERE order_id IS NOT NULL;

DROP INDEX orders_tab;
ALTER TABLE orders DROP COLUMN time_amount;
ALTER TABLE orders DROP COLUMN time_rate;
ALTER TABLE orders DROP COLUMN time_minutes;
ALTER TABLE orders DROP COLUMN tab_id;
DROP TABLE tab_items;
DROP TABLE tabs;
