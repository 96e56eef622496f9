-- Where readiness checks that the database can write again after a write failed (a full disk,
-- say): a row of 64 KiB is written and deleted. SQLite only: on PostgreSQL a failed write
-- leaves no trace in the connection, and the server reports its own disk trouble.
CREATE TABLE write_probe (
    id INTEGER PRIMARY KEY,
    data BLOB NOT NULL
);
