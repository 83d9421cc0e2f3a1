-- Fails (the CHECK below) once holds have moved stock: their ledger rows cannot be dropped
-- without breaking "stock equals the sum of its ledger".
DROP INDEX stock_movements_hold;
ALTER TABLE stock_movements DROP COLUMN hold_id;
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_reason_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_reason_check
    CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock', 'tab'));
DROP INDEX orders_hold;
ALTER TABLE orders DROP COLUMN hold_id;
ALTER TABLE products DROP COLUMN event_id;
DROP TABLE holds;
DROP TABLE seats;
DROP TABLE event_sections;
DROP TABLE ticket_events;
