SELECT event_id, admit_per_minute, max_queue, admission_ttl_secs, opens_at, pre_open, last_admit_at, version FROM waiting_rooms LIMIT 0;
SELECT id, event_id, client_ref, rank, admit_at, hold_id, joined_at FROM queue_tickets LIMIT 0;
