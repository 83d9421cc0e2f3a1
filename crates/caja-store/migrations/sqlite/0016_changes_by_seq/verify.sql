SELECT seq, at FROM changes LIMIT 0;
