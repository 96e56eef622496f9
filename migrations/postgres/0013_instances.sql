-- The serving instances and the channels each runs, so a reply on a channel no running
-- instance has enabled is refused when it is written instead of failing an hour later, and
-- the channels page can tell which instance runs what. `serve` adds its row at start, moves
-- heartbeat_at on every few seconds and deletes the row on a clean stop; a row whose
-- heartbeat is older than 30 s is a stopped (or crashed) instance. Keep in step with
-- migrations/sqlite.
CREATE TABLE instances (
    id TEXT PRIMARY KEY,
    host TEXT NOT NULL,
    pid BIGINT NOT NULL,
    -- Enabled channels, comma-separated ("email,telegram"); empty when none.
    channels TEXT NOT NULL,
    started_at TIMESTAMPTZ NOT NULL,
    heartbeat_at TIMESTAMPTZ NOT NULL
);
