-- Fails (the CHECK below) once stock was transferred or handed over: those ledger rows
-- cannot be dropped without breaking "stock equals the sum of its ledger". Stock sold at
-- other locations stays in the total, which is all the older schema knows.
DROP INDEX stock_movements_transfer;
ALTER TABLE stock_movements DROP COLUMN transfer_id;
ALTER TABLE stock_movements DROP COLUMN location_id;
ALTER TABLE stock_movements DROP CONSTRAINT stock_movements_reason_check;
ALTER TABLE stock_movements ADD CONSTRAINT stock_movements_reason_check
    CHECK (reason IN ('initial', 'restock', 'correction', 'damage', 'return', 'sale', 'release', 'refund_restock', 'tab', 'hold'));
DROP TABLE transfers;
ALTER TABLE api_keys DROP COLUMN location_id;
ALTER TABLE tabs DROP COLUMN location_id;
ALTER TABLE orders DROP COLUMN handovers;
ALTER TABLE orders DROP COLUMN location_id;
ALTER TABLE products DROP COLUMN stock_elsewhere;
DROP TABLE locations;
