SELECT name, value, updated_at FROM flags LIMIT 0;
