SELECT place FROM queue_tickets LIMIT 0;
SELECT drawn FROM waiting_rooms LIMIT 0;
