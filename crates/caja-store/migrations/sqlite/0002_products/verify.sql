SELECT id, sku, name, price_amount, currency, stock, version, archived_at, created_at, updated_at FROM products LIMIT 0;
-- INDEXED BY fails when the index is missing or no longer covers live skus.
SELECT id FROM products INDEXED BY products_live_sku WHERE sku = '' AND archived_at IS NULL LIMIT 0;
