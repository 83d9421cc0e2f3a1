-- An event's waiting room: its settings, how many joined before it opened (their places
-- are drawn at opening), and when the last ticket that joined after opening is admitted.
CREATE TABLE waiting_rooms (
    event_id           TEXT PRIMARY KEY REFERENCES ticket_events (id),
    admit_per_minute   INTEGER NOT NULL CHECK (admit_per_minute >= 1),
    max_queue          INTEGER NOT NULL CHECK (max_queue >= 1),
    admission_ttl_secs INTEGER NOT NULL CHECK (admission_ttl_secs >= 1),
    opens_at           TEXT NOT NULL,
    pre_open           INTEGER NOT NULL CHECK (pre_open >= 0),
    last_admit_at      TEXT,
    version            INTEGER NOT NULL
);

-- One ticket per client reference and event. A ticket that joined before opening has a
-- rank (its place is how many drew lower); one that joined after has its admit_at.
CREATE TABLE queue_tickets (
    id         TEXT PRIMARY KEY,
    event_id   TEXT NOT NULL REFERENCES waiting_rooms (event_id),
    client_ref TEXT NOT NULL,
    rank       INTEGER,
    admit_at   TEXT,
    hold_id    TEXT UNIQUE,
    joined_at  TEXT NOT NULL,
    UNIQUE (event_id, client_ref),
    CHECK ((rank IS NULL) <> (admit_at IS NULL))
);
CREATE INDEX queue_tickets_rank ON queue_tickets (event_id, rank) WHERE rank IS NOT NULL;
