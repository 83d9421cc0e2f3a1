SELECT id, at, actor, request_id, action, target, before, after FROM audit LIMIT 0;
