DROP TABLE idempotency_keys;
DROP TABLE payments;
DROP TABLE order_lines;
DROP TABLE orders;
DROP TABLE counters;
DROP TABLE stock_movements;
