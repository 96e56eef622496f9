-- On PostgreSQL this migration takes the NOTIFY out of the change feed's trigger; SQLite's
-- trigger never notified. The number is kept in step with migrations/postgres.
SELECT 1;
