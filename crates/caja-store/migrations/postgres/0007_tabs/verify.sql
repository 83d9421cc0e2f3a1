SELECT id, label, resource, status, rate, currency, unit_minutes, minimum_minutes, grace_minutes, customer_name, customer_email, note, periods, order_id, void_reason, version, opened_at, closed_at, updated_at FROM tabs LIMIT 0;
SELECT id, tab_id, product_id, sku, name, quantity, unit_price, note, added_at, removed_at FROM tab_items LIMIT 0;
SELECT tab_id, time_minutes, time_rate, time_amount FROM orders LIMIT 0;
SELECT tab_id FROM stock_movements LIMIT 0;
