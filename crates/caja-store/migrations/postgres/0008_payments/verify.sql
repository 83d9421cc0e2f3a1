SELECT provider, event_id, topic, action, resource_id, body, received_at, deliveries, status, outcome, order_id, processed_at FROM provider_events LIMIT 0;
