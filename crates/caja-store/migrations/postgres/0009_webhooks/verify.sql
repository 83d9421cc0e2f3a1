SELECT id, url, event_types, secret, description, status, disabled_reason, after_seq, failing_since, attempts, gone, next_attempt_at, lease_owner, lease_until, created_at, updated_at FROM webhook_subscriptions LIMIT 0;
SELECT id, subscription_id, seq, event_type, attempts, status, response_status, error, first_attempt_at, last_attempt_at FROM webhook_deliveries LIMIT 0;
