SELECT seq, type, resource_id, data, at FROM changes LIMIT 0;
