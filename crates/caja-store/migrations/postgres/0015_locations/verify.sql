SELECT id, code, name, version, created_at, updated_at FROM locations LIMIT 0;
SELECT id, product_id, from_location, to_location, quantity, note, status, created_at, received_at FROM transfers LIMIT 0;
SELECT stock_elsewhere FROM products LIMIT 0;
SELECT location_id, handovers FROM orders LIMIT 0;
SELECT location_id FROM tabs LIMIT 0;
SELECT location_id FROM api_keys LIMIT 0;
SELECT location_id, transfer_id FROM stock_movements LIMIT 0;
