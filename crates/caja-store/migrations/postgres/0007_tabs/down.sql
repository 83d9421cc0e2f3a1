-- Fails (the CHECK below) once tabs have moved stock: their ledger rows cannot be dropped
-- without breaking "stock equals the sum of its ledger".
DROP INDEX stock_movements_tab;
ALTER TABLE stock_movements DROP COLUMN tab_id;
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_reason_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_reason_check
    CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock'));
DROP INDEX orders_tab;
ALTER TABLE orders DROP COLUMN time_amount;
ALTER TABLE orders DROP COLUMN time_rate;
ALTER TABLE orders DROP COLUMN time_minutes;
ALTER TABLE orders DROP COLUMN tab_id;
DROP TABLE tab_items;
DROP TABLE tabs;
