SELECT announced FROM waiting_rooms LIMIT 0;
