-- Who holds each singleton consumer (a mailbox's IMAP intake, the Telegram poller or webhook,
-- the Discord gateway). On PostgreSQL the lease itself is a session advisory lock on the
-- holder's own connection (key `lock_key`), released by the server when that connection ends;
-- this row only says who took it and on which backend, so a row whose backend no longer holds
-- the lock is stale and not shown. On SQLite (one instance) the row is the whole record.
-- Keep in step with migrations/sqlite.
CREATE TABLE leases (
    name TEXT PRIMARY KEY,
    instance_id TEXT NOT NULL,
    lock_key BIGINT NOT NULL,
    -- pg_backend_pid() of the holder's lease connection; 0 on SQLite.
    backend_pid BIGINT NOT NULL,
    taken_at TIMESTAMPTZ NOT NULL
);
