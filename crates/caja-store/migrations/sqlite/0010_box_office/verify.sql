SELECT id, name, starts_at, sale_starts_at, sale_ends_at, max_per_order, currency, status, version, created_at, updated_at FROM ticket_events LIMIT 0;
SELECT event_id, position, name, product_id, price, capacity, seated FROM event_sections LIMIT 0;
SELECT product_id, position, label, hold_id FROM seats LIMIT 0;
SELECT id, event_id, section, product_id, quantity, seats, unit_price, currency, status, expires_at, order_id, version, created_at, updated_at FROM holds LIMIT 0;
SELECT event_id FROM products LIMIT 0;
SELECT hold_id FROM orders LIMIT 0;
SELECT hold_id FROM stock_movements LIMIT 0;
