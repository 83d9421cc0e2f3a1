SELECT id, product_id, delta, reason, note, order_id, stock_after, created_at FROM stock_movements LIMIT 0;
SELECT name, value FROM counters WHERE name = 'order_number';
SELECT id, number, status, subtotal, tip, total, currency, note, customer_name, customer_email, created_at, updated_at, expires_at FROM orders LIMIT 0;
SELECT order_id, line_no, product_id, sku, name, quantity, unit_price, line_total FROM order_lines LIMIT 0;
SELECT id, order_id, method, amount, reference, created_at FROM payments LIMIT 0;
SELECT key_id, key, fingerprint, status, headers, body, created_at FROM idempotency_keys LIMIT 0;
SELECT id FROM orders INDEXED BY orders_due WHERE status = 'pending_payment' AND expires_at < '' LIMIT 0;
