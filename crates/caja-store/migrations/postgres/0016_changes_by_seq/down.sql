CREATE INDEX changes_at ON changes (at);
