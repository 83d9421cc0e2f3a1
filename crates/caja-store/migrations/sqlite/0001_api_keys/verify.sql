SELECT id, name, role, key_hash, rate_limit, created_at, last_used_at, revoked_at FROM api_keys LIMIT 0;
SELECT id, done_at FROM bootstrap LIMIT 0;
