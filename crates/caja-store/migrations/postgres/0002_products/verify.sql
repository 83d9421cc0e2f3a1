SELECT id, sku, name, price_amount, currency, stock, version, archived_at, created_at, updated_at FROM products LIMIT 0;
SELECT 'products_live_sku'::regclass::text;
