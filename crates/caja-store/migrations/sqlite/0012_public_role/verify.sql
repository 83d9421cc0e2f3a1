SELECT client_ref FROM holds LIMIT 0;
